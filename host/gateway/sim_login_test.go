package gateway

import (
	"context"
	"strings"
	"testing"

	"github.com/otpcgate/otpcgate/host/sim"
	"github.com/otpcgate/otpcgate/host/weblogin"
)

// simCallback is the callback URL the simulator hands the login page; the
// redirect is never followed, it only has to pass the allow-list.
const simCallback = "https://google.example/payments/sim-callback"

// newWebLoginEnv starts a gateway on a copy of the provisioned
// installation whose login page (served by Open at weblogin.DefaultPath)
// allows simCallback.
func newWebLoginEnv(t *testing.T) *env {
	t.Helper()
	return newEnv(t, func(o *Options) {
		o.WebLogin = weblogin.Config{Callbacks: map[string][]string{weblogin.AllMerchants: {"https://google.example/payments/"}}}
	})
}

// TestSimWebLoginSession: the happy suite's associateAccount authenticates
// through the gateway's login page as a user would (sealed request, form,
// sealed success) and associates.
func TestSimWebLoginSession(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		env    func(*testing.T) *env
		status sim.Status
		detail string
	}{
		{"page served", newWebLoginEnv, sim.Pass, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.env(t)
			senv := e.simEnv(t)
			senv.AuthSession = sim.WebLoginSession(e.client, weblogin.DefaultPath, simCallback, "demo-account-1", "demo-password")
			rep := sim.Run(ctx, senv, sim.HappySuite())
			var assoc []sim.Step
			for _, s := range rep.Steps {
				if s.Name == "associateAccount" {
					assoc = append(assoc, s)
				}
			}
			if len(assoc) != 2 {
				t.Fatalf("associateAccount steps: %+v", rep.Steps)
			}
			for _, s := range assoc {
				if s.Status != tc.status || !strings.Contains(s.Detail, tc.detail) {
					t.Errorf("%s: %s %q, want %s %q", s.Merchant, s.Status, s.Detail, tc.status, tc.detail)
				}
			}
			if rep.Failed != 0 {
				t.Fatalf("failed steps: %+v", rep.FailedSteps())
			}
		})
	}
}
