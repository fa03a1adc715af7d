package weblogin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/otpcgate/otpcgate/host/ledger"
	"github.com/otpcgate/otpcgate/host/plugincall"
	"github.com/otpcgate/otpcgate/host/protocol"
	"github.com/otpcgate/otpcgate/keystore"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// Ledger AuthSession results written by the page. associateAccount accepts
// only ResultSuccess.
const (
	ResultSuccess   = protocol.AuthSuccess
	ResultCancelled = "cancelled"
	ResultDeclined  = "declined"
)

// Input limits of the form.
const (
	maxBodyBytes    = 16 << 10
	maxAccountBytes = 128
	maxSecretBytes  = 256
)

// Service serves the login page of every merchant. It is safe for
// concurrent use.
type Service struct {
	cfg     Config
	ledger  *ledger.Ledger
	plugins Plugins
	log     *slog.Logger
	allow   map[string][]prefix
}

// New builds a Service that records sessions in l and checks credentials
// with plugins.
func New(cfg Config, l *ledger.Ledger, plugins Plugins) (*Service, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if l == nil || plugins == nil {
		return nil, fmt.Errorf("%w: ledger and plugins are required", ErrConfig)
	}
	s := &Service{cfg: cfg, ledger: l, plugins: plugins, log: cfg.Logger, allow: map[string][]prefix{}}
	for id, raws := range cfg.Callbacks {
		for _, raw := range raws {
			p, err := parsePrefix(raw)
			if err != nil {
				return nil, err
			}
			s.allow[id] = append(s.allow[id], p)
		}
	}
	return s, nil
}

// Path is the page's path below a merchant's base path.
func (s *Service) Path() string { return s.cfg.Path }

// Handler serves m's page (GET shows the form, POST submits it) at
// whatever path the caller routes to it.
func (s *Service) Handler(m *Merchant) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.serve(w, r, m) })
}

// Middleware serves {base path}{Path()} for every merchant dir knows and
// passes every other request on. Added with Echo's Use, it runs after the
// server's request id, access log and panic recovery.
func (s *Service) Middleware(dir Directory) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if r.URL.RawPath != "" || !strings.HasSuffix(r.URL.Path, s.cfg.Path) {
				return next(c)
			}
			m, err := dir.LoginMerchant(r.Context(), strings.TrimSuffix(r.URL.Path, s.cfg.Path))
			if errors.Is(err, ErrUnknownMerchant) {
				return next(c)
			}
			if err != nil {
				s.log.ErrorContext(r.Context(), "weblogin: merchant lookup failed", "error", err)
				render(c.Response(), http.StatusServiceUnavailable, pageData{Merchant: "Sign in", Message: MsgUnavailable}, "")
				return nil
			}
			s.serve(c.Response(), r, m)
			return nil
		}
	}
}

// Messages the page shows (exported so tests and operators can match
// them). They say what to do, never why a check failed in detail.
const (
	MsgTooLong     = "This sign-in link is too long (more than 2,048 characters) and cannot be used."
	MsgIncomplete  = "This sign-in link is incomplete or was changed. Start again from Google."
	MsgVersion     = "This sign-in link uses an unsupported version. Start again from Google."
	MsgCallback    = "This sign-in link asks to return to an address that is not allowed. Nothing was sent."
	MsgUnverified  = "This sign-in link could not be verified. It may have been changed. Start again from Google."
	MsgUsed        = "This sign-in link was already used. Start again from Google."
	MsgUnavailable = "Sign-in is temporarily unavailable. Try again in a few minutes."
	MsgForm        = "This form expired or was not opened here. Start again from Google."
	MsgDisabled    = "Sign-in is not available for this merchant."
	MsgWrong       = "The account ID or password is not right."
	MsgRefused     = "This account cannot be linked here. Cancel, or contact the merchant."
	MsgLocked      = "Too many failed attempts. Sign-in is locked for a while; try again later or cancel."
	MsgIPLimited   = "Too many attempts from your network. Try again later or cancel."
	MsgMissing     = "Enter your account ID and password."
)

// pageErr is a refusal shown as an error page.
type pageErr struct {
	status int
	msg    string
	why    string // for the log
}

// flow is a verified request, ready to show or finish.
type flow struct {
	m        *Merchant
	ks       *keystore.Keyset
	req      otpc.AuthenticationRequest
	piaid    string
	callback *url.URL
	origin   string
	hidden   []hidden
}

