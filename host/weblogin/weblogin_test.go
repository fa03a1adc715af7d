package weblogin_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/host/ledger"
	"github.com/otpcgate/otpcgate/host/protocol"
	"github.com/otpcgate/otpcgate/host/sim"
	"github.com/otpcgate/otpcgate/host/weblogin"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// TestAssociationFlow is the whole flow without a browser, for both
// envelopes: the page opens Google's sealed request, the konbini plugin
// checks the password, the session is recorded, the sealed response
// reaches the callback, and associateAccount + generateReferenceNumber
// succeed with the new token.
func TestAssociationFlow(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	for _, id := range []string{"demo-pgp", "demo-jose"} {
		t.Run(id, func(t *testing.T) {
			// The simulator plays the user too (sim.Login, what
			// `otpcgate sim` can use without a browser).
			req := e.request(id, sim.AuthOptions{})
			lr, err := e.google.Login(ctx, req, demoAccount, demoPassword, false)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := e.google.OpenLoginResult(ctx, e.targets[id], req, lr)
			if err != nil || resp.AuthenticationResult.Success == nil || lr.Callback.Query().Get("gspResult") != "100" {
				t.Fatalf("login: %+v: %v", lr, err)
			}
			sess, err := e.g.Ledger.AuthSession(ctx, req.Request.RequestID)
			if err != nil || sess.Result != weblogin.ResultSuccess || sess.AccountID != demoAccount || sess.PIAID != e.targets[id].PIAID {
				t.Fatalf("session %+v err %v", sess, err)
			}
			assoc, r, err := e.google.Associate(ctx, e.targets[id], req.Request.RequestID)
			if err != nil || r.Status != http.StatusOK || assoc.Response.Result.Success == nil {
				t.Fatalf("associateAccount: %v status %d %s", err, r.Status, r.Plaintext)
			}
			if ui := assoc.Response.Result.Success.UserInformation; ui == nil || ui.Name != "Demo User" {
				t.Fatalf("userInformation %+v", ui)
			}
			gen, r, err := e.google.Generate(ctx, e.targets[id], assoc, otpc.Amount{AmountMicros: 1500_000000, CurrencyCode: "JPY"})
			if err != nil || r.Status != http.StatusOK || gen.Result.Success == nil {
				t.Fatalf("generateReferenceNumber: %v status %d %s", err, r.Status, r.Plaintext)
			}
			// The authentication was used up by the association.
			_, r, err = e.google.Associate(ctx, e.targets[id], req.Request.RequestID)
			if err != nil || r.Status == http.StatusOK {
				t.Fatalf("second associateAccount with the same authentication: %v status %d", err, r.Status)
			}
		})
	}
	if weblogin.ResultSuccess != protocol.AuthSuccess {
		t.Fatal("the page's success result is not what associateAccount accepts")
	}
}

// TestCancel: the cancel button answers 201 and the session cannot be
// used for associateAccount.
func TestCancel(t *testing.T) {
	e := newEnv(t, nil)
	req := e.request("demo-jose", sim.AuthOptions{})
	b := e.browser()
	page := b.get(req.URL)
	action, vals := page.form(t)
	vals.Set("action", "cancel")
	code, resp := e.callback("demo-jose", b.post(action, vals), &req.Request)
	if code != otpc.GSPResultUserCancelled || resp.AuthenticationResult.Cancelled == nil {
		t.Fatalf("gspResult %d result %+v", code, resp.AuthenticationResult)
	}
	_, r, err := e.google.Associate(context.Background(), e.targets["demo-jose"], req.Request.RequestID)
	if err != nil || r.Status == http.StatusOK || r.Member() == "" {
		t.Fatalf("associateAccount after cancel: %v status %d member %q", err, r.Status, r.Member())
	}
}

