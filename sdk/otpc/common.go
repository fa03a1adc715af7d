package otpc

// Struct tags: `json:"name"` gives the wire name; `otpc:"..."` gives the
// validation rules read by the code generator (internal/gen), comma
// separated: req (required: non-zero / present / union with a member),
// reqid (requestId syntax: 1-100 of [a-zA-Z0-9:_-]), ccy (ISO 4217 shape:
// three upper-case letters), pos (int64 > 0), nonneg (>= 0), max=N (<= N).
// The tags are metadata for the generator only; nothing reads them at run time.

// RequestHeader is the common header of every request (spec §4.1) [V].
type RequestHeader struct {
	// RequestID uniquely identifies the request: 1-100 characters of
	// a-z A-Z 0-9 : - _. Together with PaymentIntegratorAccountID it is the
	// idempotency key.
	RequestID string `json:"requestId" otpc:"req,reqid"`
	// RequestTimestamp is when the request was sent; receivers reject it if it
	// is more than 60 s from their clock. It changes between retries.
	RequestTimestamp Timestamp `json:"requestTimestamp" otpc:"req"`
	// ProtocolVersion is {"major": 2} for OTPC v2.
	ProtocolVersion Version `json:"protocolVersion" otpc:"req"`
	// PaymentIntegratorAccountID is the PIAID. Required: present in every
	// example, required flag cut off in the source [U]; we take the safe
	// reading (required).
	PaymentIntegratorAccountID string `json:"paymentIntegratorAccountId" otpc:"req"`
}

// ResponseHeader is the common header of every response (spec §4.2) [V].
type ResponseHeader struct {
	// ResponseTimestamp is when the response was created.
	ResponseTimestamp Timestamp `json:"responseTimestamp" otpc:"req"`
}

// Timestamp is a point in time in milliseconds since the Unix epoch, UTC
// (spec §4.3) [V]. On the wire {"epochMillis":"<int64>"}; a JSON number is
// accepted on input. A zero EpochMillis counts as absent in Validate.
type Timestamp struct {
	// EpochMillis is milliseconds since 1970-01-01T00:00:00Z.
	EpochMillis int64 `json:"epochMillis" otpc:"req"`
}

// Version is a protocol version; v2 carries only the major number
// (spec §4.4) [V].
type Version struct {
	// Major is the major version, 2 for this API.
	Major int32 `json:"major" otpc:"req"`
}

// Amount is a money amount in micros: value × 1,000,000, so USD 1.23 is
// AmountMicros 1230000 (spec §4.5) [V].
type Amount struct {
	// AmountMicros is the amount in millionths of the currency unit.
	AmountMicros int64 `json:"amountMicros" otpc:"req"`
	// CurrencyCode is the ISO 4217 three-letter code, e.g. "USD".
	CurrencyCode string `json:"currencyCode" otpc:"req,ccy"`
}

// IssuerID names the issuer of the user account behind a
// GooglePaymentToken; Google shares the list of values (spec §4.6) [V/S].
type IssuerID struct {
	// Value is the Google-defined issuer identifier.
	Value string `json:"value" otpc:"req"`
}

// GooglePaymentToken (GPT) identifies the user's associated integrator
// account in purchase calls (spec §4.6) [V].
type GooglePaymentToken struct {
	// IssuerID is the issuer of the backing account.
	IssuerID IssuerID `json:"issuerId" otpc:"req"`
	// Token is the opaque token value shared by Google and the integrator.
	Token string `json:"token" otpc:"req"`
}

// RawResult carries the integrator's native result or decline code for
// Google's risk and analytics systems (spec §4.7) [V].
type RawResult struct {
	// Scope is the namespace of RawCode (e.g. a card network); may be empty.
	Scope string `json:"scope"`
	// RawCode is the native code.
	RawCode string `json:"rawCode" otpc:"req"`
}

// AccountClosed says the user's account held with the integrator has been
// closed (spec §4.8) [V/S].
type AccountClosed struct {
	// RawResult is the integrator's native code, optional.
	RawResult *RawResult `json:"rawResult"`
}

// GooglePaymentTokenInvalidatedByUser says the account is still active but
// the user invalidated the GPT on the integrator's side (spec §4.9) [S].
type GooglePaymentTokenInvalidatedByUser struct {
	// RawResult is the integrator's native code, optional.
	RawResult *RawResult `json:"rawResult"`
}

// Empty is a union member that carries no data; it encodes as {}
// (spec §4.10) [V].
type Empty struct{}

// DisplayableReferenceNumber is the code shown to the user: a printable
// string, barcode contents, or both (spec §4.12). Union: exactly one member
// must be set [V].
//
//otpc:union
type DisplayableReferenceNumber struct {
	// PrintableString is the code the user types or reads out [S].
	PrintableString *string `json:"printableString"`
	// BarcodeContents is rendered as a barcode; symbology unspecified [S].
	BarcodeContents *string `json:"barcodeContents"`
	// BarcodeWithPrintableString carries both [V].
	BarcodeWithPrintableString *BarcodeWithPrintableString `json:"barcodeWithPrintableString"`
}

// BarcodeWithPrintableString is a reference number shown both as text and
// as a barcode (spec §4.12) [V type; fields' required-ness U, taken as
// required].
type BarcodeWithPrintableString struct {
	// PrintableString is the human-readable code.
	PrintableString string `json:"printableString" otpc:"req"`
	// BarcodeContents is the barcode payload.
	BarcodeContents string `json:"barcodeContents" otpc:"req"`
}

// UserInformation describes the integrator's account holder, returned by
// associateAccount when Google asks for it (spec §4.13) [S]. All fields are
// optional.
type UserInformation struct {
	// Name is the account holder's name.
	Name string `json:"name"`
	// AddressLine holds the street address lines.
	AddressLine []string `json:"addressLine"`
	// LocalityName is the city or town.
	LocalityName string `json:"localityName"`
	// AdministrativeAreaName is the state, province or prefecture.
	AdministrativeAreaName string `json:"administrativeAreaName"`
	// PostalCodeNumber is the postal code.
	PostalCodeNumber string `json:"postalCodeNumber"`
	// CountryCode is the ISO 3166-1 alpha-2 country code.
	CountryCode string `json:"countryCode"`
}