func (s *Service) serve(w http.ResponseWriter, r *http.Request, m *Merchant) {
	defer func() {
		// Parsing untrusted input below: no panic escapes, and its value
		// (which may hold request data) is not logged.
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.ErrorContext(r.Context(), "weblogin: panic", "merchant", m.ID, "panic_type", fmt.Sprintf("%T", v))
			render(w, http.StatusInternalServerError, pageData{Merchant: "Sign in", Message: MsgUnavailable}, "")
		}
	}()
	name := m.Name
	if name == "" {
		name = m.ID
	}
	fail := func(e *pageErr) {
		s.log.WarnContext(r.Context(), "weblogin: refused", "merchant", m.ID, "status", e.status, "reason", e.why,
			"ip", clientIP(r))
		render(w, e.status, pageData{Merchant: name, Message: e.msg}, "")
	}
	if len(r.RequestURI) > s.cfg.MaxURLBytes {
		fail(&pageErr{http.StatusRequestURITooLong, MsgTooLong, "url too long"})
		return
	}
	if m.Disabled {
		fail(&pageErr{http.StatusServiceUnavailable, MsgDisabled, "merchant disabled"})
		return
	}
	switch r.Method {
	case http.MethodGet:
		f, perr := s.prepare(r.Context(), m, r.URL.Query())
		if perr != nil {
			fail(perr)
			return
		}
		s.showForm(w, r, f, name, http.StatusOK, "", "", false)
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		if err := r.ParseForm(); err != nil {
			fail(&pageErr{http.StatusBadRequest, MsgIncomplete, "unreadable form"})
			return
		}
		f, perr := s.prepare(r.Context(), m, r.PostForm)
		if perr != nil {
			fail(perr)
			return
		}
		var cookie string
		if c, err := r.Cookie(cookieName(f.req.RequestID)); err == nil {
			cookie = c.Value
		}
		if err := checkCSRF(s.cfg.Secret, m.ID, f.req.RequestID, r.PostForm.Get(fieldCSRF), cookie, s.cfg.Now()); err != nil {
			fail(&pageErr{http.StatusForbidden, MsgForm, "csrf token"})
			return
		}
		s.submit(w, r, f, name)
	default:
		w.Header().Set("Allow", "GET, POST")
		fail(&pageErr{http.StatusMethodNotAllowed, MsgIncomplete, "method " + r.Method})
	}
}

// single returns the one value of name, or false if it is missing or
// repeated (a repeated parameter is ambiguous, so refused).
func single(vals url.Values, name string) (string, bool) {
	v := vals[name]
	if len(v) != 1 || v[0] == "" {
		return "", false
	}
	return v[0], true
}

// prepare checks Google's parameters (from the query on GET, the hidden
// fields on POST) and opens the sealed request.
func (s *Service) prepare(ctx context.Context, m *Merchant, vals url.Values) (*flow, *pageErr) {
	version, ok1 := single(vals, paramVersion)
	sealed, ok2 := single(vals, paramRequest)
	cb, ok3 := single(vals, paramCallback)
	if !ok1 || !ok2 || !ok3 || len(vals[paramAssociation]) > 1 {
		return nil, &pageErr{http.StatusBadRequest, MsgIncomplete, "missing or repeated parameter"}
	}
	if version != strconv.Itoa(otpc.ProtocolMajor) {
		return nil, &pageErr{http.StatusBadRequest, MsgVersion, "gspMajorVersion"}
	}
	f := &flow{m: m}
	u, err := s.checkCallback(m.ID, cb)
	if err != nil {
		return nil, &pageErr{http.StatusBadRequest, MsgCallback, err.Error()}
	}
	f.callback, f.origin = u, "https://"+u.Host
	if f.ks, err = m.Keyset(ctx); err != nil {
		s.log.ErrorContext(ctx, "weblogin: keyset", "merchant", m.ID, "error", err)
		return nil, &pageErr{http.StatusServiceUnavailable, MsgUnavailable, "keyset unavailable"}
	}
	opened, err := m.Codec.Open(ctx, f.ks, []byte(sealed))
	if err != nil {
		return nil, &pageErr{http.StatusBadRequest, MsgUnverified, "open: " + err.Error()}
	}
	if err := f.req.UnmarshalJSON(opened.Plaintext); err != nil {
		return nil, &pageErr{http.StatusBadRequest, MsgUnverified, "request json: " + err.Error()}
	}
	if err := f.req.Validate(); err != nil {
		return nil, &pageErr{http.StatusBadRequest, MsgUnverified, "request invalid: " + err.Error()}
	}
	// The query's association id is unprotected: it may only repeat the
	// sealed one.
	if a := vals.Get(paramAssociation); a != "" && a != f.req.AssociationID {
		return nil, &pageErr{http.StatusBadRequest, MsgIncomplete, "gspAssociationId differs from the sealed request"}
	}
	if f.piaid, err = pickPIAID(m, f.req.PaymentIntegratorAccountID); err != nil {
		return nil, &pageErr{http.StatusBadRequest, MsgUnverified, err.Error()}
	}
	switch _, err := s.ledger.AuthSession(ctx, f.req.RequestID); {
	case err == nil:
		return nil, &pageErr{http.StatusConflict, MsgUsed, "requestId already finished"}
	case !errors.Is(err, ledger.ErrNotFound):
		s.log.ErrorContext(ctx, "weblogin: ledger", "merchant", m.ID, "error", err)
		return nil, &pageErr{http.StatusServiceUnavailable, MsgUnavailable, "ledger unavailable"}
	}
	f.hidden = []hidden{{paramVersion, version}, {paramRequest, sealed}, {paramCallback, cb}}
	if a := vals.Get(paramAssociation); a != "" {
		f.hidden = append(f.hidden, hidden{paramAssociation, a})
	}
	return f, nil
}

