package otpc

// This file holds the integrator-hosted methods: Google calls them on
// otpcgate (spec §5).

// EchoRequest is the body of echo in both directions (spec §5.1, §6.1) [V].
type EchoRequest struct {
	// RequestHeader is the common request header.
	RequestHeader RequestHeader `json:"requestHeader" otpc:"req"`
	// ClientMessage is echoed back. Required [U; safe reading].
	ClientMessage string `json:"clientMessage" otpc:"req"`
}

// EchoResponse answers echo (spec §5.1) [V].
type EchoResponse struct {
	// ResponseHeader is the common response header.
	ResponseHeader ResponseHeader `json:"responseHeader" otpc:"req"`
	// ClientMessage must equal the request's clientMessage. Required [U].
	ClientMessage string `json:"clientMessage" otpc:"req"`
	// ServerMessage is optional free text, e.g. a debug id [U].
	ServerMessage string `json:"serverMessage"`
}

// AssociateAccountRequest binds the user's integrator account to a new
// Google instrument after web authentication (spec §5.2) [V head, S tail].
type AssociateAccountRequest struct {
	// RequestHeader is the common request header; requestId is the
	// idempotency key of this association attempt.
	RequestHeader RequestHeader `json:"requestHeader" otpc:"req"`
	// GooglePaymentToken is the new GPT to bind to the account.
	GooglePaymentToken GooglePaymentToken `json:"googlePaymentToken" otpc:"req"`
	// AuthenticationRequestID is the requestId of the web authentication
	// flow (§8), the proof that the user logged in. Required [S/U].
	AuthenticationRequestID string `json:"authenticationRequestId" otpc:"req"`
	// AssociationID is the new association's id. Required [S/U].
	AssociationID string `json:"associationId" otpc:"req"`
	// ProvideUserInformation asks for UserInformation in the response.
	ProvideUserInformation bool `json:"provideUserInformation"`
}

// AssociateAccountResponse answers associateAccount (spec §5.2) [V type
// name; shape U].
type AssociateAccountResponse struct {
	// ResponseHeader is the common response header.
	ResponseHeader ResponseHeader `json:"responseHeader" otpc:"req"`
	// Result is the outcome.
	Result AssociateAccountResult `json:"result" otpc:"req"`
}

// AssociateAccountResult is the outcome of associateAccount. Union: exactly
// one member. success [U shape]; the decline members follow sibling v2 APIs
// (banking-fop-v2) [S].
//
//otpc:union
type AssociateAccountResult struct {
	// Success: the account is associated.
	Success *AssociateAccountSuccess `json:"success"`
	// UserAuthenticationFailed: the authentication could not be confirmed [S].
	UserAuthenticationFailed *UserAuthenticationFailed `json:"userAuthenticationFailed"`
	// AccountNotEligible: the account cannot be used with Google [S].
	AccountNotEligible *AccountNotEligible `json:"accountNotEligible"`
	// AccountClosed: the account is closed [S].
	AccountClosed *AccountClosed `json:"accountClosed"`
}

// AssociateAccountSuccess carries the details of a successful association.
type AssociateAccountSuccess struct {
	// UserInformation is required only if the request set
	// provideUserInformation (rev 2.0.4) [V]; its location inside success
	// rather than at top level is [U].
	UserInformation *UserInformation `json:"userInformation"`
}

// UserAuthenticationFailed declines an association whose authentication
// could not be confirmed [S].
type UserAuthenticationFailed struct {
	// RawResult is the integrator's native code, optional [U].
	RawResult *RawResult `json:"rawResult"`
}

// AccountNotEligible declines an association for an account that cannot be
// used with Google [S].
type AccountNotEligible struct {
	// RawResult is the integrator's native code, optional [U].
	RawResult *RawResult `json:"rawResult"`
}

