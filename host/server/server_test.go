package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/internal/testenv"
)

var testRoutes = []Route{
	{BasePath: "/acme", MerchantID: "acme"},
	{BasePath: "/shop/sandbox/", MerchantID: "shop-sbx"},
	{BasePath: "", MerchantID: "root"},
}

func post(t *testing.T, c *http.Client, url, ct string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestRouting(t *testing.T) {
	g := &recorder{}
	ts := startServer(t, Config{Routes: testRoutes}, g, Options{})
	c := ts.client(nil)
	const api = "/" + APIPathSegment + "/"
	tests := []struct {
		method, path   string
		wantStatus     int
		merchant, meth string // expected gateway call when 200
	}{
		{"POST", "/acme" + api + "echo", 200, "acme", "echo"},
		{"POST", "/acme" + api + "generateReferenceNumber", 200, "acme", "generateReferenceNumber"},
		{"POST", "/shop/sandbox" + api + "refund", 200, "shop-sbx", "refund"},
		{"POST", api + "asynchronousRefund", 200, "root", "asynchronousRefund"},
		{"POST", "/acme" + api + "noSuchMethod", 404, "", ""},
		{"POST", "/acme" + api, 404, "", ""},
		{"POST", "/acme" + api + "echo/extra", 404, "", ""},
		{"POST", "/other" + api + "echo", 404, "", ""},
		{"POST", "/shop" + api + "echo", 404, "", ""},
		{"POST", "/acme/" + api + "echo", 404, "", ""},
		{"POST", "/ac%6De" + api + "echo", 404, "", ""},
		{"POST", "/acme/refundable-one-time-payment-code-v1/echo", 404, "", ""},
		{"GET", "/acme" + api + "echo", 405, "", ""},
		{"PUT", "/acme" + api + "echo", 405, "", ""},
		{"GET", "/unknown" + api + "echo", 404, "", ""},
		{"GET", "/", 404, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			before := g.count()
			req, _ := http.NewRequest(tc.method, ts.url(tc.path), strings.NewReader("payload"))
			req.Header.Set("Content-Type", "application/jose; charset=utf-8")
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if tc.wantStatus != 200 {
				if len(body) != 0 {
					t.Fatalf("error body %q, want empty", body)
				}
				if g.count() != before {
					t.Fatal("gateway called for a refused request")
				}
				if tc.wantStatus == 405 && resp.Header.Get("Allow") != "POST" {
					t.Fatalf("Allow = %q", resp.Header.Get("Allow"))
				}
				return
			}
			got := g.last()
			if got.MerchantID != tc.merchant || got.Method != tc.meth {
				t.Fatalf("gateway got merchant %q method %q", got.MerchantID, got.Method)
			}
			if got.ContentType != MediaTypeJOSE || string(got.Body) != "payload" || got.RequestID == "" || got.RemoteAddr == "" || got.Received.IsZero() {
				t.Fatalf("gateway request %+v", got)
			}
			if want := "answer:" + tc.merchant + ":" + tc.meth; string(body) != want {
				t.Fatalf("body %q, want %q", body, want)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/jose; charset=utf-8" {
				t.Fatalf("response content type %q", ct)
			}
			if resp.Header.Get("X-Request-Id") != got.RequestID {
				t.Fatal("X-Request-Id does not match the gateway's request id")
			}
			g.mu.Lock()
			ctxID := g.ctxID[len(g.ctxID)-1]
			g.mu.Unlock()
			if ctxID != got.RequestID {
				t.Fatalf("the request's context carries id %q, want %q (what a plugin call logs)", ctxID, got.RequestID)
			}
			for _, h := range []string{"Strict-Transport-Security", "X-Content-Type-Options", "Cache-Control"} {
				if resp.Header.Get(h) == "" {
					t.Fatalf("missing %s", h)
				}
			}
		})
	}
}

func TestSetRoutes(t *testing.T) {
	g := &recorder{}
	ts := startServer(t, Config{Routes: testRoutes[:1]}, g, Options{})
	c := ts.client(nil)
	url := ts.url("/new/" + APIPathSegment + "/echo")
	if resp, _ := post(t, c, url, MediaTypePGP, strings.NewReader("x")); resp.StatusCode != 404 {
		t.Fatalf("before SetRoutes: %d", resp.StatusCode)
	}
	if err := ts.SetRoutes([]Route{{BasePath: "/new", MerchantID: "newco"}}); err != nil {
		t.Fatal(err)
	}
	if resp, _ := post(t, c, url, MediaTypePGP, strings.NewReader("x")); resp.StatusCode != 200 || g.last().MerchantID != "newco" {
		t.Fatalf("after SetRoutes: %d", resp.StatusCode)
	}
	bad := [][]Route{
		{{BasePath: "/a", MerchantID: "x"}, {BasePath: "/a/", MerchantID: "y"}},
		{{BasePath: "a", MerchantID: "x"}},
		{{BasePath: "/a//b", MerchantID: "x"}},
		{{BasePath: "/a/../b", MerchantID: "x"}},
		{{BasePath: "/a b", MerchantID: "x"}},
		{{BasePath: "/" + APIPathSegment, MerchantID: "x"}},
		{{BasePath: "/a", MerchantID: ""}},
	}
	for _, rs := range bad {
		if err := ts.SetRoutes(rs); !errors.Is(err, ErrBadRoute) {
			t.Errorf("SetRoutes(%+v) = %v, want ErrBadRoute", rs, err)
		}
	}
}

