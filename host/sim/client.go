// Package sim plays Google against an otpcgate host: it seals OTPC v2
// requests with the simulated Google's keys, posts them over TLS, and opens
// and checks the answers (signature, ±60 s responseTimestamp, result union),
// and runs the scenario suites and the key-rotation drill against it. The
// other side, Google's own endpoints, is package googlesim. Tests,
// benchmarks and the `otpcgate sim` command use it.
package sim

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/otpcgate/otpcgate/host/envelope"
	"github.com/otpcgate/otpcgate/keystore"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// Message is what every OTPC v2 message type of sdk/otpc implements.
type Message = otpc.Message

// Target is one merchant integration as Google sees it.
type Target struct {
	// BaseURL is https://host:port{base path}.
	BaseURL string
	// PIAID goes into every request header.
	PIAID string
	// Codec is the integration's envelope.
	Codec envelope.Codec
	// Keyset holds Google's private keys as OwnerSelf and the integrator's
	// public keys as OwnerPeer (the gateway's roles swapped).
	Keyset func(ctx context.Context) (*keystore.Keyset, error)
}

// Client sends requests as Google would.
type Client struct {
	HTTP *http.Client
	// Now stamps requests and checks responses. Default time.Now.
	Now func() time.Time
	// Skew is the allowed responseTimestamp distance. Default 60 s.
	Skew time.Duration
}

// Result is the outcome of one call.
type Result struct {
	// Status is the HTTP status.
	Status int
	// Error is the opened ErrorResponse of a non-200 answer, if it had a
	// body that opened.
	Error *otpc.ErrorResponse
	// Plaintext is the opened response body.
	Plaintext []byte
	// Body is the raw HTTP body.
	Body []byte
	// RetryAfter is the Retry-After header, if any.
	RetryAfter string
}

// Member names the errorResponseResult member of a refused call, or "".
func (r *Result) Member() string {
	if r.Error == nil {
		return ""
	}
	return r.Error.ErrorResponseResult.Member()
}

// NewRequestID returns a fresh requestId in the spec's alphabet.
func NewRequestID() string {
	var b [15]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return "sim-" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// Header returns a request header for t with a fresh requestId.
func (c *Client) Header(t *Target) otpc.RequestHeader {
	return otpc.RequestHeader{
		RequestID:                  NewRequestID(),
		RequestTimestamp:           otpc.TimestampOf(c.now()),
		ProtocolVersion:            otpc.Version{Major: otpc.ProtocolMajor},
		PaymentIntegratorAccountID: t.PIAID,
	}
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// ErrBadResponse reports a 200 answer that failed Google's checks.
var ErrBadResponse = errors.New("sim: response failed checks")

// Call seals req, posts it to method and, for a 200, opens the answer into
// resp and checks it. A non-200 answer is not an error: see Result.
func (c *Client) Call(ctx context.Context, t *Target, method string, req, resp Message) (*Result, error) {
	return c.CallRaw(ctx, t, method, req.AppendJSON(nil), resp)
}

// CallRaw is Call with the plaintext given as bytes (for malformed input).
func (c *Client) CallRaw(ctx context.Context, t *Target, method string, plaintext []byte, resp Message) (*Result, error) {
	ks, err := t.Keyset(ctx)
	if err != nil {
		return nil, err
	}
	body, err := t.Codec.Seal(ctx, ks, plaintext)
	if err != nil {
		return nil, fmt.Errorf("sim: seal: %w", err)
	}
	return c.Post(ctx, t, method, body, resp)
}

// Post sends an already sealed (or deliberately broken) body.
func (c *Client) Post(ctx context.Context, t *Target, method string, body []byte, resp Message) (*Result, error) {
	url := strings.TrimSuffix(t.BaseURL, "/") + otpc.PathPrefix + method
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", t.Codec.ContentType())
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	hres, err := hc.Do(hr)
	if err != nil {
		return nil, err
	}
	defer hres.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(hres.Body, 4<<20))
	if err != nil {
		return nil, err
	}
	res := &Result{Status: hres.StatusCode, Body: raw, RetryAfter: hres.Header.Get("Retry-After")}
	if len(raw) == 0 {
		if res.Status == http.StatusOK {
			return res, fmt.Errorf("%w: empty 200 body", ErrBadResponse)
		}
		return res, nil
	}
	ks, err := t.Keyset(ctx)
	if err != nil {
		return res, err
	}
	opened, err := t.Codec.Open(ctx, ks, raw)
	if err != nil {
		if res.Status == http.StatusOK {
			return res, fmt.Errorf("%w: open: %w", ErrBadResponse, err)
		}
		return res, nil // e.g. a plain-text error from a proxy
	}
	res.Plaintext = opened.Plaintext
	if res.Status != http.StatusOK {
		var er otpc.ErrorResponse
		if err := er.UnmarshalJSON(opened.Plaintext); err != nil {
			return res, fmt.Errorf("%w: error body: %w", ErrBadResponse, err)
		}
		if err := c.checkTimestamp(er.ResponseHeader.ResponseTimestamp); err != nil {
			return res, err
		}
		res.Error = &er
		return res, nil
	}
	if resp == nil {
		return res, nil
	}
	if err := resp.UnmarshalJSON(opened.Plaintext); err != nil {
		return res, fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	if err := resp.Validate(); err != nil {
		return res, fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	var h responseHeaderOnly
	if err := h.UnmarshalJSON(opened.Plaintext); err != nil {
		return res, fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	return res, c.checkTimestamp(h.ResponseHeader.ResponseTimestamp)
}

func (c *Client) checkTimestamp(ts otpc.Timestamp) error {
	skew := c.Skew
	if skew <= 0 {
		skew = 60 * time.Second
	}
	d := c.now().Sub(ts.Time())
	if d > skew || d < -skew {
		return fmt.Errorf("%w: responseTimestamp %d is %s from now", ErrBadResponse, ts.EpochMillis, d)
	}
	return nil
}

// responseHeaderOnly reads just the header of any response; the echo
// response type serves since unknown fields are skipped and its other
// required field is not validated here.
type responseHeaderOnly struct{ otpc.EchoResponse }
