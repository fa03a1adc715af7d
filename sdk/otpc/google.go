package otpc

// This file holds the Google-hosted methods: otpcgate calls them on Google
// (spec §6). Echo uses EchoRequest and EchoResponse.

// ReferenceNumberPaidNotificationRequest tells Google that the user paid a
// code (spec §6.2) [V]. Send it as soon as the payment happens.
type ReferenceNumberPaidNotificationRequest struct {
	// RequestHeader is the common request header.
	RequestHeader RequestHeader `json:"requestHeader" otpc:"req"`
	// PaymentIntegratorTransactionID is our id of the payment.
	PaymentIntegratorTransactionID string `json:"paymentIntegratorTransactionId" otpc:"req"`
	// GenerateReferenceNumberRequestID identifies the code (transaction).
	GenerateReferenceNumberRequestID string `json:"generateReferenceNumberRequestId" otpc:"req"`
	// PaymentTimestamp is when the user paid.
	PaymentTimestamp Timestamp `json:"paymentTimestamp" otpc:"req"`
}

// ReferenceNumberPaidNotificationResponse is Google's answer (spec §6.2) [V].
type ReferenceNumberPaidNotificationResponse struct {
	// ResponseHeader is the common response header.
	ResponseHeader ResponseHeader `json:"responseHeader" otpc:"req"`
	// Result is the outcome. Required [U].
	Result SuccessResult `json:"result" otpc:"req"`
}

// SuccessResult is a result union whose only known member is success
// (referenceNumberPaidNotification, refundResultNotification,
// acceptRemittanceStatement) [V success; other members unknown]. Exactly one
// member must be set.
//
//otpc:union
type SuccessResult struct {
	// Success: the call was processed.
	Success *Empty `json:"success"`
}

// RefundResultNotificationRequest reports the final result of a refund
// (spec §6.3) [V]. The result for a refundRequestId cannot be changed later.
type RefundResultNotificationRequest struct {
	// RequestHeader is the common request header.
	RequestHeader RequestHeader `json:"requestHeader" otpc:"req"`
	// RefundRequestID is the requestId of the refund or asynchronousRefund.
	RefundRequestID string `json:"refundRequestId" otpc:"req"`
	// Result is the refund's outcome.
	Result RefundResult `json:"result" otpc:"req"`
}

// RefundResultNotificationResponse is Google's answer (spec §6.3) [V].
type RefundResultNotificationResponse struct {
	// ResponseHeader is the common response header.
	ResponseHeader ResponseHeader `json:"responseHeader" otpc:"req"`
	// Result is the outcome. Required [U].
	Result SuccessResult `json:"result" otpc:"req"`
}

// RemittanceStatementDetailsRequest fetches one page of a statement's
// events (spec §6.4) [V head].
type RemittanceStatementDetailsRequest struct {
	// RequestHeader is the common request header.
	RequestHeader RequestHeader `json:"requestHeader" otpc:"req"`
	// StatementID is the requestId of the remittanceStatementNotification.
	StatementID string `json:"statementId" otpc:"req"`
	// NumberOfEvents is the page size, at most 1000 (also the default).
	NumberOfEvents int32 `json:"numberOfEvents" otpc:"nonneg,max=1000"`
	// EventOffset is the offset of the first event to return [U name].
	EventOffset int32 `json:"eventOffset" otpc:"nonneg"`
}

// RemittanceStatementDetailsResponse is one page of a statement
// (spec §6.4) [V start, U rest].
type RemittanceStatementDetailsResponse struct {
	// ResponseHeader is the common response header.
	ResponseHeader ResponseHeader `json:"responseHeader" otpc:"req"`
	// RemittanceStatementSummary summarises the statement.
	RemittanceStatementSummary RemittanceStatementSummary `json:"remittanceStatementSummary" otpc:"req"`
	// EventOffset is the offset of the first event of this page [S].
	EventOffset int32 `json:"eventOffset" otpc:"nonneg"`
	// NextEventOffset is the offset of the next page; absent (0) on the
	// last page.
	NextEventOffset int32 `json:"nextEventOffset" otpc:"nonneg"`
	// TotalEvents is the number of events in the statement.
	TotalEvents int32 `json:"totalEvents" otpc:"nonneg"`
	// CaptureEvents are the payments in this page [S/U: v1 array name].
	CaptureEvents []Event `json:"captureEvents"`
	// RefundEvents are the refunds in this page [S/U].
	RefundEvents []Event `json:"refundEvents"`
	// ReverseRefundEvents are reversed refunds [S/U].
	ReverseRefundEvents []Event `json:"reverseRefundEvents"`
	// ChargebackEvents are chargebacks [S/U].
	ChargebackEvents []Event `json:"chargebackEvents"`
	// ReverseChargebackEvents are reversed chargebacks [S/U].
	ReverseChargebackEvents []Event `json:"reverseChargebackEvents"`
	// AdjustmentEvents are manual adjustments [S/U].
	AdjustmentEvents []Event `json:"adjustmentEvents"`
}

