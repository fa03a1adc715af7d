package sim

// The key-rotation drill (spec §11): under continuous traffic on every
// merchant, both sides add a new key, exchange the public halves, show
// that old and new keys both work, promote the new keys, retire and then
// disable the old ones; no request may fail, and afterwards the old keys
// must be refused. Google treats this as launch-blocking.

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/otpcgate/otpcgate/keystore"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// DrillActor is the actor recorded in the keystore's audit trail for the
// drill's key changes.
const DrillActor = "otpcgate sim drill"

// DrillReport summarises a rotation drill.
type DrillReport struct {
	// Requests is how many requests the traffic goroutines sent during the
	// drill; Failed how many of them failed (must be 0).
	Requests int64 `json:"requestsSent"`
	Failed   int64 `json:"requestsFailed"`
	// OurKeysRotated and GoogleKeysRotated count the keys replaced on the
	// gateway's side and on Google's side (one per merchant each).
	OurKeysRotated    int `json:"ourKeysRotated"`
	GoogleKeysRotated int `json:"googleKeysRotated"`
	// OldKeysRefused counts the checks that the old keys are refused after
	// the drill (two per merchant).
	OldKeysRefused int           `json:"oldKeysRefused"`
	Duration       time.Duration `json:"-"`
	// DurationMS is Duration in milliseconds.
	DurationMS float64         `json:"durationMs"`
	Phases     []DrillPhase    `json:"phases"`
	Merchants  []DrillMerchant `json:"merchants"`
	// FirstFailures are the first few traffic failures, for diagnosis.
	FirstFailures []string `json:"firstFailures,omitempty"`
}

// DrillPhase is one phase of the drill with the traffic it ran under.
type DrillPhase struct {
	Name       string        `json:"name"`
	Duration   time.Duration `json:"-"`
	DurationMS float64       `json:"durationMs"`
	// Requests were sent (and Failed failed) while the phase ran,
	// including the wait for the gateway to pick the change up.
	Requests int64 `json:"requests"`
	Failed   int64 `json:"failed"`
}

// DrillMerchant is one merchant's part of the drill.
type DrillMerchant struct {
	ID       string `json:"id"`
	Requests int64  `json:"requests"`
	Failed   int64  `json:"failed"`
	// The key ids before and after (our keys in the gateway's keyset,
	// Google's in the simulated Google's keyset).
	OurOldKey    string `json:"ourOldKey"`
	OurNewKey    string `json:"ourNewKey"`
	GoogleOldKey string `json:"googleOldKey"`
	GoogleNewKey string `json:"googleNewKey"`
}

// WriteTable writes the drill summary for people.
func (d *DrillReport) WriteTable(w io.Writer) error {
	verdict := "PASSED"
	if d.Failed > 0 || d.Requests == 0 {
		verdict = "FAILED"
	}
	fmt.Fprintf(w, "KEY-ROTATION DRILL %s: %d requests sent, %d failed; keys rotated: ours %d, Google's %d; old keys refused afterwards: %d checks; %s\n",
		verdict, d.Requests, d.Failed, d.OurKeysRotated, d.GoogleKeysRotated, d.OldKeysRefused, d.Duration.Round(time.Millisecond))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  PHASE\tTIME\tREQUESTS\tFAILED")
	for _, p := range d.Phases {
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\n", p.Name, p.Duration.Round(time.Millisecond), p.Requests, p.Failed)
	}
	fmt.Fprintln(tw, "  MERCHANT\tREQUESTS\tFAILED\tOUR KEY OLD → NEW\tGOOGLE KEY OLD → NEW")
	for _, m := range d.Merchants {
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%s → %s\t%s → %s\n", m.ID, m.Requests, m.Failed,
			short(m.OurOldKey), short(m.OurNewKey), short(m.GoogleOldKey), short(m.GoogleNewKey))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, f := range d.FirstFailures {
		fmt.Fprintf(w, "  failure: %s\n", oneLine(f))
	}
	return nil
}

func short(id string) string {
	if len(id) > 16 {
		return id[:16] + "…"
	}
	return id
}

