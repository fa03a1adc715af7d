package weblogin_test

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/otpcgate/otpcgate/host/sim"
	"github.com/otpcgate/otpcgate/host/weblogin"
	"github.com/otpcgate/otpcgate/internal/testenv"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// chromiumPath is where scripts/setup installs Debian's chromium;
// OTPCGATE_CHROMIUM overrides it.
func chromiumPath() string {
	if p := os.Getenv("OTPCGATE_CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// browserState is the one headless Chromium per test binary.
var browserState struct {
	once   sync.Once
	ctx    context.Context
	cancel func()
	err    error
}

// spki is the base64 SHA-256 of a certificate's public key, the form of
// --ignore-certificate-errors-spki-list.
func spki(c *x509.Certificate) string {
	h := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(h[:])
}

// startBrowser starts Chromium once. Certificate errors are ignored only
// for the gateway's dev certificate and httptest's certificate (the
// simulated Google), by public key; every other certificate is checked.
func startBrowser(t *testing.T, e *env) context.Context {
	t.Helper()
	requireChromium(t)
	browserState.once.Do(func() {
		profile, err := os.MkdirTemp("", "otpcgate-chromium-")
		if err != nil {
			browserState.err = err
			return
		}
		cbCert := httptest.NewUnstartedServer(nil)
		cbCert.StartTLS()
		googleSPKI := spki(cbCert.Certificate())
		cbCert.Close()
		opts := []chromedp.ExecAllocatorOption{
			chromedp.ExecPath(chromiumPath()),
			chromedp.Flag("headless", true),
			chromedp.NoSandbox,
			chromedp.DisableGPU,
			chromedp.NoFirstRun,
			chromedp.NoDefaultBrowserCheck,
			chromedp.Flag("disable-quic", true),
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true),
			chromedp.Flag("disable-dev-shm-usage", true),
			chromedp.Flag("hide-scrollbars", true),
			chromedp.Flag("ignore-certificate-errors-spki-list", spki(e.cert)+","+googleSPKI),
			chromedp.UserDataDir(profile),
			chromedp.WindowSize(390, 844),
		}
		actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
		bctx, bcancel := chromedp.NewContext(actx)
		// Start the browser now so its start-up is not charged to a test.
		if err := chromedp.Do(bctx); err != nil {
			browserState.err = fmt.Errorf("start chromium: %w", err)
		}
		browserState.ctx = bctx
		browserState.cancel = func() {
			bcancel()
			acancel()
			os.RemoveAll(profile)
		}
	})
	if browserState.err != nil {
		t.Fatal(browserState.err)
	}
	return browserState.ctx
}

// requireChromium skips the test loudly when chromium is missing, or
// fails it in CI.
func requireChromium(t *testing.T) {
	t.Helper()
	testenv.LookPath(t, chromiumPath(), "the login page is tested in a real browser")
}

func stopBrowser() {
	if browserState.cancel != nil {
		browserState.cancel()
	}
}

// tab opens a fresh tab (its own cookies are shared by the profile; each
// flow has its own request and thus its own CSRF cookie).
func tab(t *testing.T, bctx context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(bctx)
	t.Cleanup(cancel)
	ctx, cancel2 := context.WithTimeout(ctx, 30*time.Second)
	t.Cleanup(cancel2)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2))); err != nil {
		t.Fatal(err)
	}
	return ctx
}

