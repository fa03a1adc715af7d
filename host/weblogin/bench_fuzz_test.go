package weblogin_test

import (
	"context"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/host/sim"
	"github.com/otpcgate/otpcgate/host/weblogin"
)

// serveDirect runs the page handler in-process (no TLS) and returns the
// recorded answer.
func serveDirect(h http.Handler, method, path, rawQuery, body string, cookies []*http.Cookie) *httptest.ResponseRecorder {
	var req *http.Request
	if body != "" || method == http.MethodPost {
		req = httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req = httptest.NewRequest(method, path, nil)
	}
	req.URL.RawQuery = rawQuery
	if rawQuery != "" {
		req.RequestURI = path + "?" + rawQuery
	}
	req.RemoteAddr = "192.0.2.1:1234"
	for _, c := range cookies {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// FuzzPage feeds arbitrary query strings (GET) and form bodies (POST) to
// the page: it must answer with a page, never a 5xx, never a redirect (no
// fuzzed input carries a valid form token), and never echo input into a
// script context (the page has no scripts at all).
func FuzzPage(f *testing.F) {
	e := newEnv(f, nil)
	req := e.request("demo-pgp", sim.AuthOptions{})
	genuine, err := url.Parse(req.URL)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(false, genuine.RawQuery)
	f.Add(true, genuine.RawQuery+"&csrf=AAAA&account=a&password=b&action=login")
	f.Add(true, genuine.RawQuery+"&action=cancel")
	f.Add(false, "")
	f.Add(false, "gspMajorVersion=2&gspAuthenticationRequest=%ZZ&gspCallbackUrl=https://x")
	f.Add(false, strings.Repeat("a=b&", 600))
	h := e.svc.Handler(e.merchant["demo-pgp"])
	f.Fuzz(func(t *testing.T, post bool, in string) {
		var rec *httptest.ResponseRecorder
		if post {
			rec = serveDirect(h, http.MethodPost, "/demo-pgp/authenticate", "", in, nil)
		} else {
			rec = serveDirect(h, http.MethodGet, "/demo-pgp/authenticate", in, "", nil)
		}
		if rec.Code >= 500 || (rec.Code >= 300 && rec.Code < 400) {
			t.Fatalf("status %d for %q", rec.Code, in)
		}
		if strings.Contains(rec.Body.String(), "<script") {
			t.Fatal("a script in the page")
		}
		if rec.Header().Get("Content-Security-Policy") == "" || rec.Header().Get("Cache-Control") != "no-store" {
			t.Fatal("security headers missing")
		}
	})
}

// BenchmarkPage measures the page's work in-process against the cost of
// opening the sealed request alone (the floor: every GET and POST opens
// it). Reported: ns/op and x_open, the ratio to that baseline.
func BenchmarkPage(b *testing.B) {
	e := newEnv(b, func(c *weblogin.Config) { c.IPMaxAttempts, c.AccountMaxFailures = 1<<30, 1<<30 })
	ctx := context.Background()
	for _, id := range []string{"demo-pgp", "demo-jose"} {
		m := e.merchant[id]
		h := e.svc.Handler(m)
		path := strings.TrimPrefix(e.pageURL(id), e.page.URL)
		req := e.request(id, sim.AuthOptions{})
		u, _ := url.Parse(req.URL)
		ks, err := m.Keyset(ctx)
		if err != nil {
			b.Fatal(err)
		}
		var openNs float64
		b.Run(id+"/baseline-open", func(b *testing.B) {
			for b.Loop() {
				if _, err := m.Codec.Open(ctx, ks, []byte(req.Sealed)); err != nil {
					b.Fatal(err)
				}
			}
			openNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		})
		ratio := func(b *testing.B) {
			if openNs > 0 {
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/openNs, "x_open")
			}
		}
		b.Run(id+"/get-form", func(b *testing.B) {
			for b.Loop() {
				if rec := serveDirect(h, http.MethodGet, path, u.RawQuery, "", nil); rec.Code != http.StatusOK {
					b.Fatalf("status %d", rec.Code)
				}
			}
			ratio(b)
		})
		// A wrong password: open + CSRF + plugin call (sha256 in wasm) + page.
		form := serveDirect(h, http.MethodGet, path, u.RawQuery, "", nil)
		vals := url.Values{}
		for _, mm := range hiddenRE.FindAllStringSubmatch(form.Body.String(), -1) {
			vals.Set(mm[1], html.UnescapeString(mm[2]))
		}
		vals.Set("account", demoAccount)
		vals.Set("password", "wrong")
		vals.Set("action", "login")
		body := vals.Encode()
		cookies := form.Result().Cookies()
		b.Run(id+"/post-wrong-password", func(b *testing.B) {
			for b.Loop() {
				if rec := serveDirect(h, http.MethodPost, path, "", body, cookies); rec.Code != http.StatusUnauthorized {
					b.Fatalf("status %d", rec.Code)
				}
			}
			ratio(b)
		})
		// A success: as above plus sealing the response and a ledger
		// commit. Each iteration needs a fresh sealed request (untimed).
		b.Run(id+"/post-success", func(b *testing.B) {
			var timed time.Duration
			for i := 0; i < b.N; i++ {
				r := e.request(id, sim.AuthOptions{})
				ru, _ := url.Parse(r.URL)
				pg := serveDirect(h, http.MethodGet, path, ru.RawQuery, "", nil)
				v := url.Values{}
				for _, mm := range hiddenRE.FindAllStringSubmatch(pg.Body.String(), -1) {
					v.Set(mm[1], html.UnescapeString(mm[2]))
				}
				v.Set("account", demoAccount)
				v.Set("password", demoPassword)
				v.Set("action", "login")
				bd, ck := v.Encode(), pg.Result().Cookies()
				start := time.Now()
				rec := serveDirect(h, http.MethodPost, path, "", bd, ck)
				timed += time.Since(start)
				if rec.Code != http.StatusSeeOther {
					b.Fatalf("status %d", rec.Code)
				}
			}
			b.ReportMetric(float64(timed.Nanoseconds())/float64(b.N), "post_ns/op")
			if openNs > 0 {
				b.ReportMetric(float64(timed.Nanoseconds())/float64(b.N)/openNs, "x_open")
			}
		})
	}
}