// DrillSuite is the key-rotation drill as a scenario.
func DrillSuite() Scenario {
	return Scenario{Name: "drill", Run: func(ctx context.Context, env *Env) error {
		if env.Keys == nil {
			env.Skip(nil, "key-rotation drill", "no access to the keystore")
			return nil
		}
		return runDrill(ctx, env)
	}}
}

// drillMerchant tracks one merchant's keys through the drill. "M" is the
// gateway's keyset, "S" the simulated Google's.
type drillMerchant struct {
	m *Merchant
	// oldView is S before the drill: Google's old key and our old public key.
	oldView *keystore.Keyset
	// Key ids: our key in M and its public half in S; Google's key in S
	// and its public half in M.
	ourOld, ourOldInS, googleOld, googleOldInM string
	ourNew, ourNewInS, googleNew, googleNewInM string

	sent, failed atomic.Int64
}

// traffic runs the drill's background load and counts its outcomes.
type traffic struct {
	sent, failed atomic.Int64
	mu           sync.Mutex
	failures     []string
}

func (t *traffic) fail(detail string) {
	t.failed.Add(1)
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.failures) < 5 {
		t.failures = append(t.failures, detail)
	}
}

// drill is one run of the key-rotation drill: the merchants' keys, the
// background traffic and the report. runDrill takes it through its steps.
type drill struct {
	env  *Env
	keys KeyAdmin
	dms  []*drillMerchant
	rep  *DrillReport
	tr   traffic
	// wait is how long each phase lets the gateway act on its change.
	wait time.Duration

	stopTraffic func()
	wg          sync.WaitGroup
}

// drillStep is one phase: a key change on both sides (nil: none), then
// checks that run once the gateway has acted on it.
type drillStep struct {
	name   string
	change func(d *drill, ctx context.Context) error
	check  func(d *drill, ctx context.Context)
}

// drillSteps rotate every key on both sides: add, exchange, promote,
// retire, disable. Each is a phase under traffic.
var drillSteps = []drillStep{
	{"warm up: traffic on the old keys", nil, nil},
	{"add new keys on both sides (generate, activate)", (*drill).addKeys, nil},
	{"exchange public keys (import as peer, activate)", (*drill).exchangeKeys, (*drill).checkEitherGeneration},
	{"promote the new keys to primary on both sides", (*drill).promoteKeys, (*drill).checkNewBothWays},
	{"retire the old keys on both sides", func(d *drill, ctx context.Context) error {
		return d.setStates(ctx, keystore.StateRetiring, (*drillMerchant).oldKeys)
	}, nil},
	{"disable the old keys on both sides", func(d *drill, ctx context.Context) error {
		return d.setStates(ctx, keystore.StateDisabled, (*drillMerchant).oldKeys)
	}, nil},
}

func runDrill(ctx context.Context, env *Env) error {
	start := time.Now()
	d := &drill{env: env, keys: env.Keys, rep: &DrillReport{}, wait: env.KeyPropagation}
	if d.wait <= 0 {
		d.wait = 2500 * time.Millisecond
	}
	env.setDrill(d.rep)
	if err := d.recordKeys(ctx); err != nil {
		return err
	}
	workers := env.DrillWorkers
	if workers <= 0 {
		workers = 2
	}
	d.startTraffic(ctx, workers)
	defer d.stop()

	ok := true
	for _, st := range drillSteps {
		if ok = d.phase(ctx, st.name, st.change); !ok {
			break
		}
		if st.check != nil {
			st.check(d, ctx)
		}
	}
	d.stop()
	if !ok {
		env.Skip(nil, "remaining drill phases", "not run after the failure above: the keystore is left mid-rotation; "+
			"check the key states (old and new keys) before running the drill again")
	}
	d.report(ctx)
	if ok {
		d.checkOldRefused(ctx)
	}
	d.rep.Duration = time.Since(start)
	d.rep.DurationMS = ms(d.rep.Duration)
	return nil
}

