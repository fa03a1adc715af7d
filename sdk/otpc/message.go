package otpc

// Message is implemented by every message and plugin frame type of this
// package (pointer receivers).
type Message interface {
	// AppendJSON appends the JSON encoding to dst.
	AppendJSON(dst []byte) []byte
	// UnmarshalJSON decodes strictly, replacing the whole value.
	UnmarshalJSON(data []byte) error
	// Validate checks required fields, formats and unions (*FieldError).
	Validate() error
}

// Request is a message with a RequestHeader.
type Request interface {
	Message
	// Header returns a pointer to the request header.
	Header() *RequestHeader
}

// Response is a message with a ResponseHeader (including ErrorResponse).
type Response interface {
	Message
	// Header returns a pointer to the response header.
	Header() *ResponseHeader
}

// NewIntegratorRequest returns a new, zero request for an integrator-hosted
// method name (Google calls us), or nil for an unknown method.
func NewIntegratorRequest(method string) Request {
	switch method {
	case MethodEcho:
		return new(EchoRequest)
	case MethodAssociateAccount:
		return new(AssociateAccountRequest)
	case MethodGenerateReferenceNumber:
		return new(GenerateReferenceNumberRequest)
	case MethodCancelReferenceNumber:
		return new(CancelReferenceNumberRequest)
	case MethodRefund, MethodAsynchronousRefund:
		return new(RefundRequest)
	case MethodRemittanceStatementNotification:
		return new(RemittanceStatementNotificationRequest)
	}
	return nil
}

// NewIntegratorResponse returns a new, zero response for an
// integrator-hosted method name, or nil for an unknown method.
func NewIntegratorResponse(method string) Response {
	switch method {
	case MethodEcho:
		return new(EchoResponse)
	case MethodAssociateAccount:
		return new(AssociateAccountResponse)
	case MethodGenerateReferenceNumber:
		return new(GenerateReferenceNumberResponse)
	case MethodCancelReferenceNumber:
		return new(CancelReferenceNumberResponse)
	case MethodRefund:
		return new(RefundResponse)
	case MethodAsynchronousRefund:
		return new(AsynchronousRefundResponse)
	case MethodRemittanceStatementNotification:
		return new(RemittanceStatementNotificationResponse)
	}
	return nil
}

// NewGoogleRequest returns a new, zero request for a Google-hosted method
// name (we call Google), or nil for an unknown method.
func NewGoogleRequest(method string) Request {
	switch method {
	case MethodEcho:
		return new(EchoRequest)
	case MethodReferenceNumberPaidNotification:
		return new(ReferenceNumberPaidNotificationRequest)
	case MethodRefundResultNotification:
		return new(RefundResultNotificationRequest)
	case MethodRemittanceStatementDetails:
		return new(RemittanceStatementDetailsRequest)
	case MethodAcceptRemittanceStatement:
		return new(AcceptRemittanceStatementRequest)
	case MethodAcceptRemittanceStatementWithModifications:
		return new(AcceptRemittanceStatementWithModificationsRequest)
	}
	return nil
}

// NewGoogleResponse returns a new, zero response for a Google-hosted method
// name, or nil for an unknown method.
func NewGoogleResponse(method string) Response {
	switch method {
	case MethodEcho:
		return new(EchoResponse)
	case MethodReferenceNumberPaidNotification:
		return new(ReferenceNumberPaidNotificationResponse)
	case MethodRefundResultNotification:
		return new(RefundResultNotificationResponse)
	case MethodRemittanceStatementDetails:
		return new(RemittanceStatementDetailsResponse)
	case MethodAcceptRemittanceStatement:
		return new(AcceptRemittanceStatementResponse)
	case MethodAcceptRemittanceStatementWithModifications:
		return new(AcceptRemittanceStatementWithModificationsResponse)
	}
	return nil
}