// TestReAuthentication: a request naming an association is finished only
// by that association's account; an unknown association fails for good.
func TestReAuthentication(t *testing.T) {
	e := newEnv(t, nil)
	for _, tc := range []struct {
		name, assoc string
		want        int
	}{
		{"bound account", "demo-association-demo-pgp", otpc.GSPResultSuccess},
		{"unknown association", "no-such-association", otpc.GSPResultFatalError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := e.request("demo-pgp", sim.AuthOptions{AssociationID: tc.assoc})
			_, res := e.browser().login(req.URL, demoAccount, demoPassword)
			code, resp := e.callback("demo-pgp", res, &req.Request)
			if code != tc.want || resp.AssociationID != tc.assoc {
				t.Fatalf("gspResult %d associationId %q", code, resp.AssociationID)
			}
		})
	}
}

// TestWrongPasswordLockout: wrong passwords keep the form with an error;
// after AccountMaxFailures the account is locked, even for the right
// password; another account is not affected.
func TestWrongPasswordLockout(t *testing.T) {
	e := newEnv(t, func(c *weblogin.Config) { c.AccountMaxFailures = 3 })
	req := e.request("demo-pgp", sim.AuthOptions{})
	b := e.browser()
	page := b.get(req.URL)
	action, vals := page.form(t)
	// Like a browser, each attempt submits the latest rendered form: a
	// re-rendered form carries a fresh token and cookie.
	try := func(account, password string) *response {
		vals.Set("account", account)
		vals.Set("password", password)
		vals.Set("action", "login")
		res := b.post(action, vals)
		if strings.Contains(res.body, "<form") {
			action, vals = res.form(t)
		}
		return res
	}
	for i := 1; i <= 3; i++ {
		res := try(demoAccount, "wrong-password")
		want, msg := http.StatusUnauthorized, weblogin.MsgWrong
		if i == 3 {
			want, msg = http.StatusTooManyRequests, weblogin.MsgLocked
		}
		if res.StatusCode != want || res.errorText() != msg || !strings.Contains(res.body, `value="demo-account-1"`) {
			t.Fatalf("attempt %d: status %d error %q", i, res.StatusCode, res.errorText())
		}
	}
	if res := try(demoAccount, demoPassword); res.StatusCode != http.StatusTooManyRequests || res.errorText() != weblogin.MsgLocked {
		t.Fatalf("right password while locked: status %d %q", res.StatusCode, res.errorText())
	}
	if res := try("account-42", "whatever"); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("other account: status %d %q", res.StatusCode, res.errorText())
	}
	if _, err := e.g.Ledger.AuthSession(context.Background(), req.Request.RequestID); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("a failed login recorded a session: %v", err)
	}
	if hits := e.cb["demo-pgp"].Hits(); len(hits) != 0 {
		t.Fatalf("callback reached: %+v", hits)
	}
}

// TestLockoutExpires: the lock lifts after AccountLockout.
func TestLockoutExpires(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	e := newEnv(t, func(c *weblogin.Config) {
		c.AccountMaxFailures, c.AccountLockout, c.Now = 2, time.Minute, clock
	})
	req := e.request("demo-jose", sim.AuthOptions{})
	b := e.browser()
	page := b.get(req.URL)
	action, vals := page.form(t)
	vals.Set("account", demoAccount)
	vals.Set("action", "login")
	vals.Set("password", "bad")
	b.post(action, vals)
	if res := b.post(action, vals); res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("not locked: %d", res.StatusCode)
	}
	mu.Lock()
	now = now.Add(61 * time.Second)
	mu.Unlock()
	vals.Set("password", demoPassword)
	if code, _ := e.callback("demo-jose", b.post(action, vals), &req.Request); code != otpc.GSPResultSuccess {
		t.Fatalf("after the lockout: gspResult %d", code)
	}
}

// TestIPRateLimit: attempts from one address are capped whatever the
// account.
func TestIPRateLimit(t *testing.T) {
	now := time.Now() // a still clock: every re-rendered form keeps its token
	e := newEnv(t, func(c *weblogin.Config) {
		c.IPMaxAttempts, c.Now = 4, func() time.Time { return now }
	})
	req := e.request("demo-pgp", sim.AuthOptions{})
	b := e.browser()
	action, vals := b.get(req.URL).form(t)
	vals.Set("action", "login")
	vals.Set("password", "bad")
	var last *response
	for i := range 5 {
		vals.Set("account", "user-"+string(rune('a'+i)))
		last = b.post(action, vals)
	}
	if last.StatusCode != http.StatusTooManyRequests || last.errorText() != weblogin.MsgIPLimited {
		t.Fatalf("5th attempt: status %d %q", last.StatusCode, last.errorText())
	}
	vals.Set("account", demoAccount)
	vals.Set("password", demoPassword)
	if res := b.post(action, vals); res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("right password from a limited address: %d", res.StatusCode)
	}
}