// recordKeys notes each merchant's primary keys on both sides before the
// drill changes them.
func (d *drill) recordKeys(ctx context.Context) error {
	for _, m := range d.env.Merchants {
		dm := &drillMerchant{m: m}
		ok := d.env.Check(ctx, m, "record the keys in service", func(ctx context.Context) (string, error) {
			ours, err := d.keys.Keyset(ctx, m.KeysetID)
			if err != nil {
				return "", err
			}
			google, err := d.keys.Keyset(ctx, m.SimKeysetID)
			if err != nil {
				return "", err
			}
			ids := []*string{&dm.ourOld, &dm.googleOldInM, &dm.googleOld, &dm.ourOldInS}
			for i, k := range []*keystore.Key{ours.Primary(keystore.OwnerSelf), ours.Primary(keystore.OwnerPeer),
				google.Primary(keystore.OwnerSelf), google.Primary(keystore.OwnerPeer)} {
				if k == nil {
					return "", fmt.Errorf("a keyset lacks a primary key (ours %s, Google's %s)", m.KeysetID, m.SimKeysetID)
				}
				*ids[i] = k.ID
			}
			dm.oldView = google
			return fmt.Sprintf("ours %s, Google's %s", short(dm.ourOld), short(dm.googleOld)), nil
		})
		if !ok {
			return fmt.Errorf("%s: cannot read the keys in service", m.ID)
		}
		d.dms = append(d.dms, dm)
	}
	return nil
}

// startTraffic keeps every merchant busy for the whole drill.
func (d *drill) startTraffic(ctx context.Context, workers int) {
	trafficCtx, cancel := context.WithCancel(ctx)
	d.stopTraffic = cancel
	for _, dm := range d.dms {
		for w := range workers {
			d.wg.Add(1)
			go func() {
				defer d.wg.Done()
				drillTraffic(trafficCtx, d.env, dm, &d.tr, w)
			}()
		}
	}
}

// stop ends the traffic and waits for it; calling it again does nothing.
func (d *drill) stop() {
	if d.stopTraffic != nil {
		d.stopTraffic()
		d.stopTraffic = nil
		d.wg.Wait()
	}
}

// phase runs one change under traffic, waits for the gateway to act on it
// and records the phase's requests and failures.
func (d *drill) phase(ctx context.Context, name string, change func(d *drill, ctx context.Context) error) bool {
	d.env.progress("drill: %s", name)
	s0, f0 := d.tr.sent.Load(), d.tr.failed.Load()
	t0 := time.Now()
	ok := d.env.Check(ctx, nil, name, func(ctx context.Context) (string, error) {
		if change != nil {
			if err := change(d, ctx); err != nil {
				return "", err
			}
		}
		// Give the gateway time to act on the change, under traffic.
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(d.wait):
		}
		return "", nil
	})
	d.rep.Phases = append(d.rep.Phases, DrillPhase{Name: name, Duration: time.Since(t0), DurationMS: ms(time.Since(t0)),
		Requests: d.tr.sent.Load() - s0, Failed: d.tr.failed.Load() - f0})
	return ok
}

// setStates moves the keys pick names ({keyset, key} pairs) of every
// merchant to st.
func (d *drill) setStates(ctx context.Context, st keystore.State, pick func(dm *drillMerchant) [][2]string) error {
	for _, dm := range d.dms {
		for _, p := range pick(dm) {
			if err := d.keys.SetState(ctx, DrillActor, p[0], p[1], st); err != nil {
				return fmt.Errorf("%s: key %s → %s: %w", dm.m.ID, short(p[1]), st, err)
			}
		}
	}
	return nil
}

