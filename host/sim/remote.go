package sim

// This file reports merchant events to a gateway in another process: the
// lever the notification scenarios need when the gateway under test is
// `otpcgate dev` running elsewhere.

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/otpcgate/otpcgate/host/admin"
	"github.com/otpcgate/otpcgate/host/merchant"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// RemoteMerchantEvents reports merchant events over the merchant HTTP API
// of the admin listener, with one merchant-scoped token per merchant.
type RemoteMerchantEvents struct {
	// BaseURL is the admin API, e.g. "http://127.0.0.1:8444".
	BaseURL string
	// Tokens maps a merchant id to its merchant token's secret.
	Tokens map[string]string
	// HTTP is the client; nil means http.DefaultClient.
	HTTP *http.Client
}

var _ MerchantEvents = (*RemoteMerchantEvents)(nil)

func (r *RemoteMerchantEvents) client(merchantID string) *admin.Client {
	return &admin.Client{BaseURL: r.BaseURL, Token: r.Tokens[merchantID], HTTP: r.HTTP}
}

// ReportPayment posts a payment at a store.
func (r *RemoteMerchantEvents) ReportPayment(ctx context.Context, merchantID string, p merchant.Payment) (merchant.PaymentResult, error) {
	var res merchant.PaymentResult
	err := r.client(merchantID).Do(ctx, http.MethodPost, admin.MerchantPath(merchantID, "payments"), p, &res)
	return res, err
}

// ReportRefundResult posts an asynchronous refund's outcome.
func (r *RemoteMerchantEvents) ReportRefundResult(ctx context.Context, merchantID string, o merchant.RefundOutcome) (merchant.RefundOutcomeResult, error) {
	var res merchant.RefundOutcomeResult
	err := r.client(merchantID).Do(ctx, http.MethodPost, admin.MerchantPath(merchantID, "refund-results"), o, &res)
	return res, err
}

// AcceptStatement accepts a statement, with modifications when
// a.Modification is set.
func (r *RemoteMerchantEvents) AcceptStatement(ctx context.Context, merchantID string, a merchant.Acceptance) (merchant.AcceptanceResult, error) {
	var res merchant.AcceptanceResult
	var body any
	if a.Modification != nil {
		body = map[string]any{"modification": a.Modification}
	}
	err := r.client(merchantID).Do(ctx, http.MethodPost, admin.MerchantPath(merchantID, "statements", a.PIAID, a.StatementID, "accept"), body, &res)
	return res, err
}

// StatementDetails fetches one page of a statement's events from Google
// through the gateway.
func (r *RemoteMerchantEvents) StatementDetails(ctx context.Context, merchantID, piaid, statementID string, offset, count int32) (*otpc.RemittanceStatementDetailsResponse, error) {
	var res otpc.RemittanceStatementDetailsResponse
	q := url.Values{"offset": {strconv.Itoa(int(offset))}, "count": {strconv.Itoa(int(count))}}
	err := r.client(merchantID).Do(ctx, http.MethodGet, admin.MerchantPath(merchantID, "statements", piaid, statementID)+"?"+q.Encode(), nil, &res)
	if err != nil {
		return nil, err
	}
	return &res, nil
}