// GenerateReferenceNumberRequest asks for a payable code (spec §5.3) [V].
// Its requestId is the transaction id used by later calls.
type GenerateReferenceNumberRequest struct {
	// RequestHeader is the common request header.
	RequestHeader RequestHeader `json:"requestHeader" otpc:"req"`
	// GooglePaymentToken names the associated user account.
	GooglePaymentToken GooglePaymentToken `json:"googlePaymentToken" otpc:"req"`
	// TransactionDescription may appear on the customer's statement; its
	// format may change without notice, never parse it.
	TransactionDescription string `json:"transactionDescription" otpc:"req"`
	// Amount is the amount to collect; must be > 0 [V/U required].
	Amount Amount `json:"amount" otpc:"req,pos"`
}

// GenerateReferenceNumberResponse answers generateReferenceNumber
// (spec §5.3) [V].
type GenerateReferenceNumberResponse struct {
	// ResponseHeader is the common response header.
	ResponseHeader ResponseHeader `json:"responseHeader" otpc:"req"`
	// Result is the outcome. Required [U].
	Result GenerateReferenceNumberResult `json:"result" otpc:"req"`
}

// GenerateReferenceNumberResult is the outcome of generateReferenceNumber.
// Union: exactly one member. Member keys other than success are [U].
//
//otpc:union
type GenerateReferenceNumberResult struct {
	// Success: the code was created [V].
	Success *GenerateReferenceNumberSuccess `json:"success"`
	// GooglePaymentTokenInvalidatedByUser: the user invalidated the GPT.
	GooglePaymentTokenInvalidatedByUser *GooglePaymentTokenInvalidatedByUser `json:"googlePaymentTokenInvalidatedByUser"`
	// AccountClosed: the user's integrator account is closed.
	AccountClosed *AccountClosed `json:"accountClosed"`
}

// GenerateReferenceNumberSuccess carries the created code [V].
type GenerateReferenceNumberSuccess struct {
	// DisplayableReferenceNumber is what Google shows to the user.
	DisplayableReferenceNumber DisplayableReferenceNumber `json:"displayableReferenceNumber" otpc:"req"`
}

// CancelReferenceNumberRequest invalidates an unpaid code (spec §5.4) [V].
type CancelReferenceNumberRequest struct {
	// RequestHeader is the common request header.
	RequestHeader RequestHeader `json:"requestHeader" otpc:"req"`
	// GenerateReferenceNumberRequestID is the requestId of the
	// generateReferenceNumber call that created the code.
	GenerateReferenceNumberRequestID string `json:"generateReferenceNumberRequestId" otpc:"req"`
}

// CancelReferenceNumberResponse answers cancelReferenceNumber (spec §5.4) [V].
type CancelReferenceNumberResponse struct {
	// ResponseHeader is the common response header.
	ResponseHeader ResponseHeader `json:"responseHeader" otpc:"req"`
	// Result is the outcome.
	Result CancelReferenceNumberResult `json:"result" otpc:"req"`
}

// CancelReferenceNumberResult is the outcome of cancelReferenceNumber.
// Union: exactly one member.
//
//otpc:union
type CancelReferenceNumberResult struct {
	// Success: the code can no longer be paid [V].
	Success *Empty `json:"success"`
	// ReferenceNumberAlreadyPaid: the code was paid already; Google should
	// expect a referenceNumberPaidNotification [V meaning, U key name].
	ReferenceNumberAlreadyPaid *Empty `json:"referenceNumberAlreadyPaid"`
}

// RefundRequest refunds part or all of a paid transaction. The same shape is
// used by refund (spec §5.5) and asynchronousRefund (spec §5.6) [V]; its
// requestId is the refund id.
type RefundRequest struct {
	// RequestHeader is the common request header.
	RequestHeader RequestHeader `json:"requestHeader" otpc:"req"`
	// TransactionID is the requestId of the generateReferenceNumber call.
	TransactionID string `json:"transactionId" otpc:"req"`
	// RefundAmount is the amount to refund, > 0 and at most the remaining
	// paid amount. Required [S/U].
	RefundAmount Amount `json:"refundAmount" otpc:"req,pos"`
}

