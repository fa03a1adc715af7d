package gateway

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/otpcgate/otpcgate/host/admin"
	"github.com/otpcgate/otpcgate/keystore"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// TestAdminDeleteMerchantAndReleasePIAID: a disabled merchant that never
// held a record can be deleted (PIAIDs, integration, plugin versions,
// tokens and its own keys go, audited) and a never-used PIAID released; a
// merchant or PIAID with records is refused, so no record ever becomes
// another merchant's.
func TestAdminDeleteMerchantAndReleasePIAID(t *testing.T) {
	a := newAdminEnv(t, admin.Config{})
	ctx := context.Background()
	op := a.client(a.operator)

	var m admin.Merchant
	spec := admin.MerchantSpec{ID: "acme", Name: "ACME", BasePath: "/acme", Envelope: "pgp", PIAIDs: []string{"ACME_JPY", "ACME_USD"}}
	if err := op.Do(ctx, http.MethodPost, "/v1/merchants", spec, &m); err != nil {
		t.Fatal(err)
	}
	var key admin.KeyView
	if err := op.Do(ctx, http.MethodPost, "/v1/merchants/acme/keys", admin.GenerateRequest{}, &key); err != nil {
		t.Fatal(err)
	}
	acmeToken := a.issue(t, "acme")
	keysetID := m.KeysetID

	// demo-pgp has answered Google: it holds records.
	pm := a.merchant(a.pgp)
	gen := &otpc.GenerateReferenceNumberRequest{RequestHeader: a.env.client.Header(a.pgp),
		GooglePaymentToken:     otpc.GooglePaymentToken{IssuerID: otpc.IssuerID{Value: pm.DemoIssuer}, Token: pm.DemoToken},
		TransactionDescription: "Google - Test", Amount: otpc.Amount{AmountMicros: 1_000_000_000, CurrencyCode: "JPY"}}
	if res, err := a.env.client.Call(ctx, a.pgp, otpc.MethodGenerateReferenceNumber, gen, &otpc.GenerateReferenceNumberResponse{}); err != nil || res.Status != http.StatusOK {
		t.Fatalf("generate on demo-pgp: %v %+v", err, res)
	}

	refused := []struct {
		name, method, path string
		want               int
		says               string
	}{
		{"delete an active merchant", http.MethodDelete, "/v1/merchants/acme", http.StatusConflict, "disable it first"},
		{"release from an active merchant", http.MethodDelete, "/v1/merchants/acme/piaids/ACME_USD", http.StatusConflict, "disable it first"},
		{"delete an unknown merchant", http.MethodDelete, "/v1/merchants/nobody", http.StatusNotFound, ""},
	}
	for _, tc := range refused {
		if got := status(op.Do(ctx, tc.method, tc.path, nil, nil)); got != tc.want {
			t.Fatalf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
	for _, id := range []string{"acme", "demo-pgp"} {
		if err := op.Do(ctx, http.MethodPost, "/v1/merchants/"+id+"/disable", nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ name, path, says string }{
		{"delete a merchant with records", "/v1/merchants/demo-pgp", "codes"},
		{"release a PIAID with records", "/v1/merchants/demo-pgp/piaids/DEMO_PGP_JPY", "idempotency"},
	} {
		err := op.Do(ctx, http.MethodDelete, tc.path, nil, nil)
		if got := status(err); got != http.StatusConflict || !strings.Contains(err.Error(), tc.says) {
			t.Fatalf("%s: %d %v, want 409 naming %s", tc.name, got, err, tc.says)
		}
	}
	if got := status(op.Do(ctx, http.MethodDelete, "/v1/merchants/acme/piaids/DEMO_PGP_JPY", nil, nil)); got != http.StatusNotFound {
		t.Fatalf("release another merchant's PIAID: %d, want 404", got)
	}
	if got := status(a.client(acmeToken.Secret).Do(ctx, http.MethodDelete, "/v1/merchants/acme", nil, nil)); got != http.StatusForbidden {
		t.Fatalf("a merchant token deleting its merchant: %d, want 403", got)
	}

	// A never-used PIAID is released and can go to another merchant.
	if err := op.Do(ctx, http.MethodDelete, "/v1/merchants/acme/piaids/ACME_USD", nil, &m); err != nil || !slices.Equal(m.PIAIDs, []string{"ACME_JPY"}) {
		t.Fatalf("release: %v %+v", err, m)
	}
	if err := op.Do(ctx, http.MethodPost, "/v1/merchants", admin.MerchantSpec{ID: "beta", BasePath: "/beta", Envelope: "pgp", PIAIDs: []string{"ACME_USD"}}, nil); err != nil {
		t.Fatalf("the released PIAID for a new merchant: %v", err)
	}

	// Delete: the merchant, its token and its own keys go.
	var gone admin.Merchant
	if err := op.Do(ctx, http.MethodDelete, "/v1/merchants/acme", nil, &gone); err != nil || gone.ID != "acme" {
		t.Fatalf("delete: %v %+v", err, gone)
	}
	if got := status(op.Do(ctx, http.MethodGet, "/v1/merchants/acme", nil, nil)); got != http.StatusNotFound {
		t.Fatalf("deleted merchant: %d, want 404", got)
	}
	if got := status(a.client(acmeToken.Secret).Do(ctx, http.MethodGet, "/v1/merchants/acme", nil, nil)); got != http.StatusUnauthorized {
		t.Fatalf("the deleted merchant's token: %d, want 401", got)
	}
	keys, err := a.g.Keys.List(ctx, keysetID)
	if err != nil || len(keys) != 1 || keys[0].State != keystore.StateDestroyed || keys[0].HasPrivate {
		t.Fatalf("the deleted merchant's keys: %v %+v", err, keys)
	}
	var ms []admin.Merchant
	if err := op.Do(ctx, http.MethodGet, "/v1/merchants", nil, &ms); err != nil {
		t.Fatal(err)
	}
	for _, x := range ms {
		if x.ID == "acme" {
			t.Fatalf("deleted merchant still listed")
		}
	}
	// The id, base path and PIAID are free; the old token stays refused.
	if err := op.Do(ctx, http.MethodPost, "/v1/merchants", admin.MerchantSpec{ID: "acme", BasePath: "/acme", Envelope: "pgp", PIAIDs: []string{"ACME_JPY"}}, nil); err != nil {
		t.Fatalf("re-create: %v", err)
	}
	if got := status(a.client(acmeToken.Secret).Do(ctx, http.MethodGet, "/v1/merchants/acme", nil, nil)); got != http.StatusUnauthorized {
		t.Fatalf("the old token on the re-created merchant: %d, want 401", got)
	}
	// demo-pgp kept everything.
	if res, err := a.env.client.Call(ctx, a.pgp, otpc.MethodGenerateReferenceNumber, gen, &otpc.GenerateReferenceNumberResponse{}); err != nil || res.Status != http.StatusForbidden {
		t.Fatalf("disabled demo-pgp after refusals: %v %+v", err, res)
	}

	var audit []admin.AuditEntry
	if err := op.Do(ctx, http.MethodGet, "/v1/audit?subject=merchant/acme", nil, &audit); err != nil {
		t.Fatal(err)
	}
	var acts []string
	for _, e := range audit {
		acts = append(acts, e.Action)
		if e.Action == "merchant.delete" && !strings.Contains(string(e.Before), `"ACME_JPY"`) {
			t.Errorf("delete audit lacks the merchant as it was: %s", e.Before)
		}
	}
	for _, want := range []string{"merchant.release_piaid", "merchant.delete"} {
		if !slices.Contains(acts, want) {
			t.Errorf("audit of merchant/acme %v lacks %s", acts, want)
		}
	}
}