// addKeys generates a new self key on both sides and activates it: active
// self keys decrypt at once; nothing is encrypted to them until the other
// side has their public halves.
func (d *drill) addKeys(ctx context.Context) error {
	for _, dm := range d.dms {
		name := "drill " + time.Now().UTC().Format("2006-01-02T15:04:05Z")
		our, err := d.keys.Generate(ctx, DrillActor, dm.m.KeysetID, keystore.GenerateOptions{Name: "otpcgate " + name})
		if err != nil {
			return fmt.Errorf("%s: generate our key: %w", dm.m.ID, err)
		}
		google, err := d.keys.Generate(ctx, DrillActor, dm.m.SimKeysetID, keystore.GenerateOptions{Name: "simulated Google " + name})
		if err != nil {
			return fmt.Errorf("%s: generate Google's key: %w", dm.m.ID, err)
		}
		dm.ourNew, dm.googleNew = our.ID, google.ID
	}
	return d.setStates(ctx, keystore.StateActive, func(dm *drillMerchant) [][2]string {
		return [][2]string{{dm.m.KeysetID, dm.ourNew}, {dm.m.SimKeysetID, dm.googleNew}}
	})
}

// exchangeKeys gives each side the other's new public key.
func (d *drill) exchangeKeys(ctx context.Context) error {
	for _, dm := range d.dms {
		var err error
		if dm.ourNewInS, err = exchange(ctx, d.keys, dm.m.KeysetID, dm.ourNew, dm.m.SimKeysetID); err != nil {
			return fmt.Errorf("%s: our public key to Google: %w", dm.m.ID, err)
		}
		if dm.googleNewInM, err = exchange(ctx, d.keys, dm.m.SimKeysetID, dm.googleNew, dm.m.KeysetID); err != nil {
			return fmt.Errorf("%s: Google's public key to us: %w", dm.m.ID, err)
		}
	}
	return nil
}

// promoteKeys makes the new keys primary on both sides.
func (d *drill) promoteKeys(ctx context.Context) error {
	return d.setStates(ctx, keystore.StatePrimary, func(dm *drillMerchant) [][2]string {
		return [][2]string{{dm.m.KeysetID, dm.ourNew}, {dm.m.KeysetID, dm.googleNewInM},
			{dm.m.SimKeysetID, dm.googleNew}, {dm.m.SimKeysetID, dm.ourNewInS}}
	})
}

// oldKeys are the merchant's keys in service before the drill, on both
// sides, as {keyset, key} pairs.
func (dm *drillMerchant) oldKeys() [][2]string {
	return [][2]string{{dm.m.KeysetID, dm.ourOld}, {dm.m.KeysetID, dm.googleOldInM},
		{dm.m.SimKeysetID, dm.googleOld}, {dm.m.SimKeysetID, dm.ourOldInS}}
}

// newOnly is the simulated Google's current keyset reduced to its new key
// and our new public key.
func (d *drill) newOnly(ctx context.Context, dm *drillMerchant) (*keystore.Keyset, error) {
	cur, err := d.keys.Keyset(ctx, dm.m.SimKeysetID)
	if err != nil {
		return nil, err
	}
	return onlyKeys(cur, cur, dm.googleNew, dm.ourNewInS)
}

// checkEitherGeneration: with both generations exchanged, requests made
// with only the old keys and with only the new keys are both served.
func (d *drill) checkEitherGeneration(ctx context.Context) {
	for _, dm := range d.dms {
		d.env.Check(ctx, dm.m, "old keys only (sealed to our old key, signed by Google's old key): 200", func(ctx context.Context) (string, error) {
			old, err := onlyKeys(dm.oldView, dm.oldView, dm.googleOld, dm.ourOldInS)
			if err != nil {
				return "", err
			}
			return "", echoWith(ctx, d.env, dm.m, old, true)
		})
		d.env.Check(ctx, dm.m, "new keys only (sealed to our new key, signed by Google's new key): 200", func(ctx context.Context) (string, error) {
			nk, err := d.newOnly(ctx, dm)
			if err != nil {
				return "", err
			}
			// The answer is still signed with our old primary: open it
			// with Google's full keyset.
			return "", echoWith(ctx, d.env, dm.m, nk, false)
		})
	}
}

// checkNewBothWays: after the promotion the answer, too, uses the new keys.
func (d *drill) checkNewBothWays(ctx context.Context) {
	for _, dm := range d.dms {
		d.env.Check(ctx, dm.m, "new keys only, both directions (answer signed by our new key, encrypted to Google's): 200", func(ctx context.Context) (string, error) {
			nk, err := d.newOnly(ctx, dm)
			if err != nil {
				return "", err
			}
			return "", echoWith(ctx, d.env, dm.m, nk, true)
		})
	}
}

