package sim

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"

	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// LoginResult is how otpcgate's login page answered a submitted form.
type LoginResult struct {
	// Status is the HTTP status of the answer to the POST.
	Status int
	// Callback is the redirect target (gspCallbackUrl with gspResult and
	// gspAuthenticationResponse); nil when the page answered with a page.
	Callback *url.URL
	// ErrorText is the message the page showed, if it showed one.
	ErrorText string
}

// ErrNoLoginForm reports a login page that showed no form (an error page:
// see the error's text).
var ErrNoLoginForm = errors.New("sim: login page shows no form")

// Markup of otpcgate's login page (host/weblogin) that a user's browser
// acts on.
var (
	loginHiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
	loginActionRE = regexp.MustCompile(`<form method="post" action="([^"]*)">`)
	loginErrorRE  = regexp.MustCompile(`<p class="error" id="error" role="alert">([^<]*)</p>`)
)

// Login plays the user on otpcgate's login page without a browser (for
// `otpcgate sim` and smoke tests): it opens req.URL with c.HTTP's
// transport and a fresh cookie jar, fills in account and password, or
// presses cancel, submits, and reports where the page sent the browser.
// The redirect is not followed; open it with OpenAuthResponse.
func (c *Client) Login(ctx context.Context, req *AuthRequest, account, password string, cancel bool) (*LoginResult, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if c.HTTP != nil {
		hc.Transport, hc.Timeout = c.HTTP.Transport, c.HTTP.Timeout
	}
	status, body, pageURL, err := loginDo(ctx, hc, http.MethodGet, req.URL, nil)
	if err != nil {
		return nil, err
	}
	m := loginActionRE.FindStringSubmatch(body)
	if m == nil {
		return nil, fmt.Errorf("%w: status %d: %q", ErrNoLoginForm, status, loginErrorText(body))
	}
	action, err := pageURL.Parse(html.UnescapeString(m[1]))
	if err != nil {
		return nil, fmt.Errorf("sim: login form action: %w", err)
	}
	form := url.Values{}
	for _, h := range loginHiddenRE.FindAllStringSubmatch(body, -1) {
		form.Set(h[1], html.UnescapeString(h[2]))
	}
	if cancel {
		form.Set("action", "cancel")
	} else {
		form.Set("action", "login")
		form.Set("account", account)
		form.Set("password", password)
	}
	status, body, _, err = loginDo(ctx, hc, http.MethodPost, action.String(), form)
	if err != nil {
		return nil, err
	}
	res := &LoginResult{Status: status, ErrorText: loginErrorText(body)}
	if status == http.StatusSeeOther {
		// loginDo returned the Location as the body of a redirect.
		if res.Callback, err = url.Parse(body); err != nil {
			return res, fmt.Errorf("sim: login redirect: %w", err)
		}
		res.ErrorText = ""
	}
	return res, nil
}

// loginDo sends one request; for a redirect it returns the Location in
// place of the body.
func loginDo(ctx context.Context, hc *http.Client, method, u string, form url.Values) (int, string, *url.URL, error) {
	var rd io.Reader
	if form != nil {
		rd = strings.NewReader(form.Encode())
	}
	hr, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, "", nil, err
	}
	if form != nil {
		hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := hc.Do(hr)
	if err != nil {
		return 0, "", nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return 0, "", nil, err
	}
	if res.StatusCode >= 300 && res.StatusCode < 400 {
		return res.StatusCode, res.Header.Get("Location"), hr.URL, nil
	}
	return res.StatusCode, string(b), hr.URL, nil
}

func loginErrorText(body string) string {
	if m := loginErrorRE.FindStringSubmatch(body); m != nil {
		return html.UnescapeString(m[1])
	}
	return ""
}

// OpenLoginResult checks that a LoginResult redirected to req's callback
// and opens and checks the sealed response it carries.
func (c *Client) OpenLoginResult(ctx context.Context, t *Target, req *AuthRequest, res *LoginResult) (*otpc.AuthenticationResponse, error) {
	if res.Callback == nil {
		return nil, fmt.Errorf("%w: no redirect (status %d, page says %q)", ErrBadAuthResponse, res.Status, res.ErrorText)
	}
	want, err := url.Parse(req.CallbackURL)
	if err != nil {
		return nil, err
	}
	got := res.Callback
	if got.Scheme != want.Scheme || got.Host != want.Host || got.Path != want.Path {
		return nil, fmt.Errorf("%w: redirected to %s://%s%s, not the callback", ErrBadAuthResponse, got.Scheme, got.Host, got.Path)
	}
	q := got.Query()
	return c.OpenAuthResponse(ctx, t, q.Get(ParamResult), q.Get(ParamAuthenticationResponse), &req.Request)
}