// Event is one transaction in a statement. The v2 shape was not readable;
// these fields follow the v1 / standard-payments events [S/U]. Unknown
// event fields are skipped.
type Event struct {
	// EventRequestID is Google's requestId of the original call (for a
	// capture: the generateReferenceNumber requestId).
	EventRequestID string `json:"eventRequestId"`
	// PaymentIntegratorEventID is our id of the event.
	PaymentIntegratorEventID string `json:"paymentIntegratorEventId"`
	// EventCharge is the amount moved by the event [U type].
	EventCharge *Amount `json:"eventCharge"`
	// EventFee is the fee charged for the event [U type].
	EventFee *Amount `json:"eventFee"`
}

// AcceptRemittanceStatementRequest tells Google the statement will be paid
// (spec §6.5) [V].
type AcceptRemittanceStatementRequest struct {
	// RequestHeader is the common request header.
	RequestHeader RequestHeader `json:"requestHeader" otpc:"req"`
	// StatementID is the requestId of the remittanceStatementNotification.
	StatementID string `json:"statementId" otpc:"req"`
}

// AcceptRemittanceStatementResponse is Google's answer (spec §6.5) [V].
type AcceptRemittanceStatementResponse struct {
	// ResponseHeader is the common response header.
	ResponseHeader ResponseHeader `json:"responseHeader" otpc:"req"`
	// Result is the outcome.
	Result SuccessResult `json:"result" otpc:"req"`
}

// AcceptRemittanceStatementWithModificationsRequest accepts a statement
// with a modification (spec §6.6) [S; existence for v2 V]. The
// modification is a union whose members sit directly in the request object
// (sibling redirect-fop-v1); Validate requires exactly one of them.
//
//otpc:extra
type AcceptRemittanceStatementWithModificationsRequest struct {
	// RequestHeader is the common request header.
	RequestHeader RequestHeader `json:"requestHeader" otpc:"req"`
	// StatementID is the requestId of the remittanceStatementNotification.
	StatementID string `json:"statementId" otpc:"req"`
	// FeeToVatModification reclassifies part of the fees as VAT [S].
	FeeToVatModification *FeeToVatModification `json:"feeToVatModification"`
	// SettlementExchangeRateModification changes the settlement exchange
	// rate (rev 2.0.4) [S; fields U].
	SettlementExchangeRateModification *SettlementExchangeRateModification `json:"settlementExchangeRateModification"`
	// FeeToVatAndSettlementExchangeRateModification does both [S; fields U].
	FeeToVatAndSettlementExchangeRateModification *FeeToVatAndSettlementExchangeRateModification `json:"feeToVatAndSettlementExchangeRateModification"`
}

// FeeToVatModification gives the VAT share of the fees [S].
type FeeToVatModification struct {
	// VatToFeeRatioInMicros is the VAT/fee ratio × 1,000,000.
	VatToFeeRatioInMicros int64 `json:"vatToFeeRatioInMicros" otpc:"req,nonneg"`
}

// SettlementExchangeRateModification sets the exchange rate used to settle
// the statement [S existence; field name U].
type SettlementExchangeRateModification struct {
	// ExchangeRateInMicros is the settlement rate × 1,000,000 [U].
	ExchangeRateInMicros int64 `json:"exchangeRateInMicros" otpc:"req,pos"`
}

// FeeToVatAndSettlementExchangeRateModification combines both
// modifications [S existence; fields U].
type FeeToVatAndSettlementExchangeRateModification struct {
	// VatToFeeRatioInMicros is the VAT/fee ratio × 1,000,000.
	VatToFeeRatioInMicros int64 `json:"vatToFeeRatioInMicros" otpc:"req,nonneg"`
	// ExchangeRateInMicros is the settlement rate × 1,000,000 [U].
	ExchangeRateInMicros int64 `json:"exchangeRateInMicros" otpc:"req,pos"`
}

// AcceptRemittanceStatementWithModificationsResponse is Google's answer
// (spec §6.6) [S/U].
type AcceptRemittanceStatementWithModificationsResponse struct {
	// ResponseHeader is the common response header.
	ResponseHeader ResponseHeader `json:"responseHeader" otpc:"req"`
	// Result is the outcome [U members].
	Result SuccessResult `json:"result" otpc:"req"`
	// ModifiedTotalDueByIntegrator is returned when an exchange-rate
	// modification was accepted (rev 2.0.5) [V].
	ModifiedTotalDueByIntegrator *Amount `json:"modifiedTotalDueByIntegrator"`
}

// validateExtra enforces the inline modification union: exactly one of the
// three modification members.
func (m *AcceptRemittanceStatementWithModificationsRequest) validateExtra(v *validator, p *path) {
	n := 0
	for _, set := range [...]bool{m.FeeToVatModification != nil, m.SettlementExchangeRateModification != nil,
		m.FeeToVatAndSettlementExchangeRateModification != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		v.invalid(p, "modification", "exactly one of feeToVatModification, settlementExchangeRateModification, "+
			"feeToVatAndSettlementExchangeRateModification must be set, got "+itoa(int64(n)))
	}
}
