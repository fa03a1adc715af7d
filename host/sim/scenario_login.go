package sim

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

// WebLoginSession returns an AuthSessionFunc that authenticates as a user
// would, on the gateway's web login page (spec §8): it seals an
// AuthenticationRequest, submits account and password on the page at
// {merchant base URL}{pagePath} without a browser, and checks the sealed
// success it redirects with to callbackURL (not followed; it only has to
// be allowed by the gateway's callback allow-list). A gateway that does
// not serve the page (404) makes the step SKIP, saying so. It always logs
// in as account, whatever account the scenario asks for.
func WebLoginSession(c *Client, pagePath, callbackURL, account, password string) AuthSessionFunc {
	return func(ctx context.Context, m *Merchant, _ string) (string, error) {
		page := strings.TrimSuffix(m.Target.BaseURL, "/") + pagePath
		if served, err := pageServed(ctx, c, page); err != nil {
			return "", err
		} else if !served {
			return "", Skipped("the gateway serves no web login page at " + page)
		}
		req, err := c.NewAuthRequest(ctx, m.Target, page, callbackURL, AuthOptions{})
		if err != nil {
			return "", err
		}
		res, err := c.Login(ctx, req, account, password, false)
		if err != nil {
			return "", err
		}
		resp, err := c.OpenLoginResult(ctx, m.Target, req, res)
		if err != nil {
			return "", err
		}
		if resp.AuthenticationResult == nil || resp.AuthenticationResult.Success == nil {
			return "", fmt.Errorf("%w: login as %s did not succeed", ErrBadAuthResponse, account)
		}
		return req.Request.RequestID, nil
	}
}

// pageServed reports whether anything answers at page other than 404 (a
// login page without its parameters answers 400).
func pageServed(ctx context.Context, c *Client, page string) (bool, error) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, page, nil)
	if err != nil {
		return false, err
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	res, err := hc.Do(hr)
	if err != nil {
		return false, err
	}
	res.Body.Close()
	return res.StatusCode != http.StatusNotFound, nil
}
