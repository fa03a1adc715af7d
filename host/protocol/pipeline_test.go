package protocol_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/host/devenv"
	"github.com/otpcgate/otpcgate/host/envelope"
	"github.com/otpcgate/otpcgate/host/ledger"
	"github.com/otpcgate/otpcgate/host/plugincall"
	"github.com/otpcgate/otpcgate/host/plugincall/plugincalltest"
	"github.com/otpcgate/otpcgate/host/protocol"
	"github.com/otpcgate/otpcgate/host/runtime"
	"github.com/otpcgate/otpcgate/host/runtime/runtimetest"
	"github.com/otpcgate/otpcgate/host/server"
	"github.com/otpcgate/otpcgate/keystore"
	"github.com/otpcgate/otpcgate/keystore/keystoretest"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

const (
	merchantID = "m1"
	piaid      = "PIAID_M1"
)

// directory is the pipeline's Directory over one merchant.
type directory map[string]*protocol.Merchant

func (d directory) Merchant(id string) (*protocol.Merchant, bool) { m, ok := d[id]; return m, ok }

// pipeline is one Pipeline over real parts: a SQLite ledger and keystore
// in a temporary directory, a JOSE keyset pair exchanged as Google and we
// would, and the konbini plugin built from plugins/ in the wasm runtime.
type pipeline struct {
	p       *protocol.Pipeline
	l       *ledger.Ledger
	m       *protocol.Merchant
	plugins *plugincalltest.Counting
	codec   envelope.Codec
	google  func() *keystore.Keyset
}

func newPipeline(t *testing.T) *pipeline {
	t.Helper()
	ctx := context.Background()
	ks, d := keystoretest.Open(t)
	l, err := ledger.New(ctx, d, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if err := l.Apply(ctx, func(tx *ledger.Tx) error {
		if err := tx.CreateMerchant(ledger.Merchant{ID: merchantID, Name: "Test", Status: ledger.MerchantActive}); err != nil {
			return err
		}
		if err := tx.AddPIAID(piaid, merchantID); err != nil {
			return err
		}
		// The payment token the requests carry is associated with an
		// account, as after associateAccount.
		return tx.Associate(ledger.Association{PIAID: piaid, AssociationID: "a1", RequestID: "assoc-1",
			IssuerID: "issuer", GPTHash: ledger.GPTHash("token"), AccountID: "account-1", AuthRequestID: "auth-1"})
	}); err != nil {
		t.Fatal(err)
	}
	ours := keystoretest.Exchange(t, ks, keystore.KindJWK)
	rt := runtimetest.Manager(t, runtime.Options{})
	wasm := runtimetest.Build(t, "../../plugins/konbini")
	if _, err := rt.Load(ctx, merchantID, runtime.VersionSpec{Version: "v1", Wasm: wasm, Config: devenv.KonbiniConfig}); err != nil {
		t.Fatal(err)
	}
	if err := rt.Activate(merchantID, "v1"); err != nil {
		t.Fatal(err)
	}
	codec, err := envelope.New(envelope.FormatJOSE, envelope.Config{})
	if err != nil {
		t.Fatal(err)
	}
	m := &protocol.Merchant{ID: merchantID, PIAIDs: map[string]bool{piaid: true}, KeysetID: ours.Ours, Codec: codec, PluginID: merchantID}
	calls := &plugincalltest.Counting{Service: plugincall.New(plugincall.Config{}, rt, l)}
	return &pipeline{
		p:       protocol.New(protocol.Config{}, directory{merchantID: m}, ks, l, calls),
		l:       l,
		m:       m,
		plugins: calls,
		codec:   codec,
		google: func() *keystore.Keyset {
			k, err := ks.Keyset(ctx, ours.Google)
			if err != nil {
				t.Fatal(err)
			}
			return k
		},
	}
}

var seq atomic.Int64

func header(at time.Time) otpc.RequestHeader {
	return otpc.RequestHeader{RequestID: fmt.Sprintf("req-%d-%d", time.Now().UnixNano(), seq.Add(1)),
		RequestTimestamp: otpc.TimestampOf(at), ProtocolVersion: otpc.Version{Major: otpc.ProtocolMajor},
		PaymentIntegratorAccountID: piaid}
}

func generate(h otpc.RequestHeader, micros int64, currency string) *otpc.GenerateReferenceNumberRequest {
	return &otpc.GenerateReferenceNumberRequest{RequestHeader: h,
		GooglePaymentToken:     otpc.GooglePaymentToken{IssuerID: otpc.IssuerID{Value: "issuer"}, Token: "token"},
		TransactionDescription: "Google - pipeline test",
		Amount:                 otpc.Amount{AmountMicros: micros, CurrencyCode: currency}}
}

// mediaType is the codec's content type without parameters, as the
// server hands it to the pipeline.
func mediaType(c envelope.Codec) string {
	mt, _, _ := strings.Cut(c.ContentType(), ";")
	return strings.TrimSpace(mt)
}

// answer is one served request as Google sees it.
type answer struct {
	status    int
	member    string // errorResponseResult member of a refusal
	plaintext []byte
}

// serve seals msg as Google, runs it through the pipeline and opens the
// answer.
func (f *pipeline) serve(t *testing.T, method string, msg interface{ AppendJSON([]byte) []byte }) answer {
	t.Helper()
	ctx := context.Background()
	body, err := f.codec.Seal(ctx, f.google(), msg.AppendJSON(nil))
	if err != nil {
		t.Fatal(err)
	}
	res := f.p.Serve(ctx, &server.Request{MerchantID: merchantID, Method: method, ContentType: mediaType(f.codec),
		Body: body, RemoteAddr: "127.0.0.1:1", Received: time.Now(), RequestID: "t"})
	a := answer{status: res.Status}
	if a.status == 0 {
		a.status = http.StatusOK
	}
	if len(res.Body) == 0 {
		return a
	}
	opened, err := f.codec.Open(ctx, f.google(), res.Body)
	if err != nil {
		t.Fatalf("open the answer: %v", err)
	}
	a.plaintext = opened.Plaintext
	if a.status != http.StatusOK {
		var er otpc.ErrorResponse
		if err := er.UnmarshalJSON(opened.Plaintext); err != nil {
			t.Fatalf("error body %s: %v", opened.Plaintext, err)
		}
		a.member = er.ErrorResponseResult.Member()
	}
	return a
}

// TestHostRules: what the pipeline decides itself is answered with the
// spec's member and status without waking the plugin; what it lets
// through reaches the plugin once.
func TestHostRules(t *testing.T) {
	f := newPipeline(t)
	now := time.Now()
	f.m.Rules = map[string]ledger.AmountRules{piaid: {Currencies: []string{"JPY"}, MinMicros: 100_000000, MaxMicros: 1000_000000}}
	wrongVersion := header(now)
	wrongVersion.ProtocolVersion.Major = otpc.ProtocolMajor + 1
	otherPIAID := header(now)
	otherPIAID.PaymentIntegratorAccountID = "PIAID_OF_SOMEONE_ELSE"
	for _, tc := range []struct {
		name   string
		msg    *otpc.GenerateReferenceNumberRequest
		status int
		member string
	}{
		{"timestamp too old", generate(header(now.Add(-10*time.Minute)), 200_000000, "JPY"), 400, "requestTimestampOutOfRange"},
		{"timestamp in the future", generate(header(now.Add(10*time.Minute)), 200_000000, "JPY"), 400, "requestTimestampOutOfRange"},
		{"another protocol version", generate(wrongVersion, 200_000000, "JPY"), 400, "invalidApiVersion"},
		{"a PIAID this merchant does not serve", generate(otherPIAID, 200_000000, "JPY"), 404, "invalidIdentifier"},
		{"zero amount", generate(header(now), 0, "JPY"), 400, "invalidFieldValue"},
		{"currency the PIAID does not take", generate(header(now), 200_000000, "EUR"), 400, "invalidFieldValue"},
		{"below the PIAID's minimum", generate(header(now), 99_000000, "JPY"), 400, "invalidFieldValue"},
		{"above the PIAID's maximum", generate(header(now), 1001_000000, "JPY"), 400, "invalidFieldValue"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.plugins.N.Load()
			a := f.serve(t, otpc.MethodGenerateReferenceNumber, tc.msg)
			if a.status != tc.status || a.member != tc.member {
				t.Fatalf("got %d %q, want %d %q (%s)", a.status, a.member, tc.status, tc.member, a.plaintext)
			}
			if n := f.plugins.N.Load() - before; n != 0 {
				t.Fatalf("the plugin was called %d times for a request the host refuses itself", n)
			}
		})
	}
	before := f.plugins.N.Load()
	if a := f.serve(t, otpc.MethodGenerateReferenceNumber, generate(header(now), 200_000000, "JPY")); a.status != http.StatusOK {
		t.Fatalf("a request within every rule: %d %q %s", a.status, a.member, a.plaintext)
	}
	if n := f.plugins.N.Load() - before; n != 1 {
		t.Fatalf("the plugin was called %d times for one request, want 1", n)
	}
}