func TestContentTypes(t *testing.T) {
	g := &recorder{}
	ts := startServer(t, Config{Routes: testRoutes}, g, Options{})
	c := ts.client(nil)
	url := ts.url("/acme/" + APIPathSegment + "/echo")
	tests := []struct {
		ct        string
		want      int
		mediaType string
	}{
		{"application/octet-stream; charset=utf-8", 200, MediaTypePGP},
		{"application/octet-stream", 200, MediaTypePGP},
		{"Application/JOSE; charset=UTF-8", 200, MediaTypeJOSE},
		{"application/jose", 200, MediaTypeJOSE},
		{"application/jose; charset=iso-8859-1", 415, ""},
		{"application/json", 415, ""},
		{"text/plain; charset=utf-8", 415, ""},
		{"application/jose;;", 415, ""},
		{"", 415, ""},
	}
	for _, tc := range tests {
		before := g.count()
		resp, _ := post(t, c, url, tc.ct, strings.NewReader("x"))
		if resp.StatusCode != tc.want {
			t.Errorf("%q: status %d, want %d", tc.ct, resp.StatusCode, tc.want)
			continue
		}
		if tc.want == 200 && g.last().ContentType != tc.mediaType {
			t.Errorf("%q: gateway saw %q", tc.ct, g.last().ContentType)
		}
		if tc.want != 200 && g.count() != before {
			t.Errorf("%q: gateway called", tc.ct)
		}
	}
}

// chunked hides the length so the limit must be enforced while reading.
type chunked struct{ r io.Reader }

func (c chunked) Read(p []byte) (int, error) { return c.r.Read(p) }

func TestBodyLimit(t *testing.T) {
	g := &recorder{}
	ts := startServer(t, Config{Routes: testRoutes, BodyLimit: 1024}, g, Options{})
	c := ts.client(nil)
	url := ts.url("/acme/" + APIPathSegment + "/echo")
	tests := []struct {
		name string
		body io.Reader
		want int
	}{
		{"at limit", bytes.NewReader(make([]byte, 1024)), 200},
		{"over, with Content-Length", bytes.NewReader(make([]byte, 1025)), 413},
		{"over, chunked", chunked{bytes.NewReader(make([]byte, 64<<10))}, 413},
		{"at limit, chunked", chunked{bytes.NewReader(make([]byte, 1024))}, 200},
	}
	for _, tc := range tests {
		before := g.count()
		resp, _ := post(t, c, url, MediaTypeJOSE, tc.body)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
		if called := g.count() != before; called != (tc.want == 200) {
			t.Errorf("%s: gateway called = %v", tc.name, called)
		}
	}
}