// AsynchronousRefundRequest is the request of asynchronousRefund; it has
// the same shape as RefundRequest [V].
type AsynchronousRefundRequest = RefundRequest

// RefundResponse answers refund (spec §5.5) [V].
type RefundResponse struct {
	// ResponseHeader is the common response header.
	ResponseHeader ResponseHeader `json:"responseHeader" otpc:"req"`
	// Result is the outcome.
	Result RefundResult `json:"result" otpc:"req"`
}

// RefundResult is the outcome of a refund, also reported in
// refundResultNotification (spec §5.5, §6.3). Union: exactly one member.
// success [V], accountClosedAccountTakenOver [V type], others [S].
//
//otpc:union
type RefundResult struct {
	// Success: the refund is done.
	Success *Empty `json:"success"`
	// AccountClosed: the account is closed.
	AccountClosed *AccountClosed `json:"accountClosed"`
	// AccountClosedAccountTakenOver: closed because the account was taken over.
	AccountClosedAccountTakenOver *AccountClosedAccountTakenOver `json:"accountClosedAccountTakenOver"`
	// AccountClosedFraud: closed because of fraud.
	AccountClosedFraud *AccountClosedFraud `json:"accountClosedFraud"`
	// AccountOnHold: the account is on hold.
	AccountOnHold *AccountOnHold `json:"accountOnHold"`
	// RefundExceedsMaximumBalance: the refund would exceed the account's
	// maximum balance; Google may retry later with a new requestId.
	RefundExceedsMaximumBalance *RefundExceedsMaximumBalance `json:"refundExceedsMaximumBalance"`
	// RefundWindowExceeded: outside the allowed refund period.
	RefundWindowExceeded *RefundWindowExceeded `json:"refundWindowExceeded"`
}

// AccountClosedAccountTakenOver declines because the account was closed
// after an account takeover [V type name; fields U].
type AccountClosedAccountTakenOver struct {
	// RawResult is the integrator's native code, optional [U].
	RawResult *RawResult `json:"rawResult"`
}

// AccountClosedFraud declines because the account was closed for fraud [S].
type AccountClosedFraud struct {
	// RawResult is the integrator's native code, optional [U].
	RawResult *RawResult `json:"rawResult"`
}

// AccountOnHold declines because the account is on hold [S].
type AccountOnHold struct {
	// RawResult is the integrator's native code, optional [U].
	RawResult *RawResult `json:"rawResult"`
}

// RefundExceedsMaximumBalance declines because the refund would push the
// account above its maximum balance [S; fields U].
type RefundExceedsMaximumBalance struct {
	// RawResult is the integrator's native code, optional [U].
	RawResult *RawResult `json:"rawResult"`
}

// RefundWindowExceeded declines because the refund period is over
// [S; fields U].
type RefundWindowExceeded struct {
	// RawResult is the integrator's native code, optional [U].
	RawResult *RawResult `json:"rawResult"`
}

// AsynchronousRefundResponse answers asynchronousRefund (spec §5.6) [V].
type AsynchronousRefundResponse struct {
	// ResponseHeader is the common response header.
	ResponseHeader ResponseHeader `json:"responseHeader" otpc:"req"`
	// Result is the outcome.
	Result AsynchronousRefundResult `json:"result" otpc:"req"`
}

// AsynchronousRefundResult is the immediate outcome of asynchronousRefund.
// Union: exactly one member. acknowledged [V]; the decline members mirror
// RefundResult [U].
//
//otpc:union
type AsynchronousRefundResult struct {
	// Acknowledged: accepted; the final result follows through
	// refundResultNotification.
	Acknowledged *Empty `json:"acknowledged"`
	// AccountClosed: the account is closed [U].
	AccountClosed *AccountClosed `json:"accountClosed"`
	// AccountClosedAccountTakenOver: closed after account takeover [U].
	AccountClosedAccountTakenOver *AccountClosedAccountTakenOver `json:"accountClosedAccountTakenOver"`
	// AccountClosedFraud: closed because of fraud [U].
	AccountClosedFraud *AccountClosedFraud `json:"accountClosedFraud"`
	// AccountOnHold: the account is on hold [U].
	AccountOnHold *AccountOnHold `json:"accountOnHold"`
	// RefundExceedsMaximumBalance: above the account's maximum balance [U].
	RefundExceedsMaximumBalance *RefundExceedsMaximumBalance `json:"refundExceedsMaximumBalance"`
	// RefundWindowExceeded: outside the refund period [U].
	RefundWindowExceeded *RefundWindowExceeded `json:"refundWindowExceeded"`
}