// TestCSRF: the form token must match the cookie, this request, this
// process and be unexpired; every failure is a 403 page and records
// nothing.
func TestCSRF(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	e := newEnv(t, func(c *weblogin.Config) { c.Now, c.FormTTL = clock, 10*time.Minute })
	other := e.request("demo-pgp", sim.AuthOptions{})
	_, otherVals := e.browser().get(other.URL).form(t)
	for _, tc := range []struct {
		name   string
		mutate func(b *browser, vals url.Values)
	}{
		{"no cookie", func(b *browser, _ url.Values) { b.hc.Jar = nil }},
		{"no field", func(_ *browser, v url.Values) { v.Del("csrf") }},
		{"field differs from cookie", func(_ *browser, v url.Values) { v.Set("csrf", otherVals.Get("csrf")) }},
		{"token of another request in both", func(b *browser, v url.Values) {
			v.Set("csrf", otherVals.Get("csrf"))
			u, _ := url.Parse(e.page.URL)
			for _, c := range b.hc.Jar.Cookies(u) {
				c.Value = otherVals.Get("csrf")
				b.hc.Jar.SetCookies(u, []*http.Cookie{c})
			}
		}},
		{"tampered token", func(b *browser, v url.Values) {
			tok := []byte(v.Get("csrf"))
			tok[len(tok)-2] ^= 1
			v.Set("csrf", string(tok))
		}},
		{"expired", func(*browser, url.Values) {
			mu.Lock()
			now = now.Add(11 * time.Minute)
			mu.Unlock()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := e.request("demo-pgp", sim.AuthOptions{})
			b := e.browser()
			action, vals := b.get(req.URL).form(t)
			vals.Set("account", demoAccount)
			vals.Set("password", demoPassword)
			vals.Set("action", "login")
			tc.mutate(b, vals)
			res := b.post(action, vals)
			if res.StatusCode != http.StatusForbidden || res.errorText() != weblogin.MsgForm || res.Header.Get("Location") != "" {
				t.Fatalf("status %d error %q location %q", res.StatusCode, res.errorText(), res.Header.Get("Location"))
			}
			if _, err := e.g.Ledger.AuthSession(context.Background(), req.Request.RequestID); !errors.Is(err, ledger.ErrNotFound) {
				t.Fatalf("session recorded: %v", err)
			}
		})
	}
}

// TestSecurityHeaders checks the headers and cookie of the form, of an
// error page and of the redirect.
func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t, nil)
	req := e.request("demo-pgp", sim.AuthOptions{})
	b := e.browser()
	page, res := b.login(req.URL, demoAccount, demoPassword)
	errPage := b.get(req.URL) // replay: an error page
	cbOrigin := strings.TrimSuffix(e.cb["demo-pgp"].Server.URL, "/")
	nonceRE := regexp.MustCompile(`<style nonce="([^"]+)">`)
	for _, tc := range []struct {
		name       string
		r          *response
		formOrigin string
	}{
		{"form", page, cbOrigin},
		{"redirect", res, cbOrigin},
		{"error page", errPage, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.r.Header
			want := map[string]string{
				"X-Frame-Options":        "DENY",
				"Cache-Control":          "no-store",
				"Referrer-Policy":        "no-referrer",
				"X-Content-Type-Options": "nosniff",
			}
			for k, v := range want {
				if h.Get(k) != v {
					t.Errorf("%s = %q, want %q", k, h.Get(k), v)
				}
			}
			csp := h.Get("Content-Security-Policy")
			for _, part := range []string{"default-src 'none'", "frame-ancestors 'none'", "base-uri 'none'"} {
				if !strings.Contains(csp, part) {
					t.Errorf("CSP %q lacks %q", csp, part)
				}
			}
			if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "script-src") {
				t.Errorf("CSP too loose: %q", csp)
			}
			wantForm := "form-action 'self'"
			if tc.formOrigin != "" {
				wantForm += " " + tc.formOrigin
			}
			if !strings.Contains(csp, wantForm+";") {
				t.Errorf("CSP %q lacks %q", csp, wantForm)
			}
			if tc.r.StatusCode != http.StatusSeeOther {
				m := nonceRE.FindStringSubmatch(tc.r.body)
				if m == nil || !strings.Contains(csp, "style-src 'nonce-"+m[1]+"'") {
					t.Errorf("style nonce %v not in CSP %q", m, csp)
				}
				if strings.Contains(tc.r.body, "<script") || strings.Contains(tc.r.body, "http://") {
					t.Error("page has a script or a plain-http reference")
				}
			}
		})
	}
	var cookie *http.Cookie
	for _, c := range page.Cookies() {
		if strings.HasPrefix(c.Name, "__Host-") {
			cookie = c
		}
	}
	if cookie == nil || !cookie.Secure || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/" || cookie.Domain != "" {
		t.Fatalf("CSRF cookie %+v", cookie)
	}
	if c := res.Cookies(); len(c) != 1 || c[0].Name != cookie.Name || c[0].MaxAge >= 0 {
		t.Fatalf("redirect does not clear the cookie: %+v", c)
	}
}