// TestIdempotency: a replay is answered from the ledger without the
// plugin, byte for byte apart from the response timestamp; the same
// requestId with other parameters is 412; a disabled merchant is 403.
func TestIdempotency(t *testing.T) {
	f := newPipeline(t)
	h := header(time.Now())
	req := generate(h, 200_000000, "JPY")
	first := f.serve(t, otpc.MethodGenerateReferenceNumber, req)
	if first.status != http.StatusOK {
		t.Fatalf("first: %d %q", first.status, first.member)
	}
	calls := f.plugins.N.Load()
	var a, b otpc.GenerateReferenceNumberResponse
	replay := f.serve(t, otpc.MethodGenerateReferenceNumber, req)
	if err := a.UnmarshalJSON(first.plaintext); err != nil {
		t.Fatal(err)
	}
	if err := b.UnmarshalJSON(replay.plaintext); err != nil {
		t.Fatal(err)
	}
	a.ResponseHeader, b.ResponseHeader = otpc.ResponseHeader{}, otpc.ResponseHeader{}
	if replay.status != http.StatusOK || string(a.AppendJSON(nil)) != string(b.AppendJSON(nil)) {
		t.Fatalf("replay: %d\n%s\n%s", replay.status, first.plaintext, replay.plaintext)
	}
	if n := f.plugins.N.Load() - calls; n != 0 {
		t.Fatalf("a replay called the plugin %d times", n)
	}
	changed := generate(h, 300_000000, "JPY")
	if got := f.serve(t, otpc.MethodGenerateReferenceNumber, changed); got.status != http.StatusPreconditionFailed {
		t.Fatalf("same requestId, other amount: %d %q, want 412", got.status, got.member)
	}
	f.m.Disabled = true
	if got := f.serve(t, otpc.MethodGenerateReferenceNumber, generate(header(time.Now()), 200_000000, "JPY")); got.status != http.StatusForbidden {
		t.Fatalf("disabled merchant: %d %q, want 403", got.status, got.member)
	}
}