// RemittanceStatementNotificationRequest announces a new remittance
// statement (spec §5.7) [V head]. Its requestId is the statement id.
type RemittanceStatementNotificationRequest struct {
	// RequestHeader is the common request header.
	RequestHeader RequestHeader `json:"requestHeader" otpc:"req"`
	// RemittanceStatementSummary summarises the statement. Required [U].
	RemittanceStatementSummary RemittanceStatementSummary `json:"remittanceStatementSummary" otpc:"req"`
}

// RemittanceStatementSummary summarises a remittance statement (spec §5.7).
// Field names statementDate..totalFeesAmount [V]; the others [S/U].
// Required-ness is [U]: statementDate, billingPeriod, dateDue and
// totalDueByIntegrator are treated as required (we need them to settle),
// the rest as optional.
type RemittanceStatementSummary struct {
	// StatementDate is when the statement was created.
	StatementDate Timestamp `json:"statementDate" otpc:"req"`
	// BillingPeriod is the period the statement covers.
	BillingPeriod BillingPeriod `json:"billingPeriod" otpc:"req"`
	// DateDue is when the remittance is due.
	DateDue Timestamp `json:"dateDue" otpc:"req"`
	// TotalDueByIntegrator is what the integrator owes Google; may be
	// negative when Google owes the integrator [U].
	TotalDueByIntegrator Amount `json:"totalDueByIntegrator" otpc:"req"`
	// TotalProcessedAmount is the sum of processed transactions.
	TotalProcessedAmount *Amount `json:"totalProcessedAmount"`
	// TotalFeesAmount is the sum of fees.
	TotalFeesAmount *Amount `json:"totalFeesAmount"`
	// TotalEvents is the number of events in the statement [U name].
	TotalEvents int64 `json:"totalEvents" otpc:"nonneg"`
	// TotalTaxes is the tax total [U name and type].
	TotalTaxes *Amount `json:"totalTaxes"`
	// RemittanceInstructions tells how to pay [S].
	RemittanceInstructions *RemittanceInstructions `json:"remittanceInstructions"`
}

// BillingPeriod is the time range a statement covers [V names].
type BillingPeriod struct {
	// StartDate is the first day of the period.
	StartDate Timestamp `json:"startDate" otpc:"req"`
	// EndDate is the last day of the period.
	EndDate Timestamp `json:"endDate" otpc:"req"`
}

// RemittanceInstructions tells the integrator how to pay a statement [S].
type RemittanceInstructions struct {
	// MemoLineID must appear on the payment's memo line.
	MemoLineID string `json:"memoLineId"`
}

// RemittanceStatementNotificationResponse acknowledges a statement
// (spec §5.7) [U/S shape from v1].
type RemittanceStatementNotificationResponse struct {
	// ResponseHeader is the common response header.
	ResponseHeader ResponseHeader `json:"responseHeader" otpc:"req"`
	// PaymentIntegratorStatementID is our id of the statement. The spec has
	// it as optional [U]; we always send it (safe reading: required here).
	PaymentIntegratorStatementID string `json:"paymentIntegratorStatementId" otpc:"req"`
	// Result is the outcome.
	Result RemittanceStatementNotificationResult `json:"result" otpc:"req"`
}

// RemittanceStatementNotificationResult is the outcome of
// remittanceStatementNotification. Union: exactly one member [U].
//
//otpc:union
type RemittanceStatementNotificationResult struct {
	// Accepted: the statement was received.
	Accepted *Empty `json:"accepted"`
}