// TestURLLength: the page serves URLs of 2,048 characters and refuses
// longer ones with a clear page.
func TestURLLength(t *testing.T) {
	e := newEnv(t, nil)
	req := e.request("demo-jose", sim.AuthOptions{})
	if len(req.URL) > 2000 {
		t.Fatalf("a real request URL is already %d bytes", len(req.URL))
	}
	pad := func(total int) string {
		u := req.URL + "&pad="
		uri := strings.TrimPrefix(u, e.page.URL)
		return u + strings.Repeat("x", total-len(uri))
	}
	b := e.browser()
	if res := b.get(pad(2048)); res.StatusCode != http.StatusOK || res.Request.URL.RequestURI() != strings.TrimPrefix(pad(2048), e.page.URL) {
		t.Fatalf("2,048-byte URL: status %d %q", res.StatusCode, res.errorText())
	}
	res := b.get(pad(2049))
	if res.StatusCode != http.StatusRequestURITooLong || res.errorText() != weblogin.MsgTooLong {
		t.Fatalf("2,049-byte URL: status %d %q", res.StatusCode, res.errorText())
	}
}

// TestCallbackAllowList: only https callbacks below a configured prefix
// are served, on GET and again on POST.
func TestCallbackAllowList(t *testing.T) {
	e := newEnv(t, nil)
	good := e.cb["demo-pgp"].URL // https://127.0.0.1:port/payments/auth-callback
	u, _ := url.Parse(good)
	for _, tc := range []struct{ name, cb string }{
		{"plain http", "http://" + u.Host + u.Path},
		{"other host", "https://evil.example" + u.Path},
		{"other port", "https://127.0.0.1:1" + u.Path},
		{"outside the prefix", "https://" + u.Host + "/other/callback"},
		{"prefix look-alike", "https://" + u.Host + "/paymentsX/cb"},
		{"user info", "https://attacker@" + u.Host + u.Path},
		{"fragment", good + "#x"},
		{"javascript", "javascript:alert(1)"},
		{"relative", "/payments/auth-callback"},
		{"dot segments", "https://" + u.Host + "/payments/../evil"},
		{"single dot", "https://" + u.Host + "/payments/./auth-callback"},
		{"encoded slash", "https://" + u.Host + "/payments/..%2Fevil"},
		{"encoded dot", "https://" + u.Host + "/payments/%2e%2e/evil"},
		{"backslash", "https://" + u.Host + "/payments/..\\evil"},
		{"double slash", "https://" + u.Host + "/payments//evil.example/x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := e.request("demo-pgp", sim.AuthOptions{})
			tampered := sim.AuthURL(e.pageURL("demo-pgp"), req.Sealed, tc.cb, "")
			res := e.browser().get(tampered)
			if res.StatusCode != http.StatusBadRequest || res.errorText() != weblogin.MsgCallback || len(res.Cookies()) != 0 {
				t.Fatalf("GET: status %d %q", res.StatusCode, res.errorText())
			}
			// Changing the hidden field of a genuine form fails the same way.
			b := e.browser()
			action, vals := b.get(req.URL).form(t)
			vals.Set("gspCallbackUrl", tc.cb)
			vals.Set("account", demoAccount)
			vals.Set("password", demoPassword)
			vals.Set("action", "login")
			res = b.post(action, vals)
			if res.StatusCode != http.StatusBadRequest || res.errorText() != weblogin.MsgCallback || res.Header.Get("Location") != "" {
				t.Fatalf("POST: status %d %q", res.StatusCode, res.errorText())
			}
		})
	}
	// A query on an allowed callback survives and is extended.
	req, err := e.google.NewAuthRequest(context.Background(), e.targets["demo-pgp"], e.pageURL("demo-pgp"), good+"?session=abc", sim.AuthOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, res := e.browser().login(req.URL, demoAccount, demoPassword)
	loc, _ := url.Parse(res.Header.Get("Location"))
	if loc.Query().Get("session") != "abc" || loc.Query().Get("gspResult") != "100" {
		t.Fatalf("redirect %s", loc)
	}
}

