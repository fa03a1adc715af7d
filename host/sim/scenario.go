package sim

// This file is the scenario framework: an Env describing the gateway under
// test and the levers the simulator may pull, scenarios that record
// pass/fail steps into a Report, and the report's table and JSON forms.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/otpcgate/otpcgate/host/merchant"
	"github.com/otpcgate/otpcgate/host/sim/googlesim"
	"github.com/otpcgate/otpcgate/keystore"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// Merchant is one merchant integration under test, as Google sees it plus
// what the scenarios need to know about the installation.
type Merchant struct {
	// ID is the merchant's id in the gateway.
	ID string
	// Target is Google's view of the integration.
	Target *Target
	// KeysetID holds the gateway's keys (self) and Google's public keys
	// (peer); SimKeysetID the simulated Google's keys (self) and the
	// gateway's public keys (peer). Used by the rotation drill.
	KeysetID, SimKeysetID string
	// DemoIssuer and DemoToken are a payment token already associated with
	// an account, so generateReferenceNumber succeeds.
	DemoIssuer, DemoToken string
}

// KeyAdmin is the part of the keystore the rotation drill drives: a
// *keystore.Store in-process or opened on the gateway's database file.
type KeyAdmin interface {
	Keyset(ctx context.Context, id string) (*keystore.Keyset, error)
	Generate(ctx context.Context, actor, keysetID string, opts keystore.GenerateOptions) (keystore.KeyInfo, error)
	Import(ctx context.Context, actor, keysetID string, owner keystore.Owner, data []byte, opts keystore.ImportOptions) ([]keystore.KeyInfo, error)
	SetState(ctx context.Context, actor, keysetID, keyID string, st keystore.State) error
	ExportPublic(ctx context.Context, keysetID string, keyIDs ...string) ([]byte, error)
}

// MerchantEvents reports what happens on the merchant's side (payments at
// stores, asynchronous refund results, statement acceptance): a
// *merchant.Service in-process, or a client of the merchant HTTP API.
type MerchantEvents interface {
	ReportPayment(ctx context.Context, merchantID string, p merchant.Payment) (merchant.PaymentResult, error)
	ReportRefundResult(ctx context.Context, merchantID string, o merchant.RefundOutcome) (merchant.RefundOutcomeResult, error)
	AcceptStatement(ctx context.Context, merchantID string, a merchant.Acceptance) (merchant.AcceptanceResult, error)
	StatementDetails(ctx context.Context, merchantID, piaid, statementID string, offset, count int32) (*otpc.RemittanceStatementDetailsResponse, error)
}

// GoogleView is the simulated Google that receives the gateway's
// notifications, observed by the notification scenarios: a *Google.
type GoogleView interface {
	Calls() []googlesim.Call
	AddStatement(piaid, statementID string, st googlesim.Statement)
	Accepted(piaid, statementID string) (method string, ok bool)
}

// AuthSessionFunc creates a successful web-authentication session for
// accountID at m and returns its authenticationRequestId.
type AuthSessionFunc func(ctx context.Context, m *Merchant, accountID string) (string, error)

// Env is the installation scenarios run against. Optional levers left nil
// make the steps that need them report SKIP with the reason.
type Env struct {
	// Client plays Google.
	Client *Client
	// Merchants are the integrations under test.
	Merchants []*Merchant
	// Keys, if set, lets the rotation drill change keys.
	Keys KeyAdmin
	// Events, if set, reports merchant-side events; EventsMissing says why
	// it is nil (shown in SKIP lines).
	Events        MerchantEvents
	EventsMissing string
	// Google, if set, is the simulated Google the gateway notifies.
	Google GoogleView
	// AuthSession, if set, creates sessions for associateAccount.
	AuthSession AuthSessionFunc
	// KeyPropagation is how long the gateway takes to act on a key change
	// (plus in-flight requests draining): the drill waits this long after
	// each phase. Default 2.5 s (a gateway in another process polls every
	// second); in-process a few hundred milliseconds suffice.
	KeyPropagation time.Duration
	// DrillWorkers is the number of traffic goroutines per merchant during
	// the drill. Default 2.
	DrillWorkers int
	// NotifyTimeout bounds the wait for a notification. Default 20 s.
	NotifyTimeout time.Duration
	// Progress, if set, gets one line per phase of long scenarios.
	Progress func(format string, args ...any)

	mu     sync.Mutex
	report *Report
	suite  string
}