func TestPanicRecovered(t *testing.T) {
	var logs testenv.Buffer
	g := &recorder{resp: func(r *Request) *Response {
		if string(r.Body) == "boom" {
			panic("secret payload " + string(r.Body))
		}
		return &Response{Body: []byte("fine")}
	}}
	ts := startServer(t, Config{Routes: testRoutes}, g, Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	c := ts.client(nil)
	url := ts.url("/acme/" + APIPathSegment + "/echo")
	resp, body := post(t, c, url, MediaTypePGP, strings.NewReader("boom"))
	if resp.StatusCode != 500 || len(body) != 0 {
		t.Fatalf("panic: status %d body %q", resp.StatusCode, body)
	}
	resp, body = post(t, c, url, MediaTypePGP, strings.NewReader("ok"))
	if resp.StatusCode != 200 || string(body) != "fine" {
		t.Fatalf("after panic: status %d body %q", resp.StatusCode, body)
	}
	out := logs.String()
	if !strings.Contains(out, "panic in handler") {
		t.Fatalf("panic not logged: %s", out)
	}
	if strings.Contains(out, "secret payload") {
		t.Fatal("panic value (request data) was logged")
	}
	if !strings.Contains(out, `"merchant":"acme"`) || !strings.Contains(out, `"status":500`) {
		t.Fatalf("access log lacks merchant/status: %s", out)
	}
}

func TestGatewayResponses(t *testing.T) {
	g := &recorder{resp: func(r *Request) *Response {
		switch r.Method {
		case "refund":
			return nil
		case "asynchronousRefund":
			return &Response{Status: 503, RetryAfter: 1500 * time.Millisecond}
		default:
			return &Response{Status: 400, ContentType: "application/jose", Body: []byte("err")}
		}
	}}
	ts := startServer(t, Config{Routes: testRoutes}, g, Options{})
	c := ts.client(nil)
	base := ts.url("/acme/" + APIPathSegment + "/")
	resp, _ := post(t, c, base+"refund", MediaTypeJOSE, strings.NewReader("x"))
	if resp.StatusCode != 500 {
		t.Fatalf("nil response: %d", resp.StatusCode)
	}
	resp, _ = post(t, c, base+"asynchronousRefund", MediaTypeJOSE, strings.NewReader("x"))
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "2" {
		t.Fatalf("503: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	resp, body := post(t, c, base+"echo", MediaTypeJOSE, strings.NewReader("x"))
	if resp.StatusCode != 400 || string(body) != "err" || resp.Header.Get("Content-Type") != "application/jose" {
		t.Fatalf("400: %d %q %q", resp.StatusCode, body, resp.Header.Get("Content-Type"))
	}
}

func TestHealthAndReadiness(t *testing.T) {
	var mu sync.Mutex
	var readyErr error
	ready := func(context.Context) error { mu.Lock(); defer mu.Unlock(); return readyErr }
	ts := startServer(t, Config{}, &recorder{}, Options{Ready: ready})
	c := ts.client(nil)
	get := func(path string) (int, string) {
		resp, err := c.Get(ts.url(path))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if s, _ := get("/healthz"); s != 200 {
		t.Fatalf("healthz %d", s)
	}
	if s, _ := get("/readyz"); s != 200 {
		t.Fatalf("readyz %d", s)
	}
	mu.Lock()
	readyErr = errors.New("db path /secret unreachable")
	mu.Unlock()
	s, body := get("/readyz")
	if s != 503 || strings.Contains(body, "secret") {
		t.Fatalf("readyz not ready: %d %q", s, body)
	}
	if s, _ := get("/healthz"); s != 200 {
		t.Fatalf("healthz while not ready %d", s)
	}
	resp, _ := post(t, c, ts.url("/healthz"), MediaTypeJOSE, strings.NewReader("x"))
	if resp.StatusCode == 200 {
		t.Fatal("POST /healthz answered 200")
	}
}

func TestGracefulShutdown(t *testing.T) {
	entered := make(chan struct{})
	finish := make(chan struct{})
	g := &recorder{resp: func(r *Request) *Response {
		close(entered)
		<-finish
		return &Response{Body: []byte("done")}
	}}
	ts := startServer(t, Config{Routes: testRoutes, ShutdownTimeout: 10 * time.Second}, g, Options{})
	c := ts.client(nil)
	type result struct {
		status int
		body   string
		err    error
	}
	res := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest("POST", ts.url("/acme/"+APIPathSegment+"/echo"), strings.NewReader("x"))
		req.Header.Set("Content-Type", MediaTypeJOSE)
		resp, err := c.Do(req)
		if err != nil {
			res <- result{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- result{status: resp.StatusCode, body: string(b)}
	}()
	<-entered
	ts.cancel() // begin shutdown while the request is in flight
	// Shutdown closes the listener promptly; new connections then fail.
	refused := false
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, err := ts.handshake(&tls.Config{}); err != nil {
			refused = true
			break
		}
	}
	if !refused {
		t.Error("new connections still accepted 5s into shutdown")
	}
	select {
	case err := <-ts.done:
		t.Fatalf("Serve returned %v before the in-flight request finished", err)
	default:
	}
	close(finish)
	r := <-res
	if r.err != nil || r.status != 200 || r.body != "done" {
		t.Fatalf("in-flight request: %+v", r)
	}
	select {
	case err := <-ts.done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
		close(ts.done)
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the request finished")
	}
}

func TestServerLimiterOption(t *testing.T) {
	entered := make(chan struct{}, 1)
	finish := make(chan struct{})
	g := &recorder{resp: func(r *Request) *Response {
		entered <- struct{}{}
		<-finish
		return &Response{Body: []byte("ok")}
	}}
	lim := NewLimiter(LimiterConfig{MaxInFlight: 1, MaxQueue: 0, MaxWait: 3 * time.Second})
	ts := startServer(t, Config{Routes: testRoutes}, g, Options{Limiter: lim})
	url := ts.url("/acme/" + APIPathSegment + "/echo")
	done := make(chan int, 1)
	go func() {
		resp, _ := post(t, ts.client(nil), url, MediaTypeJOSE, strings.NewReader("x"))
		done <- resp.StatusCode
	}()
	<-entered
	resp, _ := post(t, ts.client(nil), url, MediaTypeJOSE, strings.NewReader("x"))
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "3" {
		t.Fatalf("overloaded: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	close(finish)
	if s := <-done; s != 200 {
		t.Fatalf("first request %d", s)
	}
	if f, q := lim.Stats(); f != 0 || q != 0 {
		t.Fatalf("limiter leak: %d %d", f, q)
	}
}

func TestHeaderLimit(t *testing.T) {
	g := &recorder{}
	ts := startServer(t, Config{Routes: testRoutes, MaxHeaderBytes: 4096}, g, Options{})
	req, _ := http.NewRequest("POST", ts.url("/acme/"+APIPathSegment+"/echo"), strings.NewReader("x"))
	req.Header.Set("Content-Type", MediaTypeJOSE)
	req.Header.Set("X-Big", strings.Repeat("a", 16<<10))
	resp, err := ts.client(nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || g.count() != 0 {
		t.Fatalf("status %d, gateway calls %d", resp.StatusCode, g.count())
	}
}