// TestRequestChecks: tampered, foreign, malformed and replayed requests
// get a clear error page and no redirect.
func TestRequestChecks(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	pgp, jose := e.targets["demo-pgp"], e.targets["demo-jose"]
	seal := func(tg *sim.Target, plaintext string) string {
		s, err := e.google.SealAuth(ctx, tg, []byte(plaintext))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	genuine := e.request("demo-pgp", sim.AuthOptions{})
	flip := []byte(genuine.Sealed)
	flip[len(flip)/2] ^= 0x01
	if flip[len(flip)/2] == '.' || flip[len(flip)/2] > 'z' {
		flip[len(flip)/2] = 'A'
	}
	page := e.pageURL("demo-pgp")
	cb := e.cb["demo-pgp"].URL
	for _, tc := range []struct {
		name, url string
		status    int
		msg       string
	}{
		{"tampered ciphertext", sim.AuthURL(page, string(flip), cb, ""), 400, weblogin.MsgUnverified},
		{"sealed for the other merchant", sim.AuthURL(page, e.request("demo-jose", sim.AuthOptions{}).Sealed, cb, ""), 400, weblogin.MsgUnverified},
		{"not base64", sim.AuthURL(page, "!!!not-a-message!!!", cb, ""), 400, weblogin.MsgUnverified},
		{"bad requestId", sim.AuthURL(page, seal(pgp, `{"requestId":"has space"}`), cb, ""), 400, weblogin.MsgUnverified},
		{"no requestId", sim.AuthURL(page, seal(pgp, `{"associationId":"x"}`), cb, ""), 400, weblogin.MsgUnverified},
		{"another merchant's PIAID", sim.AuthURL(page, seal(pgp, `{"requestId":"r-1","paymentIntegratorAccountId":"`+jose.PIAID+`"}`), cb, ""), 400, weblogin.MsgUnverified},
		{"association id differs from the sealed one", sim.AuthURL(page, genuine.Sealed, cb, "someone-else"), 400, weblogin.MsgIncomplete},
		{"missing callback", strings.Replace(genuine.URL, "gspCallbackUrl=", "x=", 1), 400, weblogin.MsgIncomplete},
		{"wrong version", strings.Replace(genuine.URL, "gspMajorVersion=2", "gspMajorVersion=1", 1), 400, weblogin.MsgVersion},
		{"repeated parameter", genuine.URL + "&gspMajorVersion=2", 400, weblogin.MsgIncomplete},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := e.browser().get(tc.url)
			if res.StatusCode != tc.status || res.errorText() != tc.msg || strings.Contains(res.body, "<form") {
				t.Fatalf("status %d error %q", res.StatusCode, res.errorText())
			}
		})
	}
	// A request without a PIAID is fine for a merchant with one PIAID.
	noPIAID := e.request("demo-pgp", sim.AuthOptions{OmitPIAID: true})
	_, res := e.browser().login(noPIAID.URL, demoAccount, demoPassword)
	if code, _ := e.callback("demo-pgp", res, &noPIAID.Request); code != otpc.GSPResultSuccess {
		t.Fatalf("request without PIAID: %d", code)
	}

	t.Run("replay", func(t *testing.T) {
		b := e.browser()
		page, res := b.login(genuine.URL, demoAccount, demoPassword)
		e.callback("demo-pgp", res, &genuine.Request)
		// The same URL again, and the same form again.
		if r := e.browser().get(genuine.URL); r.StatusCode != http.StatusConflict || r.errorText() != weblogin.MsgUsed {
			t.Fatalf("GET replay: %d %q", r.StatusCode, r.errorText())
		}
		action, vals := page.form(t)
		vals.Set("account", demoAccount)
		vals.Set("password", demoPassword)
		vals.Set("action", "login")
		if r := b.post(action, vals); r.StatusCode != http.StatusConflict || r.Header.Get("Location") != "" {
			t.Fatalf("POST replay: %d", r.StatusCode)
		}
	})

	t.Run("concurrent submissions", func(t *testing.T) {
		req := e.request("demo-jose", sim.AuthOptions{})
		b := e.browser()
		action, vals := b.get(req.URL).form(t)
		vals.Set("account", demoAccount)
		vals.Set("password", demoPassword)
		vals.Set("action", "login")
		const n = 4
		codes := make(chan int, n)
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes <- b.post(action, vals).StatusCode
			}()
		}
		wg.Wait()
		close(codes)
		won := 0
		for c := range codes {
			switch c {
			case http.StatusSeeOther:
				won++
			case http.StatusConflict:
			default:
				t.Errorf("status %d", c)
			}
		}
		if won != 1 {
			t.Fatalf("%d submissions redirected, want exactly 1", won)
		}
	})
	if hits := e.cb["demo-pgp"].Hits(); len(hits) != 0 {
		t.Fatalf("the callback endpoint was reached by a refused request: %+v", hits)
	}
}

