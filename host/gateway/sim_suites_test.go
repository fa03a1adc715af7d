package gateway

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/host/ledger"
	"github.com/otpcgate/otpcgate/host/protocol"
	"github.com/otpcgate/otpcgate/host/sim"
	"github.com/otpcgate/otpcgate/keystore"
)

// simEnv is the sim scenario environment of a test gateway, with every
// lever in-process: the keystore, the merchant-event service, the
// simulated Google the gateway notifies, and auth sessions in the ledger.
func (e *env) simEnv(t *testing.T) *sim.Env {
	var ms []*sim.Merchant
	for _, id := range []string{"demo-pgp", "demo-jose"} {
		tg := e.target(id)
		m := e.merchant(tg)
		ms = append(ms, &sim.Merchant{ID: m.ID, Target: tg, KeysetID: m.KeysetID, SimKeysetID: m.SimKeysetID,
			DemoIssuer: m.DemoIssuer, DemoToken: m.DemoToken})
	}
	return &sim.Env{
		Client:    e.client,
		Merchants: ms,
		Keys:      e.g.Keys,
		Events:    e.g.Merchants,
		Google:    e.sim,
		AuthSession: func(ctx context.Context, m *sim.Merchant, account string) (string, error) {
			id := "auth-" + sim.NewRequestID()
			return id, e.g.Ledger.Apply(ctx, func(tx *ledger.Tx) error {
				return tx.SaveAuthSession(ledger.AuthSession{AuthRequestID: id, PIAID: m.Target.PIAID,
					AccountID: account, Result: protocol.AuthSuccess})
			})
		},
		// Same process, same keystore: changes are seen at once; the wait
		// only lets in-flight requests finish.
		KeyPropagation: 300 * time.Millisecond,
		Progress:       t.Logf,
	}
}

// TestSimSuites runs every sim suite, the rotation drill last, against a
// live gateway over TLS and asserts that no step failed or was skipped,
// that the drill rotated one key per side per merchant under traffic with
// zero failures, and that the keystore ends in the rotated state.
func TestSimSuites(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	senv := e.simEnv(t)
	rep := sim.Run(ctx, senv, sim.Suites()...)
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	t.Logf("sim report:\n%s", table.String())

	if rep.Failed != 0 || rep.Skipped != 0 {
		t.Fatalf("%d steps failed, %d skipped: %+v", rep.Failed, rep.Skipped, rep.FailedSteps())
	}
	if got := strings.Join(rep.Suites(), ","); got != "clock-skew,drill,errors,happy,idempotency,notifications,refusals" {
		t.Fatalf("suites that ran: %s", got)
	}
	if rep.Passed < 80 {
		t.Fatalf("only %d steps passed", rep.Passed)
	}
	d := rep.Drill
	if d == nil {
		t.Fatal("no drill report")
	}
	if d.Requests < 20 || d.Failed != 0 || d.OurKeysRotated != 2 || d.GoogleKeysRotated != 2 || d.OldKeysRefused != 4 {
		t.Fatalf("drill: %+v", d)
	}
	for _, p := range d.Phases {
		if p.Requests == 0 {
			t.Errorf("drill phase %q ran without traffic", p.Name)
		}
	}
	// The keystore ends rotated on both sides.
	for _, dm := range d.Merchants {
		m := e.merchant(e.target(dm.ID))
		for _, c := range []struct {
			keyset, key string
			want        keystore.State
		}{
			{m.KeysetID, dm.OurNewKey, keystore.StatePrimary},
			{m.KeysetID, dm.OurOldKey, keystore.StateDisabled},
			{m.SimKeysetID, dm.GoogleNewKey, keystore.StatePrimary},
			{m.SimKeysetID, dm.GoogleOldKey, keystore.StateDisabled},
		} {
			ks, err := e.g.Keys.Keyset(ctx, c.keyset)
			if err != nil {
				t.Fatal(err)
			}
			if k := ks.Key(c.key); k == nil || k.State != c.want {
				t.Errorf("%s: key %s in %s: %+v, want %s", dm.ID, c.key, c.keyset, k, c.want)
			}
		}
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil || !bytes.Contains(js.Bytes(), []byte(`"requestsFailed": 0`)) {
		t.Fatalf("JSON report: %v\n%s", err, js.String())
	}
}

// TestSimSuitesDetectFailures: the suites fail when the gateway does not
// behave as the spec says; here Google's clock is two minutes ahead, so
// the clock-skew suite's "accepted" steps are refused and reported FAIL,
// and the run is not OK.
func TestSimSuitesDetectFailures(t *testing.T) {
	e := newEnv(t)
	senv := e.simEnv(t)
	senv.Client = &sim.Client{HTTP: e.client.HTTP, Now: func() time.Time { return time.Now().Add(2 * time.Minute) }}
	rep := sim.Run(context.Background(), senv, sim.ClockSkewSuite())
	if rep.OK() || rep.Failed < 4 {
		var b bytes.Buffer
		rep.WriteTable(&b)
		t.Fatalf("a skewed Google passed the clock-skew suite:\n%s", b.String())
	}
	for _, s := range rep.FailedSteps() {
		if s.Detail == "" {
			t.Errorf("failed step %q has no detail", s.Name)
		}
	}
}

// stuckGateway is the real keystore except that key state changes in the
// gateway's own keysets beyond "active" are dropped: a gateway that never
// promotes, retires or disables, as if an operator skipped its side of a
// rotation.
type stuckGateway struct {
	*keystore.Store
	keysets map[string]bool
}

func (s stuckGateway) SetState(ctx context.Context, actor, keysetID, keyID string, st keystore.State) error {
	if s.keysets[keysetID] && st != keystore.StateActive {
		return nil
	}
	return s.Store.SetState(ctx, actor, keysetID, keyID, st)
}

// TestSimDrillDetectsStuckGateway: when only Google's side rotates, the
// drill must report failed requests (Google no longer trusts the key the
// gateway still signs with) and old keys that are still accepted.
func TestSimDrillDetectsStuckGateway(t *testing.T) {
	e := newEnv(t)
	senv := e.simEnv(t)
	stuck := stuckGateway{Store: e.g.Keys, keysets: map[string]bool{}}
	for _, m := range senv.Merchants {
		stuck.keysets[m.KeysetID] = true
	}
	senv.Keys = stuck
	rep := sim.Run(context.Background(), senv, sim.DrillSuite())
	var b bytes.Buffer
	rep.WriteTable(&b)
	d := rep.Drill
	if rep.OK() || d == nil || d.Failed == 0 || d.OldKeysRefused != 0 || len(d.Phases) != 6 {
		t.Fatalf("a half-done rotation passed the drill:\n%s", b.String())
	}
	// Until Google disables the old keys both sides still understand each
	// other; the failures start when it does.
	for _, p := range d.Phases[:5] {
		if p.Failed != 0 {
			t.Fatalf("phase %q failed %d requests before anything was disabled:\n%s", p.Name, p.Failed, b.String())
		}
	}
	if d.Phases[5].Failed == 0 {
		t.Fatalf("no failure after Google disabled its old keys:\n%s", b.String())
	}
	t.Logf("drill against a gateway that did not rotate (expected to fail):\n%s", b.String())
}
