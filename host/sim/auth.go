package sim

// This file plays Google's side of web-redirect authentication and account
// association (spec §8, §5.2): it seals an AuthenticationRequest, builds
// the URL Google sends the browser to, serves the callback the browser
// comes back to, opens and checks the AuthenticationResponse, and then
// associates a new payment token through Client.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"

	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// Query parameters of the redirect flow (spec §8).
const (
	ParamMajorVersion           = "gspMajorVersion"
	ParamAuthenticationRequest  = "gspAuthenticationRequest"
	ParamAssociationID          = "gspAssociationId"
	ParamCallbackURL            = "gspCallbackUrl"
	ParamResult                 = "gspResult"
	ParamAuthenticationResponse = "gspAuthenticationResponse"
)

// CallbackPath is where AuthCallback listens.
const CallbackPath = "/payments/auth-callback"

// AuthRequest is one sealed AuthenticationRequest and where Google would
// send the browser with it.
type AuthRequest struct {
	// Request is the plaintext that was sealed.
	Request otpc.AuthenticationRequest
	// Sealed is the gspAuthenticationRequest value.
	Sealed string
	// CallbackURL is the gspCallbackUrl value.
	CallbackURL string
	// URL is the login page URL with every parameter.
	URL string
}

// AuthOptions tune NewAuthRequest.
type AuthOptions struct {
	// AssociationID asks for re-authentication as that association's
	// account; it is sealed and also sent as gspAssociationId.
	AssociationID string
	// OmitPIAID leaves paymentIntegratorAccountId out of the request.
	OmitPIAID bool
}

// NewAuthRequest seals a fresh AuthenticationRequest for t with Google's
// keys and builds the redirect URL to pageURL.
func (c *Client) NewAuthRequest(ctx context.Context, t *Target, pageURL, callbackURL string, opt AuthOptions) (*AuthRequest, error) {
	req := otpc.AuthenticationRequest{RequestID: NewRequestID(), AssociationID: opt.AssociationID}
	if !opt.OmitPIAID {
		req.PaymentIntegratorAccountID = t.PIAID
	}
	sealed, err := c.SealAuth(ctx, t, req.AppendJSON(nil))
	if err != nil {
		return nil, err
	}
	return &AuthRequest{Request: req, Sealed: sealed, CallbackURL: callbackURL,
		URL: AuthURL(pageURL, sealed, callbackURL, opt.AssociationID)}, nil
}

// SealAuth seals any plaintext as a gspAuthenticationRequest value (for
// malformed or hand-made requests).
func (c *Client) SealAuth(ctx context.Context, t *Target, plaintext []byte) (string, error) {
	ks, err := t.Keyset(ctx)
	if err != nil {
		return "", err
	}
	b, err := t.Codec.Seal(ctx, ks, plaintext)
	if err != nil {
		return "", fmt.Errorf("sim: seal authentication request: %w", err)
	}
	return string(b), nil
}

// AuthURL builds the login page URL Google redirects the browser to.
func AuthURL(pageURL, sealed, callbackURL, associationID string) string {
	q := url.Values{}
	q.Set(ParamMajorVersion, strconv.Itoa(otpc.ProtocolMajor))
	q.Set(ParamAuthenticationRequest, sealed)
	q.Set(ParamCallbackURL, callbackURL)
	if associationID != "" {
		q.Set(ParamAssociationID, associationID)
	}
	return pageURL + "?" + q.Encode()
}

// ErrBadAuthResponse reports a callback whose AuthenticationResponse
// failed Google's checks.
var ErrBadAuthResponse = errors.New("sim: authentication response failed checks")

// OpenAuthResponse opens a gspAuthenticationResponse (the signature must be
// the integrator's) and checks it against gspResult and, if want is set,
// that it echoes want's requestId and associationId.
func (c *Client) OpenAuthResponse(ctx context.Context, t *Target, gspResult, sealed string, want *otpc.AuthenticationRequest) (*otpc.AuthenticationResponse, error) {
	ks, err := t.Keyset(ctx)
	if err != nil {
		return nil, err
	}
	opened, err := t.Codec.Open(ctx, ks, []byte(sealed))
	if err != nil {
		return nil, fmt.Errorf("%w: open: %w", ErrBadAuthResponse, err)
	}
	var resp otpc.AuthenticationResponse
	if err := resp.UnmarshalJSON(opened.Plaintext); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadAuthResponse, err)
	}
	if err := resp.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadAuthResponse, err)
	}
	r := resp.AuthenticationResult
	wantCode := 0
	switch {
	case r == nil:
		return nil, fmt.Errorf("%w: no authenticationResult", ErrBadAuthResponse)
	case r.Success != nil:
		wantCode = otpc.GSPResultSuccess
	case r.Cancelled != nil:
		wantCode = otpc.GSPResultUserCancelled
	case r.FatalError != nil:
		wantCode = otpc.GSPResultFatalError
	}
	if gspResult != strconv.Itoa(wantCode) {
		return nil, fmt.Errorf("%w: gspResult %q but authenticationResult says %d", ErrBadAuthResponse, gspResult, wantCode)
	}
	if want != nil && (resp.RequestID != want.RequestID || resp.AssociationID != want.AssociationID) {
		return nil, fmt.Errorf("%w: echoes requestId %q associationId %q, want %q %q", ErrBadAuthResponse,
			resp.RequestID, resp.AssociationID, want.RequestID, want.AssociationID)
	}
	return &resp, nil
}