// TestNoCredentialsInLogs: passwords, sealed messages and account ids
// never reach the logs (the gateway's logger, which the plugin runtime
// and the page share, at debug level).
func TestNoCredentialsInLogs(t *testing.T) {
	e := newEnv(t, func(c *weblogin.Config) { c.AccountMaxFailures = 2 })
	const wrong = "Wr0ng-Passw0rd-Marker"
	req := e.request("demo-pgp", sim.AuthOptions{})
	b := e.browser()
	_, res := b.login(req.URL, demoAccount, wrong)
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", res.StatusCode)
	}
	_, res = b.login(req.URL, "account-42", wrong) // fails, then locks nothing
	_, res = b.login(req.URL, demoAccount, demoPassword)
	code, resp := e.callback("demo-pgp", res, &req.Request)
	if code != 100 {
		t.Fatalf("gspResult %d", code)
	}
	_ = resp
	e.browser().get(req.URL) // a refused replay logs too
	logs := e.logText()
	if !strings.Contains(logs, "weblogin: login failed") || !strings.Contains(logs, "weblogin: finished") || !strings.Contains(logs, "weblogin: refused") {
		t.Fatalf("expected log lines missing:\n%s", logs)
	}
	loc := res.Header.Get("Location")
	sealedResp, _ := url.Parse(loc)
	for _, secret := range []string{wrong, demoPassword, demoAccount, "account-42", req.Sealed[:40],
		sealedResp.Query().Get("gspAuthenticationResponse")[:40]} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain %q", secret)
		}
	}
}

// TestMiddlewarePassesOthers: paths that are not a merchant's login page
// go to the next handler.
func TestMiddlewarePassesOthers(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser()
	for _, p := range []string{"/unknown-merchant/authenticate", "/demo-pgp/other", "/demo-pgp%2Fauthenticate"} {
		if res := b.get(e.page.URL + p); res.StatusCode != http.StatusNotFound {
			t.Errorf("%s: status %d", p, res.StatusCode)
		}
	}
	if res := b.get(e.pageURL("demo-pgp")); res.StatusCode != http.StatusBadRequest || res.errorText() != weblogin.MsgIncomplete {
		t.Errorf("page without parameters: %d %q", res.StatusCode, res.errorText())
	}
}