// checkCallback parses gspCallbackUrl and matches it against the allow-list.
func (s *Service) checkCallback(merchantID, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("callback does not parse")
	}
	if u.Scheme != "https" || u.Host == "" || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return nil, errors.New("callback is not a plain https URL")
	}
	// Browsers resolve dot segments, and some servers decode %2F, %2E and
	// backslashes: a path that is not already clean could leave the
	// allowed prefix after the check.
	ep := strings.ToLower(u.EscapedPath())
	clean := path.Clean("/" + u.Path)
	if strings.HasSuffix(u.Path, "/") && clean != "/" {
		clean += "/"
	}
	if clean != u.Path && u.Path != "" || strings.ContainsAny(u.Path, "\\") ||
		strings.Contains(ep, "%2f") || strings.Contains(ep, "%2e") || strings.Contains(ep, "%5c") {
		return nil, errors.New("callback path is not clean")
	}
	for _, key := range []string{merchantID, AllMerchants} {
		for _, p := range s.allow[key] {
			if p.allows(u) {
				return u, nil
			}
		}
	}
	return nil, errors.New("callback not in the allow-list")
}

// pickPIAID resolves the PIAID the session is recorded under.
func pickPIAID(m *Merchant, named string) (string, error) {
	if named != "" {
		for _, p := range m.PIAIDs {
			if p == named {
				return p, nil
			}
		}
		return "", errors.New("request names another merchant's PIAID")
	}
	if len(m.PIAIDs) != 1 {
		return "", errors.New("request names no PIAID and the merchant has several")
	}
	return m.PIAIDs[0], nil
}