// AuthCallbackHit is one browser arrival at the callback.
type AuthCallbackHit struct {
	// Result is the gspResult parameter as sent.
	Result string
	// Response is the opened, checked AuthenticationResponse; nil if Err.
	Response *otpc.AuthenticationResponse
	// Err is why the arrival failed Google's checks.
	Err error
}

// AuthCallback is the simulated Google's callback endpoint: an HTTPS
// server on loopback that opens and records what browsers bring back.
type AuthCallback struct {
	// Server is the TLS server; its certificate is Server.Certificate().
	Server *httptest.Server
	// URL is the callback URL to send as gspCallbackUrl.
	URL string

	client *Client
	target *Target
	mu     sync.Mutex
	hits   []AuthCallbackHit
	notify chan struct{}
}

// NewAuthCallback starts a callback endpoint for t. Close it when done.
func NewAuthCallback(c *Client, t *Target) *AuthCallback {
	cb := &AuthCallback{client: c, target: t, notify: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+CallbackPath, cb.serve)
	cb.Server = httptest.NewTLSServer(mux)
	cb.URL = cb.Server.URL + CallbackPath
	return cb
}

// Close stops the server.
func (cb *AuthCallback) Close() { cb.Server.Close() }

func (cb *AuthCallback) serve(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	hit := AuthCallbackHit{Result: q.Get(ParamResult)}
	hit.Response, hit.Err = cb.client.OpenAuthResponse(r.Context(), cb.target, hit.Result, q.Get(ParamAuthenticationResponse), nil)
	cb.mu.Lock()
	cb.hits = append(cb.hits, hit)
	close(cb.notify)
	cb.notify = make(chan struct{})
	cb.mu.Unlock()
	status, requestID := "ok", ""
	if hit.Err != nil {
		status = "rejected"
	} else {
		requestID = hit.Response.RequestID
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintf(w, `<!doctype html><title>Simulated Google</title><h1>Back at the simulated Google</h1>`+
		`<p>gspResult <span id="gsp-result">%s</span>, check <span id="gsp-check">%s</span>, requestId <span id="gsp-request">%s</span></p>`,
		html.EscapeString(hit.Result), status, html.EscapeString(requestID))
}

// Hits returns every arrival so far.
func (cb *AuthCallback) Hits() []AuthCallbackHit {
	cb.mu.Lock()
	defer cb.mu.Unlock()
	return append([]AuthCallbackHit(nil), cb.hits...)
}

// Wait returns the first arrival whose response echoes want's requestId,
// and checks that it also echoes its associationId.
func (cb *AuthCallback) Wait(ctx context.Context, want *otpc.AuthenticationRequest) (AuthCallbackHit, error) {
	for {
		cb.mu.Lock()
		ch := cb.notify
		for _, h := range cb.hits {
			if h.Response != nil && h.Response.RequestID == want.RequestID {
				cb.mu.Unlock()
				if h.Response.AssociationID != want.AssociationID {
					return h, fmt.Errorf("%w: associationId %q, want %q", ErrBadAuthResponse, h.Response.AssociationID, want.AssociationID)
				}
				return h, nil
			}
		}
		cb.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return AuthCallbackHit{}, fmt.Errorf("sim: no callback for %s: %w", want.RequestID, ctx.Err())
		}
	}
}

// Association is a payment token Google bound with associateAccount.
type Association struct {
	AssociationID string
	IssuerID      string
	Token         string
	// Response is the opened associateAccount response.
	Response otpc.AssociateAccountResponse
}

// Associate calls associateAccount for a finished authentication with a
// fresh association id and payment token.
func (c *Client) Associate(ctx context.Context, t *Target, authRequestID string) (*Association, *Result, error) {
	a := &Association{AssociationID: "sim-assoc-" + randomToken(12), IssuerID: "sim-issuer", Token: randomToken(24)}
	req := &otpc.AssociateAccountRequest{
		RequestHeader:           c.Header(t),
		GooglePaymentToken:      otpc.GooglePaymentToken{IssuerID: otpc.IssuerID{Value: a.IssuerID}, Token: a.Token},
		AuthenticationRequestID: authRequestID,
		AssociationID:           a.AssociationID,
		ProvideUserInformation:  true,
	}
	res, err := c.Call(ctx, t, otpc.MethodAssociateAccount, req, &a.Response)
	return a, res, err
}

// Generate calls generateReferenceNumber for an associated token.
func (c *Client) Generate(ctx context.Context, t *Target, a *Association, amount otpc.Amount) (*otpc.GenerateReferenceNumberResponse, *Result, error) {
	req := &otpc.GenerateReferenceNumberRequest{
		RequestHeader:          c.Header(t),
		GooglePaymentToken:     otpc.GooglePaymentToken{IssuerID: otpc.IssuerID{Value: a.IssuerID}, Token: a.Token},
		TransactionDescription: "Google - simulated purchase",
		Amount:                 amount,
	}
	var resp otpc.GenerateReferenceNumberResponse
	res, err := c.Call(ctx, t, otpc.MethodGenerateReferenceNumber, req, &resp)
	return &resp, res, err
}

// randomToken returns n random bytes, base64url.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails since Go 1.24
	return base64.RawURLEncoding.EncodeToString(b)
}
