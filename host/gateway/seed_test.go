package gateway

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpcgate/otpcgate/host/directory"
	"github.com/otpcgate/otpcgate/host/envelope"
	"github.com/otpcgate/otpcgate/host/ledger"
	"github.com/otpcgate/otpcgate/internal/testenv"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// dbState is what seeding may write: merchants, PIAIDs, integrations, rules
// and the audit log, as sorted text.
func dbState(t *testing.T, g *Gateway) string {
	t.Helper()
	var b strings.Builder
	for _, q := range []string{
		`SELECT id || '|' || status FROM merchants ORDER BY id`,
		`SELECT piaid || '|' || merchant_id FROM piaids ORDER BY piaid`,
		`SELECT merchant_id || '|' || base_path || '|' || keyset_id FROM integrations ORDER BY merchant_id`,
		`SELECT COUNT(*) FROM piaid_rules`,
		`SELECT COUNT(*) FROM audit`,
	} {
		rows, err := g.DB.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			b.WriteString(s + "\n")
		}
		rows.Close()
	}
	return b.String()
}

// TestSeedAllOrNothing: a configuration with one broken merchant among
// good ones is refused as a whole with a message that names the cause and
// what to do, and the database is left exactly as it was; the same
// configuration without the broken merchant is seeded, idempotently.
func TestSeedAllOrNothing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	pgp := e.merchant(e.pgp)
	good := SeedMerchant{
		Integration: directory.Integration{MerchantID: "acme", BasePath: "/acme", Envelope: envelope.FormatPGP, KeysetID: pgp.KeysetID},
		PIAIDs:      []string{"acme-piaid-1"},
		AmountRules: map[string]ledger.AmountRules{"acme-piaid-1": {Currencies: []string{"JPY"}, MinMicros: 1_000000, MaxMicros: 300_000_000000}},
	}
	broken := []struct {
		name string
		bad  SeedMerchant
		want string
	}{
		{"missing keyset", SeedMerchant{Integration: directory.Integration{MerchantID: "acme-sandbox", BasePath: "/sandbox",
			Envelope: envelope.FormatPGP, KeysetID: "no-such-keyset"}, PIAIDs: []string{"sandbox-1"}}, "otpcgate merchants create"},
		{"PIAID of another merchant", SeedMerchant{Integration: directory.Integration{MerchantID: "thief", BasePath: "/thief",
			Envelope: envelope.FormatPGP, KeysetID: pgp.KeysetID}, PIAIDs: []string{pgp.PIAID}}, "belongs to merchant demo-pgp"},
		{"base path of another merchant", SeedMerchant{Integration: directory.Integration{MerchantID: "copycat", BasePath: pgp.BasePath,
			Envelope: envelope.FormatPGP, KeysetID: pgp.KeysetID}}, "is merchant demo-pgp's"},
		{"PIAID configured twice", SeedMerchant{Integration: directory.Integration{MerchantID: "twin", BasePath: "/twin",
			Envelope: envelope.FormatPGP, KeysetID: pgp.KeysetID}, PIAIDs: []string{"acme-piaid-1"}}, "configured for both"},
		{"unknown envelope", SeedMerchant{Integration: directory.Integration{MerchantID: "odd", BasePath: "/odd",
			Envelope: "carrier-pigeon", KeysetID: pgp.KeysetID}}, "unknown envelope"},
	}
	before := dbState(t, e.g)
	for _, tc := range broken {
		err := e.g.Seed(ctx, []SeedMerchant{good, tc.bad})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: %v, want an error containing %q", tc.name, err, tc.want)
		}
		if after := dbState(t, e.g); after != before {
			t.Fatalf("%s: the refused configuration changed the database:\nbefore\n%s\nafter\n%s", tc.name, before, after)
		}
	}
	for range 2 { // a restart seeds the same configuration again
		if err := e.g.Seed(ctx, []SeedMerchant{good}); err != nil {
			t.Fatal(err)
		}
	}
	after := dbState(t, e.g)
	for _, want := range []string{"acme|active\n", "acme-piaid-1|acme\n", "acme|/acme|" + pgp.KeysetID + "\n"} {
		if !strings.Contains(after, want) {
			t.Fatalf("seeded state lacks %q:\n%s", want, after)
		}
	}
	if err := e.g.Reload(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestKeysetQuarantineAtStart: a configured merchant whose keyset exists
// but no longer loads (a damaged key) does not stop the start: it is
// quarantined (503, a metric), every other merchant is served, and it
// leaves the quarantine once its keyset loads again.
func TestKeysetQuarantineAtStart(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ins, err := e.g.Directory.Integrations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var seeds []SeedMerchant
	for _, in := range ins {
		piaids, err := e.g.Ledger.PIAIDs(ctx, in.MerchantID)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, SeedMerchant{Integration: in, PIAIDs: piaids})
	}
	jose := e.merchant(e.jose).KeysetID
	var saved []byte
	if err := e.g.DB.QueryRow(`SELECT public_material FROM keystore_keys WHERE keyset_id = ? AND owner = 'peer'`, jose).Scan(&saved); err != nil {
		t.Fatal(err)
	}
	damage := func(b []byte) {
		t.Helper()
		if _, err := e.g.DB.Exec(`UPDATE keystore_keys SET public_material = ? WHERE keyset_id = ? AND owner = 'peer'`, b, jose); err != nil {
			t.Fatal(err)
		}
	}
	damage([]byte("not a key"))
	e.restart() // a new keystore: nothing cached
	if err := e.g.Seed(ctx, seeds); err != nil {
		t.Fatalf("a damaged keyset stopped the start: %v", err)
	}
	if q := e.g.QuarantinedKeysets(ctx); q["demo-jose"] != jose || len(q) != 1 {
		t.Fatalf("quarantined keysets %v", q)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(keysetCollector{e.g})
	if m := testenv.Metrics(t, reg); m["otpcgate_keyset_quarantined/"+jose+"/demo-jose"] != 1 || len(m) != 1 {
		t.Fatalf("keyset metrics %v", m)
	}
	e.generate(e.pgp, 1000_000000)
	req := &otpc.EchoRequest{RequestHeader: e.client.Header(e.jose), ClientMessage: "x"}
	if res, err := e.client.Call(ctx, e.jose, otpc.MethodEcho, req, nil); res == nil || res.Status != http.StatusServiceUnavailable {
		t.Fatalf("the quarantined merchant answered %+v (%v), want 503", res, err)
	}
	// Repaired: it leaves the quarantine (the keystore notices the change).
	damage(saved)
	e.restart()
	if err := e.g.Seed(ctx, seeds); err != nil {
		t.Fatal(err)
	}
	if q := e.g.QuarantinedKeysets(ctx); len(q) != 0 {
		t.Fatalf("after repair: %v", q)
	}
	reg = prometheus.NewRegistry() // e.restart made a new gateway
	reg.MustRegister(keysetCollector{e.g})
	if m := testenv.Metrics(t, reg); len(m) != 0 {
		t.Fatalf("keyset metrics after repair: %v", m)
	}
	e.generate(e.jose, 1000_000000)
}
