package otpc

// Plugin call frames: the contract between the otpcgate host and a merchant
// plugin. The host calls the guest's otpc_handle(op, ptr, len) with the JSON
// encoding of the op's input frame and receives the JSON encoding of its
// output frame. The OTPC response header is added by the host, so outputs
// carry only the result part.

// Op selects the plugin operation. The numbers are part of the wire ABI:
// never renumber, only append.
type Op uint32

// Plugin operations.
const (
	// OpWarmup takes no input; the plugin returns empty output. The host
	// uses it to warm fresh instances.
	OpWarmup Op = 0
	// OpGenerate: GenerateInput -> GenerateOutput.
	OpGenerate Op = 1
	// OpCancel: CancelInput -> CancelOutput.
	OpCancel Op = 2
	// OpRefund: RefundInput -> RefundOutput (synchronous refund).
	OpRefund Op = 3
	// OpAsyncRefund: RefundInput -> AsyncRefundOutput.
	OpAsyncRefund Op = 4
	// OpAssociate: AssociateInput -> AssociateOutput.
	OpAssociate Op = 5
	// OpRemittance: RemittanceInput -> RemittanceOutput.
	OpRemittance Op = 6
	// OpPaid: PaidInput -> PaidOutput (the merchant reports a store payment).
	OpPaid Op = 7
	// OpRefundDone: RefundDoneInput -> RefundDoneOutput (the merchant
	// reports the final result of an asynchronous refund).
	OpRefundDone Op = 8
	// OpAuthenticate: AuthenticateInput -> AuthenticateOutput (login page
	// credentials).
	OpAuthenticate Op = 9
)

// opNames names every op, indexed by op: the one list of ops (String and
// Valid derive from it).
var opNames = [...]string{
	OpWarmup:       "warmup",
	OpGenerate:     "generate",
	OpCancel:       "cancel",
	OpRefund:       "refund",
	OpAsyncRefund:  "asyncRefund",
	OpAssociate:    "associate",
	OpRemittance:   "remittance",
	OpPaid:         "paid",
	OpRefundDone:   "refundDone",
	OpAuthenticate: "authenticate",
}

// String returns the op's name, e.g. "generate", or "op(N)".
func (o Op) String() string {
	if o.Valid() {
		return opNames[o]
	}
	return "op(" + itoa(int64(o)) + ")"
}

// Valid reports whether o is a known op.
func (o Op) Valid() bool { return int(o) < len(opNames) }

// Code states in CodeInfo.State.
const (
	CodeStateIssued    = "issued"
	CodeStatePaid      = "paid"
	CodeStateCancelled = "cancelled"
	CodeStateExpired   = "expired"
	CodeStateRefunded  = "refunded"
)

// CodeInfo is what the host's ledger knows about a reference number.
//
//otpc:extra
type CodeInfo struct {
	// GenerateRequestID is the requestId of the generateReferenceNumber call
	// (the transaction id).
	GenerateRequestID string `json:"generateRequestId" otpc:"req"`
	// AccountID is the merchant's account id the code belongs to.
	AccountID string `json:"accountId"`
	// Amount is the amount to be paid.
	Amount Amount `json:"amount" otpc:"req"`
	// PrintableString is the code's printable form, if any.
	PrintableString string `json:"printableString"`
	// BarcodeContents is the code's barcode payload, if any.
	BarcodeContents string `json:"barcodeContents"`
	// State is one of the CodeState* constants.
	State string `json:"state" otpc:"req"`
	// PaidMicros is the amount paid so far.
	PaidMicros int64 `json:"paidMicros" otpc:"nonneg"`
	// RefundedMicros is the amount refunded so far.
	RefundedMicros int64 `json:"refundedMicros" otpc:"nonneg"`
	// CreatedAt is when the code was issued.
	CreatedAt *Timestamp `json:"createdAt"`
	// ExpiresAt is when the code stops being payable.
	ExpiresAt *Timestamp `json:"expiresAt"`
	// PaidAt is when the code was paid.
	PaidAt *Timestamp `json:"paidAt"`
}

// GenerateInput is the input of OpGenerate.
type GenerateInput struct {
	// Request is the decrypted generateReferenceNumber request.
	Request GenerateReferenceNumberRequest `json:"request" otpc:"req"`
	// AccountID is the merchant account bound to the request's GPT.
	AccountID string `json:"accountId"`
}

// GenerateOutput is the output of OpGenerate.
type GenerateOutput struct {
	// Result becomes the response's result.
	Result GenerateReferenceNumberResult `json:"result" otpc:"req"`
	// ExpiresAt is when the new code stops being payable, optional.
	ExpiresAt *Timestamp `json:"expiresAt"`
}

// CancelInput is the input of OpCancel.
type CancelInput struct {
	// Request is the decrypted cancelReferenceNumber request.
	Request CancelReferenceNumberRequest `json:"request" otpc:"req"`
	// Code is the ledger's view of the code being cancelled.
	Code CodeInfo `json:"code" otpc:"req"`
}

