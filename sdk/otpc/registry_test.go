package otpc

// message is the method set every generated type has.
type message interface {
	AppendJSON([]byte) []byte
	MarshalJSON() ([]byte, error)
	UnmarshalJSON([]byte) error
	Validate() error
}

// requestTypes are the decrypted requests a host decodes from untrusted
// input, plus the plugin input frames a guest decodes.
var requestTypes = []struct {
	name string
	new  func() message
}{
	{"EchoRequest", func() message { return new(EchoRequest) }},
	{"AssociateAccountRequest", func() message { return new(AssociateAccountRequest) }},
	{"GenerateReferenceNumberRequest", func() message { return new(GenerateReferenceNumberRequest) }},
	{"CancelReferenceNumberRequest", func() message { return new(CancelReferenceNumberRequest) }},
	{"RefundRequest", func() message { return new(RefundRequest) }},
	{"RemittanceStatementNotificationRequest", func() message { return new(RemittanceStatementNotificationRequest) }},
	{"ReferenceNumberPaidNotificationRequest", func() message { return new(ReferenceNumberPaidNotificationRequest) }},
	{"RefundResultNotificationRequest", func() message { return new(RefundResultNotificationRequest) }},
	{"RemittanceStatementDetailsRequest", func() message { return new(RemittanceStatementDetailsRequest) }},
	{"AcceptRemittanceStatementRequest", func() message { return new(AcceptRemittanceStatementRequest) }},
	{"AcceptRemittanceStatementWithModificationsRequest", func() message { return new(AcceptRemittanceStatementWithModificationsRequest) }},
	{"AuthenticationRequest", func() message { return new(AuthenticationRequest) }},
	{"AuthenticationResponse", func() message { return new(AuthenticationResponse) }},
	{"GenerateInput", func() message { return new(GenerateInput) }},
	{"CancelInput", func() message { return new(CancelInput) }},
	{"RefundInput", func() message { return new(RefundInput) }},
	{"AssociateInput", func() message { return new(AssociateInput) }},
	{"RemittanceInput", func() message { return new(RemittanceInput) }},
	{"PaidInput", func() message { return new(PaidInput) }},
	{"RefundDoneInput", func() message { return new(RefundDoneInput) }},
	{"AuthenticateInput", func() message { return new(AuthenticateInput) }},
}

// responseTypes are responses and plugin output frames.
var responseTypes = []struct {
	name string
	new  func() message
}{
	{"EchoResponse", func() message { return new(EchoResponse) }},
	{"AssociateAccountResponse", func() message { return new(AssociateAccountResponse) }},
	{"GenerateReferenceNumberResponse", func() message { return new(GenerateReferenceNumberResponse) }},
	{"CancelReferenceNumberResponse", func() message { return new(CancelReferenceNumberResponse) }},
	{"RefundResponse", func() message { return new(RefundResponse) }},
	{"AsynchronousRefundResponse", func() message { return new(AsynchronousRefundResponse) }},
	{"RemittanceStatementNotificationResponse", func() message { return new(RemittanceStatementNotificationResponse) }},
	{"ReferenceNumberPaidNotificationResponse", func() message { return new(ReferenceNumberPaidNotificationResponse) }},
	{"RefundResultNotificationResponse", func() message { return new(RefundResultNotificationResponse) }},
	{"RemittanceStatementDetailsResponse", func() message { return new(RemittanceStatementDetailsResponse) }},
	{"AcceptRemittanceStatementResponse", func() message { return new(AcceptRemittanceStatementResponse) }},
	{"AcceptRemittanceStatementWithModificationsResponse", func() message { return new(AcceptRemittanceStatementWithModificationsResponse) }},
	{"ErrorResponse", func() message { return new(ErrorResponse) }},
	{"GenerateOutput", func() message { return new(GenerateOutput) }},
	{"CancelOutput", func() message { return new(CancelOutput) }},
	{"RefundOutput", func() message { return new(RefundOutput) }},
	{"AsyncRefundOutput", func() message { return new(AsyncRefundOutput) }},
	{"AssociateOutput", func() message { return new(AssociateOutput) }},
	{"RemittanceOutput", func() message { return new(RemittanceOutput) }},
	{"PaidOutput", func() message { return new(PaidOutput) }},
	{"RefundDoneOutput", func() message { return new(RefundDoneOutput) }},
	{"AuthenticateOutput", func() message { return new(AuthenticateOutput) }},
}

func newMessage(name string) message {
	for _, t := range requestTypes {
		if t.name == name {
			return t.new()
		}
	}
	for _, t := range responseTypes {
		if t.name == name {
			return t.new()
		}
	}
	return nil
}