func (s *Service) showForm(w http.ResponseWriter, r *http.Request, f *flow, name string, status int, account, msg string, locked bool) {
	expires := s.cfg.Now().Add(s.cfg.FormTTL)
	token := csrfToken(s.cfg.Secret, f.m.ID, f.req.RequestID, expires)
	http.SetCookie(w, &http.Cookie{
		Name: cookieName(f.req.RequestID), Value: token, Path: "/", MaxAge: int(s.cfg.FormTTL.Seconds()),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
	d := pageData{Merchant: name, Form: true, Action: r.URL.EscapedPath(), Account: account, Error: msg, Locked: locked,
		Hidden: append(f.hidden, hidden{fieldCSRF, token})}
	render(w, status, d, f.origin)
}

// submit handles a verified POST: cancel or login.
func (s *Service) submit(w http.ResponseWriter, r *http.Request, f *flow, name string) {
	ctx := r.Context()
	ip := clientIP(r)
	switch r.PostForm.Get(fieldAction) {
	case "cancel":
		s.finish(w, r, f, name, ResultCancelled, "", plugincall.Changes{})
		return
	case "login":
	default:
		render(w, http.StatusBadRequest, pageData{Merchant: name, Message: MsgIncomplete}, "")
		return
	}
	account := strings.TrimSpace(r.PostForm.Get(fieldAccount))
	secret := r.PostForm.Get(fieldPassword)
	if account == "" || secret == "" || len(account) > maxAccountBytes || len(secret) > maxSecretBytes ||
		!utf8.ValidString(account) || !utf8.ValidString(secret) {
		s.showForm(w, r, f, name, http.StatusBadRequest, "", MsgMissing, false)
		return
	}
	now := s.cfg.Now()
	acctKey := lockoutKey(f.m.ID, account)
	logAttrs := []any{"merchant", f.m.ID, "request_id", f.req.RequestID, "account", accountHash(f.m.ID, account), "ip", ip}
	// unavailable answers a failure of ours (ledger, plugin): 503, try later.
	unavailable := func(what string, err error) {
		s.log.ErrorContext(ctx, "weblogin: "+what, append(logAttrs, "error", err)...)
		s.showForm(w, r, f, name, http.StatusServiceUnavailable, account, MsgUnavailable, false)
	}
	// The per-address limit and account lockouts live in the ledger: they
	// survive a restart, are shared by every host, and no flood of other
	// names or addresses can wipe them. Every attempt from an address
	// counts, in a window opened by its first.
	var ipAttempts ledger.LoginFailures
	if err := s.ledger.Apply(ctx, func(tx *ledger.Tx) (err error) {
		ipAttempts, err = tx.AddLoginFailure(ipLimitScope, ipKey(ip), now, s.cfg.IPWindow)
		return err
	}); err != nil {
		unavailable("ledger", err)
		return
	}
	if ipAttempts.Failures > s.cfg.IPMaxAttempts {
		s.log.WarnContext(ctx, "weblogin: ip rate limited", logAttrs...)
		s.showForm(w, r, f, name, http.StatusTooManyRequests, account, MsgIPLimited, true)
		return
	}
	fails, err := s.ledger.LoginFailures(ctx, f.m.ID, acctKey, now)
	if err != nil {
		unavailable("ledger", err)
		return
	}
	if fails.Failures >= s.cfg.AccountMaxFailures {
		s.log.WarnContext(ctx, "weblogin: account locked", logAttrs...)
		s.showForm(w, r, f, name, http.StatusTooManyRequests, account, MsgLocked, true)
		return
	}
	out, cs, err := s.authenticate(ctx, f, account, secret)
	var ref *otpc.Refusal
	if errors.As(err, &ref) {
		// The merchant's rule says this sign-in cannot proceed: an answer,
		// not an outage, so no "try again later".
		s.log.WarnContext(ctx, "weblogin: plugin refused", append(logAttrs, "member", ref.Member())...)
		s.showForm(w, r, f, name, ref.Result.HTTPStatus(), account, MsgRefused, false)
		return
	}
	if err != nil {
		unavailable("plugin failed", err)
		return
	}
	if !out.Authenticated || out.AccountID == "" {
		var got ledger.LoginFailures
		if err := s.ledger.Apply(ctx, func(tx *ledger.Tx) (err error) {
			got, err = tx.AddLoginFailure(f.m.ID, acctKey, now, s.cfg.AccountLockout)
			return err
		}); err != nil {
			// A failure that cannot be counted must not be retried freely.
			unavailable("ledger", err)
			return
		}
		locked := got.Failures >= s.cfg.AccountMaxFailures
		s.log.InfoContext(ctx, "weblogin: login failed", append(logAttrs, "locked", locked)...)
		if locked {
			s.showForm(w, r, f, name, http.StatusTooManyRequests, account, MsgLocked, true)
			return
		}
		s.showForm(w, r, f, name, http.StatusUnauthorized, account, MsgWrong, false)
		return
	}
	if fails.Failures > 0 {
		if err := s.ledger.Apply(ctx, func(tx *ledger.Tx) error { return tx.ClearLoginFailures(f.m.ID, acctKey) }); err != nil {
			unavailable("ledger", err)
			return
		}
	}
	if f.req.AssociationID != "" {
		// Re-authentication: the user must be the account bound to the
		// association (spec §8), otherwise the flow fails for good.
		a, err := s.ledger.Association(ctx, f.piaid, f.req.AssociationID)
		if err != nil && !errors.Is(err, ledger.ErrNotFound) {
			unavailable("ledger", err)
			return
		}
		if err != nil || a.AccountID != out.AccountID {
			s.log.WarnContext(ctx, "weblogin: account does not match the association", logAttrs...)
			s.finish(w, r, f, name, ResultDeclined, out.AccountID, cs)
			return
		}
	}
	s.finish(w, r, f, name, ResultSuccess, out.AccountID, cs)
}

// authenticate asks the merchant's plugin to check the credentials.
func (s *Service) authenticate(ctx context.Context, f *flow, account, secret string) (*otpc.AuthenticateOutput, plugincall.Changes, error) {
	in := &otpc.AuthenticateInput{AccountID: account, Secret: secret, AssociationID: f.req.AssociationID}
	var out otpc.AuthenticateOutput
	// plugincall zeroes the encoded input after the call: the secret does
	// not linger in a buffer the host owns.
	cs, err := s.plugins.Call(ctx, plugincall.Target{Merchant: f.m.ID, Plugin: f.m.PluginID}, otpc.OpAuthenticate, s.cfg.Now(), in, &out)
	if err != nil {
		return nil, cs, fmt.Errorf("weblogin: authenticate: %w", err)
	}
	return &out, cs, nil
}

// finish records the outcome and sends the browser back to Google.
func (s *Service) finish(w http.ResponseWriter, r *http.Request, f *flow, name, result, accountID string, cs plugincall.Changes) {
	ctx := r.Context()
	resp := &otpc.AuthenticationResponse{RequestID: f.req.RequestID, AssociationID: f.req.AssociationID,
		AuthenticationResult: &otpc.AuthenticationResult{}}
	code := otpc.GSPResultFatalError
	switch result {
	case ResultSuccess:
		resp.AuthenticationResult.Success, code = &otpc.Empty{}, otpc.GSPResultSuccess
	case ResultCancelled:
		resp.AuthenticationResult.Cancelled, code = &otpc.Empty{}, otpc.GSPResultUserCancelled
	default:
		resp.AuthenticationResult.FatalError = &otpc.Empty{}
	}
	attrs := []any{"merchant", f.m.ID, "request_id", f.req.RequestID, "result", result, "gsp_result", code, "ip", clientIP(r)}
	sealed, err := f.m.Codec.Seal(ctx, f.ks, resp.AppendJSON(nil))
	if err != nil {
		s.log.ErrorContext(ctx, "weblogin: seal response", append(attrs, "error", err)...)
		render(w, http.StatusServiceUnavailable, pageData{Merchant: name, Message: MsgUnavailable}, "")
		return
	}
	err = s.ledger.Apply(ctx, func(tx *ledger.Tx) error {
		if err := tx.SaveAuthSession(ledger.AuthSession{AuthRequestID: f.req.RequestID, PIAID: f.piaid,
			AccountID: accountID, Result: result}); err != nil {
			return err
		}
		return cs.Apply(tx)
	})
	if errors.Is(err, ledger.ErrDuplicate) {
		// A concurrent submission of the same request won.
		s.log.WarnContext(ctx, "weblogin: refused", append(attrs, "reason", "requestId already finished")...)
		render(w, http.StatusConflict, pageData{Merchant: name, Message: MsgUsed}, "")
		return
	}
	if err != nil {
		s.log.ErrorContext(ctx, "weblogin: record session", append(attrs, "error", err)...)
		render(w, http.StatusServiceUnavailable, pageData{Merchant: name, Message: MsgUnavailable}, "")
		return
	}
	s.log.InfoContext(ctx, "weblogin: finished", attrs...)
	target := *f.callback
	q := target.Query()
	q.Set(paramResult, strconv.Itoa(code))
	q.Set(paramResponse, string(sealed))
	target.RawQuery = q.Encode()
	http.SetCookie(w, &http.Cookie{Name: cookieName(f.req.RequestID), Value: "", Path: "/", MaxAge: -1,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	setHeaders(w.Header(), newNonce(), f.origin)
	w.Header().Set("Location", target.String())
	w.WriteHeader(http.StatusSeeOther)
}

// clientIP is the limiter key of the peer: its address, or its /64 for
// IPv6 (one host usually owns a whole /64). Proxy headers are not trusted.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// accountHash names an account in logs without revealing it.
// lockoutKey is how the ledger knows an account's failed sign-ins: a hash,
// so the table holds no account names.
// ipLimitScope is the merchant id under which the ledger's login_failures
// table counts attempts per client address: no merchant has an empty id,
// and the limit is the host's, across merchants.
const ipLimitScope = ""

// ipKey is the ledger key of a client address (a hash: the table holds
// no addresses).
func ipKey(ip string) string {
	h := sha256.Sum256([]byte("otpcgate weblogin ip\x00" + ip))
	return "ip:" + hex.EncodeToString(h[:])
}

func lockoutKey(merchant, account string) string {
	h := sha256.Sum256([]byte("otpcgate weblogin lockout\x00" + merchant + "\x00" + account))
	return hex.EncodeToString(h[:])
}

func accountHash(merchant, account string) string {
	h := sha256.Sum256([]byte("otpcgate weblogin account\x00" + merchant + "\x00" + account))
	return hex.EncodeToString(h[:6])
}