// report fills the report's totals and checks that no request failed.
func (d *drill) report(ctx context.Context) {
	rep := d.rep
	rep.Requests, rep.Failed = d.tr.sent.Load(), d.tr.failed.Load()
	rep.FirstFailures = d.tr.failures
	for _, dm := range d.dms {
		rep.Merchants = append(rep.Merchants, DrillMerchant{ID: dm.m.ID, Requests: dm.sent.Load(), Failed: dm.failed.Load(),
			OurOldKey: dm.ourOld, OurNewKey: dm.ourNew, GoogleOldKey: dm.googleOld, GoogleNewKey: dm.googleNew})
	}
	d.env.Check(ctx, nil, "no request failed during the drill", func(context.Context) (string, error) {
		if rep.Requests == 0 {
			return "", fmt.Errorf("no traffic was sent")
		}
		if rep.Failed > 0 {
			return "", fmt.Errorf("%d of %d requests failed; first: %s", rep.Failed, rep.Requests, d.tr.failures[0])
		}
		return fmt.Sprintf("%d requests, 0 failed", rep.Requests), nil
	})
}

// checkOldRefused: once the rotation is complete, a request sealed to our
// old key or signed by Google's old key is refused.
func (d *drill) checkOldRefused(ctx context.Context) {
	for _, dm := range d.dms {
		d.rep.OurKeysRotated++
		d.rep.GoogleKeysRotated++
		if d.env.Check(ctx, dm.m, "sealed to our old key afterwards: 400 invalidPayloadEncryption", func(ctx context.Context) (string, error) {
			oldOnly, err := onlyKeys(dm.oldView, dm.oldView, dm.googleOld, dm.ourOldInS)
			if err != nil {
				return "", err
			}
			return "", refusedWith(ctx, d.env, dm.m, oldOnly, 400, "invalidPayloadEncryption")
		}) {
			d.rep.OldKeysRefused++
		}
		if d.env.Check(ctx, dm.m, "signed by Google's old key afterwards: 401 invalidPayloadSignature", func(ctx context.Context) (string, error) {
			cur, err := d.keys.Keyset(ctx, dm.m.SimKeysetID)
			if err != nil {
				return "", err
			}
			oldSigner, err := onlyKeys(dm.oldView, cur, dm.googleOld, dm.ourNewInS)
			if err != nil {
				return "", err
			}
			return "", refusedWith(ctx, d.env, dm.m, oldSigner, 401, "invalidPayloadSignature")
		}) {
			d.rep.OldKeysRefused++
		}
	}
}

// drillTraffic sends requests until ctx ends: mostly echo, every fourth a
// generateReferenceNumber so the plugin and ledger are in the path too.
func drillTraffic(ctx context.Context, env *Env, dm *drillMerchant, tr *traffic, worker int) {
	c, tg := env.Client, dm.m.Target
	for i := 0; ctx.Err() == nil; i++ {
		var res *Result
		var err error
		if i%4 == 3 {
			req := generateRequest(c, dm.m, int64(100+worker*10000+i)*1_000000, "Google - Rotation drill")
			var resp otpc.GenerateReferenceNumberResponse
			res, err = c.Call(ctx, tg, otpc.MethodGenerateReferenceNumber, req, &resp)
			if err == nil && res.Status == 200 && resp.Result.Success == nil {
				err = fmt.Errorf("generate refused: %s", res.Plaintext)
			}
		} else {
			msg := "drill-" + strconv.Itoa(worker) + "-" + strconv.Itoa(i)
			var resp otpc.EchoResponse
			res, err = c.Call(ctx, tg, otpc.MethodEcho, &otpc.EchoRequest{RequestHeader: c.Header(tg), ClientMessage: msg}, &resp)
			if err == nil && res.Status == 200 && resp.ClientMessage != msg {
				err = fmt.Errorf("echo answered %q", resp.ClientMessage)
			}
		}
		if ctx.Err() != nil {
			return // cut off by the end of the drill, not a failure
		}
		tr.sent.Add(1)
		dm.sent.Add(1)
		if err == nil && res.Status != 200 {
			err = fmt.Errorf("HTTP %d %s %s", res.Status, res.Member(), errDesc(res))
		}
		if err != nil {
			dm.failed.Add(1)
			tr.fail(dm.m.ID + ": " + err.Error())
		}
	}
}