// CancelOutput is the output of OpCancel.
type CancelOutput struct {
	// Result becomes the response's result.
	Result CancelReferenceNumberResult `json:"result" otpc:"req"`
}

// RefundInput is the input of OpRefund and OpAsyncRefund.
type RefundInput struct {
	// Request is the decrypted refund or asynchronousRefund request.
	Request RefundRequest `json:"request" otpc:"req"`
	// Code is the ledger's view of the refunded code.
	Code CodeInfo `json:"code" otpc:"req"`
}

// RefundOutput is the output of OpRefund.
type RefundOutput struct {
	// Result becomes the response's result.
	Result RefundResult `json:"result" otpc:"req"`
}

// AsyncRefundOutput is the output of OpAsyncRefund.
type AsyncRefundOutput struct {
	// Result becomes the response's result.
	Result AsynchronousRefundResult `json:"result" otpc:"req"`
}

// AssociateInput is the input of OpAssociate.
type AssociateInput struct {
	// Request is the decrypted associateAccount request.
	Request AssociateAccountRequest `json:"request" otpc:"req"`
	// AccountID is the account the user authenticated as in the web flow.
	AccountID string `json:"accountId"`
}

// AssociateOutput is the output of OpAssociate.
type AssociateOutput struct {
	// Result becomes the response's result.
	Result AssociateAccountResult `json:"result" otpc:"req"`
}

// RemittanceInput is the input of OpRemittance.
type RemittanceInput struct {
	// Request is the decrypted remittanceStatementNotification request.
	Request RemittanceStatementNotificationRequest `json:"request" otpc:"req"`
}

// RemittanceOutput is the output of OpRemittance.
type RemittanceOutput struct {
	// PaymentIntegratorStatementID is the merchant's id of the statement;
	// if empty the host uses the statement id (the request's requestId).
	PaymentIntegratorStatementID string `json:"paymentIntegratorStatementId"`
	// Result becomes the response's result.
	Result RemittanceStatementNotificationResult `json:"result" otpc:"req"`
}

// PaidInput is the input of OpPaid: a store reported a payment.
type PaidInput struct {
	// Code is the ledger's view of the paid code.
	Code CodeInfo `json:"code" otpc:"req"`
	// Amount is the amount paid at the store.
	Amount Amount `json:"amount" otpc:"req,pos"`
	// PaidAt is when the user paid.
	PaidAt Timestamp `json:"paidAt" otpc:"req"`
	// StoreID identifies the store or kiosk, optional.
	StoreID string `json:"storeId"`
	// MerchantPaymentID is the merchant's id of the payment, optional.
	MerchantPaymentID string `json:"merchantPaymentId"`
}

// PaidOutput is the output of OpPaid.
type PaidOutput struct {
	// Accepted reports whether the payment is accepted; if true the host
	// sends referenceNumberPaidNotification.
	Accepted bool `json:"accepted"`
	// DeclineReason says why a payment was not accepted.
	DeclineReason string `json:"declineReason"`
	// PaymentIntegratorTransactionID is the id sent to Google as
	// paymentIntegratorTransactionId; the host generates one if empty.
	PaymentIntegratorTransactionID string `json:"paymentIntegratorTransactionId"`
}

// RefundDoneInput is the input of OpRefundDone: the merchant reports the
// final outcome of an asynchronous refund.
type RefundDoneInput struct {
	// RefundRequestID is the requestId of the asynchronousRefund call.
	RefundRequestID string `json:"refundRequestId" otpc:"req"`
	// Code is the ledger's view of the refunded code.
	Code CodeInfo `json:"code" otpc:"req"`
	// Amount is the refund amount.
	Amount Amount `json:"amount" otpc:"req,pos"`
	// Success is the merchant's outcome.
	Success bool `json:"success"`
	// Detail is the merchant's free-text detail (never sent to Google).
	Detail string `json:"detail"`
}

// RefundDoneOutput is the output of OpRefundDone.
type RefundDoneOutput struct {
	// Result is sent to Google in refundResultNotification.
	Result RefundResult `json:"result" otpc:"req"`
}

// AuthenticateInput is the input of OpAuthenticate: credentials entered on
// the login page.
type AuthenticateInput struct {
	// AccountID is the account the user claims.
	AccountID string `json:"accountId" otpc:"req"`
	// Secret is the credential entered by the user. Never log it.
	Secret string `json:"secret"`
	// AssociationID, if set, is the association the user must match.
	AssociationID string `json:"associationId"`
}

// AuthenticateOutput is the output of OpAuthenticate.
type AuthenticateOutput struct {
	// Authenticated reports whether the credentials are valid.
	Authenticated bool `json:"authenticated"`
	// AccountID is the canonical account id, if authenticated.
	AccountID string `json:"accountId"`
}

// validateExtra checks State against the known code states.
func (m *CodeInfo) validateExtra(v *validator, p *path) {
	switch m.State {
	case "", CodeStateIssued, CodeStatePaid, CodeStateCancelled, CodeStateExpired, CodeStateRefunded:
	default:
		v.invalid(p, "state", "unknown code state")
	}
}