// TestConfig rejects non-https callback prefixes and bad paths.
func TestConfig(t *testing.T) {
	e := newEnv(t, nil)
	for _, cfg := range []weblogin.Config{
		{Callbacks: map[string][]string{"m": {"http://example.com/cb"}}},
		{Callbacks: map[string][]string{"m": {"https://example.com/cb?x=1"}}},
		{Callbacks: map[string][]string{"m": {"https:///cb"}}},
		{Path: "authenticate"},
		{Path: "/authenticate/"},
	} {
		if _, err := weblogin.New(cfg, e.g.Ledger, e.g.Calls); !errors.Is(err, weblogin.ErrConfig) {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
}

// TestUnavailable: a plugin that cannot run keeps the user on the form
// with a retry message and records nothing; a disabled merchant shows an
// error page.
func TestUnavailable(t *testing.T) {
	e := newEnv(t, nil)
	e.merchant["demo-pgp"].PluginID = "no-such-plugin"
	req := e.request("demo-pgp", sim.AuthOptions{})
	_, res := e.browser().login(req.URL, demoAccount, demoPassword)
	if res.StatusCode != http.StatusServiceUnavailable || res.errorText() != weblogin.MsgUnavailable || !strings.Contains(res.body, "<form") {
		t.Fatalf("plugin failure: status %d %q", res.StatusCode, res.errorText())
	}
	if _, err := e.g.Ledger.AuthSession(context.Background(), req.Request.RequestID); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("session recorded: %v", err)
	}
	e.merchant["demo-jose"].Disabled = true
	if res := e.browser().get(e.request("demo-jose", sim.AuthOptions{}).URL); res.StatusCode != http.StatusServiceUnavailable ||
		res.errorText() != weblogin.MsgDisabled {
		t.Fatalf("disabled: status %d %q", res.StatusCode, res.errorText())
	}
}

// TestLockoutSurvivesRestart: an account locked on one Service stays locked
// on a new one over the same ledger (a restart, or another host), and a
// flood of other account names does not lift it.
func TestLockoutSurvivesRestart(t *testing.T) {
	cfg := func(c *weblogin.Config) { c.AccountMaxFailures = 2 }
	e := newEnv(t, cfg)
	for range 2 {
		loginOnce(t, e, demoAccount, "wrong-password")
	}
	for i := range 12 {
		loginOnce(t, e, fmt.Sprintf("flood-%d", i), "x")
	}
	restarted := newEnvKeepLockouts(t, cfg)
	if res := loginOnce(t, restarted, demoAccount, demoPassword); res.StatusCode != http.StatusTooManyRequests || res.errorText() != weblogin.MsgLocked {
		t.Fatalf("after a restart: status %d %q, want the lockout", res.StatusCode, res.errorText())
	}
}

// TestIPLimitSharedByHosts: the per-address limit is counted in the
// ledger, so attempts made on one Service count on another over the same
// ledger (a restart, or another host behind the load balancer).
func TestIPLimitSharedByHosts(t *testing.T) {
	cfg := func(c *weblogin.Config) { c.IPMaxAttempts = 3 }
	e := newEnv(t, cfg)
	for i := range 3 {
		if res := loginOnce(t, e, fmt.Sprintf("user-%d", i), "x"); res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("attempt %d: status %d %q", i+1, res.StatusCode, res.errorText())
		}
	}
	other := newEnvKeepLockouts(t, cfg)
	if res := loginOnce(t, other, demoAccount, demoPassword); res.StatusCode != http.StatusTooManyRequests || res.errorText() != weblogin.MsgIPLimited {
		t.Fatalf("4th attempt, on the other host: status %d %q, want the address limit", res.StatusCode, res.errorText())
	}
}

// loginOnce signs in once on demo-pgp's login page in a new browser.
func loginOnce(t *testing.T, e *env, account, password string) *response {
	t.Helper()
	_, res := e.browser().login(e.request("demo-pgp", sim.AuthOptions{}).URL, account, password)
	return res
}