// artifactDir is $OTPCGATE_ARTIFACTS, else artifacts/ at the repository
// root (git-ignored).
func artifactDir(t *testing.T) string {
	dir := os.Getenv("OTPCGATE_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "artifacts")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(sel))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

func location(t *testing.T, ctx context.Context) *url.URL {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestBrowser drives the login page in headless Chromium: the simulator
// seals a request, the browser opens the page, fills in the form and
// submits, lands on the simulated Google callback, and the simulator opens
// the response and associates a token that generateReferenceNumber then
// accepts. Wrong passwords, lockout, cancel, tampering, replay and
// callback tampering are shown too.
func TestBrowser(t *testing.T) {
	requireChromium(t)
	e := newEnv(t, func(c *weblogin.Config) { c.AccountMaxFailures = 3 })
	bctx := startBrowser(t, e)
	const id = "demo-pgp"
	cb := e.cb[id]

	t.Run("success", func(t *testing.T) {
		for _, id := range []string{"demo-pgp", "demo-jose"} {
			t.Run(id, func(t *testing.T) {
				ctx := tab(t, bctx)
				req := e.request(id, sim.AuthOptions{})
				if err := chromedp.Do(ctx,
					chromedp.Navigate(req.URL),
					chromedp.WaitVisible("#account"),
				); err != nil {
					t.Fatal(err)
				}
				// The inline style is allowed by the CSP nonce: the button
				// is styled (an unstyled button is not this blue).
				bg, err := chromedp.Run(ctx, chromedp.Evaluate[string]("getComputedStyle(document.querySelector('#login')).backgroundColor"))
				if err != nil || bg != "rgb(26, 115, 232)" {
					t.Fatalf("sign-in button background %q (%v): the nonce'd style did not apply", bg, err)
				}
				if id == "demo-pgp" {
					shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
					if err != nil {
						t.Fatal(err)
					}
					path := filepath.Join(artifactDir(t), "weblogin-login-390x844.png")
					if err := os.WriteFile(path, shot, 0o644); err != nil {
						t.Fatal(err)
					}
					t.Logf("login page screenshot (390x844 CSS px at 2x): %s", path)
					fmt.Printf("ARTIFACT weblogin login page screenshot: %s\n", path)
				}
				if err := chromedp.Do(ctx,
					chromedp.SendKeys("#account", demoAccount),
					chromedp.SendKeys("#password", demoPassword),
					chromedp.Click("#login"),
					chromedp.WaitVisible("#gsp-result"),
				); err != nil {
					t.Fatal(err)
				}
				if got := text(t, ctx, "#gsp-result"); got != "100" {
					t.Fatalf("callback shows gspResult %q", got)
				}
				hit, err := e.cb[id].Wait(ctx, &req.Request)
				if err != nil || hit.Response.AuthenticationResult.Success == nil {
					t.Fatalf("callback: %+v %v", hit, err)
				}
				assoc, res, err := e.google.Associate(ctx, e.targets[id], req.Request.RequestID)
				if err != nil || res.Status != 200 || assoc.Response.Result.Success == nil {
					t.Fatalf("associateAccount: %v %d %s", err, res.Status, res.Plaintext)
				}
				gen, res, err := e.google.Generate(ctx, e.targets[id], assoc, otpc.Amount{AmountMicros: 2500_000000, CurrencyCode: "JPY"})
				if err != nil || res.Status != 200 || gen.Result.Success == nil {
					t.Fatalf("generateReferenceNumber: %v %d %s", err, res.Status, res.Plaintext)
				}

				// Replay: the same link again shows an error page.
				if err := chromedp.Do(ctx, chromedp.Navigate(req.URL), chromedp.WaitVisible("#error")); err != nil {
					t.Fatal(err)
				}
				if got := text(t, ctx, "#error"); got != weblogin.MsgUsed {
					t.Fatalf("replay shows %q", got)
				}
			})
		}
	})

	t.Run("wrong password then lockout", func(t *testing.T) {
		ctx := tab(t, bctx)
		req := e.request(id, sim.AuthOptions{})
		before := len(cb.Hits())
		if err := chromedp.Do(ctx, chromedp.Navigate(req.URL), chromedp.WaitVisible("#account"),
			chromedp.SendKeys("#account", demoAccount)); err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= 3; i++ {
			// Mark the current document so the wait below sees the next one.
			if err := chromedp.Do(ctx,
				chromedp.SetAttributeValue("body", "data-stale", "1"),
				chromedp.SendKeys("#password", "not-the-password"),
				chromedp.Click("#login"),
				chromedp.WaitVisible("body:not([data-stale]) #error"),
			); err != nil {
				t.Fatal(err)
			}
			want := weblogin.MsgWrong
			if i == 3 {
				want = weblogin.MsgLocked
			}
			if got := text(t, ctx, "#error"); got != want {
				t.Fatalf("attempt %d shows %q", i, got)
			}
			if i == 1 {
				shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
				if err != nil {
					t.Fatal(err)
				}
				path := filepath.Join(artifactDir(t), "weblogin-wrong-password-390x844.png")
				if err := os.WriteFile(path, shot, 0o644); err != nil {
					t.Fatal(err)
				}
				fmt.Printf("ARTIFACT weblogin wrong-password screenshot: %s\n", path)
			}
			if loc := location(t, ctx); loc.Host != strings.TrimPrefix(e.page.URL, "https://") {
				t.Fatalf("left the page for %s", loc)
			}
		}
		disabled, err := chromedp.Run(ctx, chromedp.AttributeValue("#login", "disabled"))
		if err != nil || !disabled.Exists {
			t.Fatalf("sign-in button not disabled when locked: %+v %v", disabled, err)
		}
		if got := len(cb.Hits()); got != before {
			t.Fatalf("callback reached %d times", got-before)
		}
		// Cancel still works from the locked form.
		if err := chromedp.Do(ctx, chromedp.Click("#cancel"), chromedp.WaitVisible("#gsp-result")); err != nil {
			t.Fatal(err)
		}
		if got := text(t, ctx, "#gsp-result"); got != "201" {
			t.Fatalf("cancel after lockout: gspResult %q", got)
		}
	})

	t.Run("cancel", func(t *testing.T) {
		ctx := tab(t, bctx)
		req := e.request(id, sim.AuthOptions{})
		if err := chromedp.Do(ctx,
			chromedp.Navigate(req.URL),
			chromedp.WaitVisible("#cancel"),
			chromedp.Click("#cancel"),
			chromedp.WaitVisible("#gsp-result"),
		); err != nil {
			t.Fatal(err)
		}
		if got := text(t, ctx, "#gsp-result"); got != "201" {
			t.Fatalf("gspResult %q", got)
		}
		hit, err := cb.Wait(ctx, &req.Request)
		if err != nil || hit.Response.AuthenticationResult.Cancelled == nil {
			t.Fatalf("callback: %+v %v", hit, err)
		}
	})

	t.Run("tampered request", func(t *testing.T) {
		ctx := tab(t, bctx)
		req := e.request(id, sim.AuthOptions{})
		b := []byte(req.Sealed)
		b[len(b)/3] = map[bool]byte{true: 'A', false: 'B'}[b[len(b)/3] != 'A']
		before := len(cb.Hits())
		if err := chromedp.Do(ctx,
			chromedp.Navigate(sim.AuthURL(e.pageURL(id), string(b), cb.URL, "")),
			chromedp.WaitVisible("#error"),
		); err != nil {
			t.Fatal(err)
		}
		if got := text(t, ctx, "#error"); got != weblogin.MsgUnverified {
			t.Fatalf("shows %q", got)
		}
		if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int]("document.forms.length")); n != 0 || len(cb.Hits()) != before {
			t.Fatalf("forms %d, callback hits %d -> %d", n, before, len(cb.Hits()))
		}
	})

	t.Run("callback tampering", func(t *testing.T) {
		ctx := tab(t, bctx)
		req := e.request(id, sim.AuthOptions{})
		// In the link.
		if err := chromedp.Do(ctx,
			chromedp.Navigate(sim.AuthURL(e.pageURL(id), req.Sealed, "https://evil.example/payments/steal", "")),
			chromedp.WaitVisible("#error"),
		); err != nil {
			t.Fatal(err)
		}
		if got := text(t, ctx, "#error"); got != weblogin.MsgCallback {
			t.Fatalf("link: shows %q", got)
		}
		// In the rendered form, changed before submitting.
		before := len(cb.Hits())
		if err := chromedp.Do(ctx,
			chromedp.Navigate(req.URL),
			chromedp.WaitVisible("#account"),
			chromedp.SetAttributeValue(`input[name="gspCallbackUrl"]`, "value", "https://127.0.0.1:1/payments/steal"),
			chromedp.SendKeys("#account", demoAccount),
			chromedp.SendKeys("#password", demoPassword),
			chromedp.Click("#login"),
			chromedp.WaitVisible("#error"),
		); err != nil {
			t.Fatal(err)
		}
		if got := text(t, ctx, "#error"); got != weblogin.MsgCallback {
			t.Fatalf("form: shows %q", got)
		}
		if len(cb.Hits()) != before {
			t.Fatal("callback reached")
		}
	})
}