// exchange exports key keyID of keyset from, imports its public half into
// keyset to as a peer key and activates it; it returns the imported id.
func exchange(ctx context.Context, keys KeyAdmin, from, keyID, to string) (string, error) {
	pub, err := keys.ExportPublic(ctx, from, keyID)
	if err != nil {
		return "", err
	}
	src, err := keys.Keyset(ctx, from)
	if err != nil {
		return "", err
	}
	var expires time.Time
	if k := src.Key(keyID); k != nil {
		expires = k.Expires
	}
	imported, err := keys.Import(ctx, DrillActor, to, keystore.OwnerPeer, pub, keystore.ImportOptions{Expires: expires})
	if err != nil {
		return "", err
	}
	if len(imported) != 1 {
		return "", fmt.Errorf("import gave %d keys, want 1", len(imported))
	}
	if err := keys.SetState(ctx, DrillActor, to, imported[0].ID, keystore.StateActive); err != nil {
		return "", err
	}
	return imported[0].ID, nil
}

// onlyKeys builds a Google keyset holding just one self key (from selfFrom)
// and one peer key (from peerFrom), both primary: a message sealed with it
// is signed by that key and encrypted to that key only.
func onlyKeys(selfFrom, peerFrom *keystore.Keyset, selfID, peerID string) (*keystore.Keyset, error) {
	self, peer := selfFrom.Key(selfID), peerFrom.Key(peerID)
	if self == nil || peer == nil {
		return nil, fmt.Errorf("sim: keys %s/%s not in the snapshots", short(selfID), short(peerID))
	}
	return keystore.NewKeyset(selfFrom.ID, selfFrom.Kind, selfFrom.Env,
		[]*keystore.Key{asState(self, keystore.StatePrimary), asState(peer, keystore.StatePrimary)})
}

// asState returns a copy of k in state st.
func asState(k *keystore.Key, st keystore.State) *keystore.Key {
	c := *k
	c.State = st
	return &c
}

// echoWith sends an echo sealed with ks; with openWithKs the answer must
// also open with ks alone, otherwise with Google's full keyset.
func echoWith(ctx context.Context, env *Env, m *Merchant, ks *keystore.Keyset, openWithKs bool) error {
	c := env.Client
	tg := *m.Target
	body, err := tg.Codec.Seal(ctx, ks, (&otpc.EchoRequest{RequestHeader: c.Header(&tg), ClientMessage: "drill"}).AppendJSON(nil))
	if err != nil {
		return fmt.Errorf("seal: %w", err)
	}
	if openWithKs {
		tg.Keyset = func(context.Context) (*keystore.Keyset, error) { return ks, nil }
	}
	var resp otpc.EchoResponse
	res, err := c.Post(ctx, &tg, otpc.MethodEcho, body, &resp)
	if err := want200(res, err); err != nil {
		return err
	}
	if resp.ClientMessage != "drill" {
		return fmt.Errorf("echo answered %q", resp.ClientMessage)
	}
	return nil
}

// refusedWith sends an echo sealed with ks and expects the refusal.
func refusedWith(ctx context.Context, env *Env, m *Merchant, ks *keystore.Keyset, status int, member string) error {
	c, tg := env.Client, m.Target
	body, err := tg.Codec.Seal(ctx, ks, (&otpc.EchoRequest{RequestHeader: c.Header(tg), ClientMessage: "old key"}).AppendJSON(nil))
	if err != nil {
		return fmt.Errorf("seal: %w", err)
	}
	res, err := c.Post(ctx, tg, otpc.MethodEcho, body, nil)
	return wantError(res, err, status, member)
}
