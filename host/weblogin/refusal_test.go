package weblogin_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/otpcgate/otpcgate/host/ledger"
	"github.com/otpcgate/otpcgate/host/runtime"
	"github.com/otpcgate/otpcgate/host/runtime/runtimetest"
	"github.com/otpcgate/otpcgate/host/sim"
	"github.com/otpcgate/otpcgate/host/weblogin"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// TestPluginRefusal: the login page tells a merchant's refusal from a
// failure. The outcomes test plugin, loaded under its own plugin id, answers
// by the account's prefix: a refusal (forbidden) is the member's status with
// a message that does not ask to try later; a refusal with a host-only member
// and an error are failures (503, "try again"); none records a session.
func TestPluginRefusal(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	if _, ok := e.g.Plugins.Active("outcomes"); !ok {
		wasm := runtimetest.Build(t, "../../testdata/plugins/outcomes")
		if _, err := e.g.Plugins.Load(ctx, "outcomes", runtime.VersionSpec{Version: "v1", Wasm: wasm}); err != nil {
			t.Fatal(err)
		}
		if err := e.g.Plugins.Activate("outcomes", "v1"); err != nil {
			t.Fatal(err)
		}
	}
	e.merchant["demo-pgp"].PluginID = "outcomes"
	for _, tc := range []struct {
		account string
		status  int
		msg     string
	}{
		{"refuse-1", http.StatusForbidden, weblogin.MsgRefused},
		{"decline-1", http.StatusUnauthorized, weblogin.MsgWrong},
		{"reserved-1", http.StatusServiceUnavailable, weblogin.MsgUnavailable},
		{"fail-1", http.StatusServiceUnavailable, weblogin.MsgUnavailable},
	} {
		t.Run(tc.account, func(t *testing.T) {
			req := e.request("demo-pgp", sim.AuthOptions{})
			_, res := e.browser().login(req.URL, tc.account, "any")
			if res.StatusCode != tc.status || res.errorText() != tc.msg || !strings.Contains(res.body, "<form") {
				t.Fatalf("status %d %q, want %d %q", res.StatusCode, res.errorText(), tc.status, tc.msg)
			}
			if _, err := e.g.Ledger.AuthSession(ctx, req.Request.RequestID); !errors.Is(err, ledger.ErrNotFound) {
				t.Fatalf("session recorded: %v", err)
			}
		})
	}
	if got := e.g.Calls.Outcomes("demo-pgp")[otpc.OpAuthenticate]; got["refusal"] < 1 || got["ok"] < 1 {
		t.Fatalf("logins missing from the plugin metrics: %v", got)
	}
}
