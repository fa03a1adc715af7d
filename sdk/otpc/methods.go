package otpc

// Method describes one OTPC v2 method. The table of them (Methods) is the
// one place a method is declared: the name lists, the message factories,
// the host's routes and its pipeline's dispatch derive from it.
type Method struct {
	// Name is the method's name, the last path segment (spec §5, §6).
	Name string
	// Side says who serves it: Google calls the integrator's methods and
	// the integrator calls Google's. Echo is served on both sides.
	Side Side
	// Op is the plugin operation that decides the method, or OpWarmup
	// when no plugin takes part (echo; Google-hosted methods).
	Op Op
	// NewRequest and NewResponse return a new, zero message of the
	// method's request and response types.
	NewRequest  func() Request
	NewResponse func() Response
}

// Side says which party serves a method.
type Side uint8

const (
	// Integrator methods are served by the payment integrator (otpcgate)
	// and called by Google (spec §5).
	Integrator Side = 1 << iota
	// Google methods are served by Google and called by the integrator
	// (spec §6).
	Google
)

// methods is the table. Order is the spec's: integrator-hosted first.
var methods = [...]Method{
	{MethodEcho, Integrator | Google, OpWarmup,
		func() Request { return new(EchoRequest) }, func() Response { return new(EchoResponse) }},
	{MethodAssociateAccount, Integrator, OpAssociate,
		func() Request { return new(AssociateAccountRequest) }, func() Response { return new(AssociateAccountResponse) }},
	{MethodGenerateReferenceNumber, Integrator, OpGenerate,
		func() Request { return new(GenerateReferenceNumberRequest) }, func() Response { return new(GenerateReferenceNumberResponse) }},
	{MethodCancelReferenceNumber, Integrator, OpCancel,
		func() Request { return new(CancelReferenceNumberRequest) }, func() Response { return new(CancelReferenceNumberResponse) }},
	{MethodRefund, Integrator, OpRefund,
		func() Request { return new(RefundRequest) }, func() Response { return new(RefundResponse) }},
	{MethodAsynchronousRefund, Integrator, OpAsyncRefund,
		func() Request { return new(RefundRequest) }, func() Response { return new(AsynchronousRefundResponse) }},
	{MethodRemittanceStatementNotification, Integrator, OpRemittance,
		func() Request { return new(RemittanceStatementNotificationRequest) }, func() Response { return new(RemittanceStatementNotificationResponse) }},
	{MethodReferenceNumberPaidNotification, Google, OpWarmup,
		func() Request { return new(ReferenceNumberPaidNotificationRequest) }, func() Response { return new(ReferenceNumberPaidNotificationResponse) }},
	{MethodRefundResultNotification, Google, OpWarmup,
		func() Request { return new(RefundResultNotificationRequest) }, func() Response { return new(RefundResultNotificationResponse) }},
	{MethodRemittanceStatementDetails, Google, OpWarmup,
		func() Request { return new(RemittanceStatementDetailsRequest) }, func() Response { return new(RemittanceStatementDetailsResponse) }},
	{MethodAcceptRemittanceStatement, Google, OpWarmup,
		func() Request { return new(AcceptRemittanceStatementRequest) }, func() Response { return new(AcceptRemittanceStatementResponse) }},
	{MethodAcceptRemittanceStatementWithModifications, Google, OpWarmup,
		func() Request { return new(AcceptRemittanceStatementWithModificationsRequest) },
		func() Response { return new(AcceptRemittanceStatementWithModificationsResponse) }},
}

// Methods returns every method of side (Integrator, Google, or both ORed),
// in the spec's order.
func Methods(side Side) []Method {
	var out []Method
	for _, m := range methods {
		if m.Side&side != 0 {
			out = append(out, m)
		}
	}
	return out
}

// LookupMethod returns the method named name served on side.
func LookupMethod(side Side, name string) (Method, bool) {
	for _, m := range methods {
		if m.Name == name && m.Side&side != 0 {
			return m, true
		}
	}
	return Method{}, false
}

func names(side Side) []string {
	ms := Methods(side)
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Name
	}
	return out
}

// IntegratorMethods lists every integrator-hosted method name.
func IntegratorMethods() []string { return names(Integrator) }

// GoogleMethods lists every Google-hosted method name.
func GoogleMethods() []string { return names(Google) }

// NewIntegratorRequest returns a new, zero request for an integrator-hosted
// method name (Google calls us), or nil for an unknown method.
func NewIntegratorRequest(method string) Request {
	if m, ok := LookupMethod(Integrator, method); ok {
		return m.NewRequest()
	}
	return nil
}

// NewIntegratorResponse returns a new, zero response for an
// integrator-hosted method name, or nil for an unknown method.
func NewIntegratorResponse(method string) Response {
	if m, ok := LookupMethod(Integrator, method); ok {
		return m.NewResponse()
	}
	return nil
}

// NewGoogleRequest returns a new, zero request for a Google-hosted method
// name (we call Google), or nil for an unknown method.
func NewGoogleRequest(method string) Request {
	if m, ok := LookupMethod(Google, method); ok {
		return m.NewRequest()
	}
	return nil
}

// NewGoogleResponse returns a new, zero response for a Google-hosted method
// name, or nil for an unknown method.
func NewGoogleResponse(method string) Response {
	if m, ok := LookupMethod(Google, method); ok {
		return m.NewResponse()
	}
	return nil
}