// Status is a step's outcome.
type Status string

// Step outcomes.
const (
	Pass Status = "PASS"
	Fail Status = "FAIL"
	Skip Status = "SKIP"
)

// Step is one checked step of a scenario.
type Step struct {
	Suite    string        `json:"suite"`
	Merchant string        `json:"merchant,omitempty"`
	Name     string        `json:"step"`
	Status   Status        `json:"status"`
	Duration time.Duration `json:"-"`
	// DurationMS is Duration in milliseconds, for JSON readers.
	DurationMS float64 `json:"durationMs"`
	Detail     string  `json:"detail,omitempty"`
}

// Report is the outcome of a run of scenarios.
type Report struct {
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"-"`
	// DurationMS is Duration in milliseconds.
	DurationMS float64 `json:"durationMs"`
	Steps      []Step  `json:"steps"`
	// Drill is the rotation drill's summary, if it ran.
	Drill *DrillReport `json:"drill,omitempty"`
	// Passed, Failed and Skipped count the steps.
	Passed  int `json:"passed"`
	Failed  int `json:"failed"`
	Skipped int `json:"skipped"`
}

// Scenario is a named suite of steps.
type Scenario struct {
	// Name selects the suite on the command line.
	Name string
	// Run records its steps through env (Env.Check, Env.Skip); an error
	// aborts the suite and is recorded as a failed step.
	Run func(ctx context.Context, env *Env) error
}

// SkipError marks a step as skipped; Check records it as SKIP.
type SkipError struct{ Reason string }

func (e *SkipError) Error() string { return "skipped: " + e.Reason }

// Skipped returns an error that makes Check record SKIP with reason.
func Skipped(reason string) error { return &SkipError{Reason: reason} }

// ErrUnknownSuite is returned by SuitesByName for a name it does not know.
var ErrUnknownSuite = errors.New("sim: unknown suite")

// Suites returns every suite in the order `sim run --suite all` runs them;
// the rotation drill is last since it changes the installation's keys.
func Suites() []Scenario {
	return []Scenario{HappySuite(), IdempotencySuite(), ErrorsSuite(), RefusalsSuite(), ClockSkewSuite(), NotificationsSuite(), DrillSuite()}
}

// SuitesByName returns the suites named in a comma-separated list, in
// the order given, or all of them for "all" (or "").
func SuitesByName(names string) ([]Scenario, error) {
	if names == "" || names == "all" {
		return Suites(), nil
	}
	all := Suites()
	known := make([]string, len(all))
	for i, s := range all {
		known[i] = s.Name
	}
	var out []Scenario
	for _, name := range strings.Split(names, ",") {
		name = strings.TrimSpace(name)
		i := slices.Index(known, name)
		if i < 0 {
			return nil, fmt.Errorf("%w %q (one of all, %s)", ErrUnknownSuite, name, strings.Join(known, ", "))
		}
		out = append(out, all[i])
	}
	return out, nil
}

// Compile-time checks: the in-process parts satisfy the levers.
var (
	_ KeyAdmin       = (*keystore.Store)(nil)
	_ MerchantEvents = (*merchant.Service)(nil)
	_ GoogleView     = (*googlesim.Google)(nil)
)

// Run runs the scenarios one after another against env and returns the
// report. It never stops early: a failing suite is recorded and the next
// one runs. An Env serves one Run at a time.
func Run(ctx context.Context, env *Env, scenarios ...Scenario) *Report {
	rep := &Report{Started: time.Now()}
	env.mu.Lock()
	env.report = rep
	env.mu.Unlock()
	for _, s := range scenarios {
		env.mu.Lock()
		env.suite = s.Name
		env.mu.Unlock()
		start := time.Now()
		if err := runSafely(ctx, env, s); err != nil {
			env.record(Step{Name: "suite aborted", Status: Fail, Duration: time.Since(start), Detail: err.Error()})
		}
	}
	rep.Duration = time.Since(rep.Started)
	rep.DurationMS = ms(rep.Duration)
	return rep
}

// runSafely keeps a panicking scenario from taking the whole run down.
func runSafely(ctx context.Context, env *Env, s Scenario) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return s.Run(ctx, env)
}

// Check runs one step and records PASS, FAIL (fn's error) or SKIP (a
// SkipError). fn returns an optional detail shown on success.
func (e *Env) Check(ctx context.Context, m *Merchant, name string, fn func(ctx context.Context) (string, error)) bool {
	start := time.Now()
	detail, err := fn(context.WithValue(ctx, startKey{}, start))
	st := Step{Name: name, Status: Pass, Duration: time.Since(start), Detail: detail}
	if m != nil {
		st.Merchant = m.ID
	}
	var skip *SkipError
	switch {
	case errors.As(err, &skip):
		st.Status, st.Detail = Skip, skip.Reason
	case err != nil:
		st.Status, st.Detail = Fail, err.Error()
	}
	e.record(st)
	return st.Status == Pass
}

// Skip records a skipped step.
func (e *Env) Skip(m *Merchant, name, reason string) {
	st := Step{Name: name, Status: Skip, Detail: reason}
	if m != nil {
		st.Merchant = m.ID
	}
	e.record(st)
}

func (e *Env) record(st Step) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.report == nil {
		e.report = &Report{Started: time.Now()}
	}
	st.Suite = e.suite
	st.DurationMS = ms(st.Duration)
	e.report.Steps = append(e.report.Steps, st)
	switch st.Status {
	case Pass:
		e.report.Passed++
	case Fail:
		e.report.Failed++
	case Skip:
		e.report.Skipped++
	}
}

func (e *Env) setDrill(d *DrillReport) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.report != nil {
		e.report.Drill = d
	}
}

func (e *Env) progress(format string, args ...any) {
	if e.Progress != nil {
		e.Progress(format, args...)
	}
}

func (e *Env) eventsMissing() string {
	if e.EventsMissing != "" {
		return e.EventsMissing
	}
	return "merchant API not reachable"
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// OK reports whether no step failed.
func (r *Report) OK() bool { return r.Failed == 0 }

// WriteJSON writes the report as one indented JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes the report for people: one line per step, the drill
// summary, and the totals.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SUITE\tMERCHANT\tSTEP\tRESULT\tTIME\tDETAIL")
	for _, s := range r.Steps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Suite, dash(s.Merchant), s.Name, s.Status,
			s.Duration.Round(time.Millisecond), oneLine(s.Detail))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.Drill != nil {
		fmt.Fprintln(w)
		if err := r.Drill.WriteTable(w); err != nil {
			return err
		}
	}
	verdict := "ALL PASSED"
	if r.Failed > 0 {
		verdict = "FAILED"
	}
	_, err := fmt.Fprintf(w, "\n%s: %d passed, %d failed, %d skipped in %s\n", verdict, r.Passed, r.Failed, r.Skipped,
		r.Duration.Round(time.Millisecond))
	return err
}

// FailedSteps returns the failed steps, for callers that print only those.
func (r *Report) FailedSteps() []Step {
	var out []Step
	for _, s := range r.Steps {
		if s.Status == Fail {
			out = append(out, s)
		}
	}
	return out
}

// Suites returns the names of the suites that recorded steps, sorted.
func (r *Report) Suites() []string {
	seen := map[string]bool{}
	for _, s := range r.Steps {
		seen[s.Suite] = true
	}
	out := make([]string, 0, len(seen))
	for s := range seen {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine keeps table rows on one line and of a readable length.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}
