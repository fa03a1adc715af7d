package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Client calls the admin API (the otpcgate CLI uses it).
type Client struct {
	// BaseURL is e.g. "http://127.0.0.1:8444".
	BaseURL string
	// Token is the bearer token; never logged.
	Token string
	HTTP  *http.Client
}

// APIError is an error answer of the API.
type APIError struct {
	Status int
	Msg    string
	Hint   string
}

// Error formats the error with the hint, the next step to take.
func (e *APIError) Error() string {
	s := fmt.Sprintf("%s (HTTP %d)", e.Msg, e.Status)
	if e.Hint != "" {
		s += "\n  next: " + e.Hint
	}
	return s
}

// Do sends a request with an optional JSON body (or an io.Reader sent as
// is) and decodes a JSON answer into out (or copies it when out is a
// *[]byte).
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case io.Reader:
		rd, ct = b, "application/json"
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			return err
		}
		rd, ct = bytes.NewReader(buf), "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, rd)
	if err != nil {
		return err
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("admin API unreachable: %w\n  next: is the gateway running with admin.addr set? check --admin-url", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var ae apiError
		if json.Unmarshal(data, &ae) != nil || ae.Error == "" {
			ae.Error = http.StatusText(resp.StatusCode)
		}
		return &APIError{Status: resp.StatusCode, Msg: ae.Error, Hint: ae.Hint}
	}
	switch o := out.(type) {
	case nil:
		return nil
	case *[]byte:
		*o = data
		return nil
	default:
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("admin API answer: %w", err)
		}
		return nil
	}
}

// MerchantPath returns /v1/merchants/{id} plus more path elements, escaped.
func MerchantPath(id string, elems ...string) string {
	p := "/v1/merchants/" + url.PathEscape(id)
	for _, e := range elems {
		p += "/" + url.PathEscape(e)
	}
	return p
}
