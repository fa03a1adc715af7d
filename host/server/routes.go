package server

import (
	"errors"
	"fmt"
	"strings"
)

// ErrBadRoute is returned for an invalid or duplicate Route.
var ErrBadRoute = errors.New("server: bad route")

// NormalizeBasePath validates a base path and returns its canonical form
// ("/" becomes ""; the result has no trailing slash).
func NormalizeBasePath(p string) (string, error) {
	if p == "" || p == "/" {
		return "", nil
	}
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("%w: base path %q must start with /", ErrBadRoute, p)
	}
	p = strings.TrimSuffix(p, "/")
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", fmt.Errorf("%w: base path %q has an empty or dot segment", ErrBadRoute, p)
		}
		if seg == APIPathSegment {
			return "", fmt.Errorf("%w: base path %q must not contain %s", ErrBadRoute, p, APIPathSegment)
		}
		for _, r := range seg {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._~", r)) {
				return "", fmt.Errorf("%w: base path %q: character %q not allowed", ErrBadRoute, p, r)
			}
		}
	}
	return p, nil
}

// routeTable is an immutable base path → merchant id map.
type routeTable map[string]string

func newRouteTable(routes []Route) (routeTable, error) {
	t := make(routeTable, len(routes))
	for _, r := range routes {
		if r.MerchantID == "" {
			return nil, fmt.Errorf("%w: base path %q has no merchant id", ErrBadRoute, r.BasePath)
		}
		base, err := NormalizeBasePath(r.BasePath)
		if err != nil {
			return nil, err
		}
		if prev, ok := t[base]; ok {
			return nil, fmt.Errorf("%w: base path %q used by %s and %s", ErrBadRoute, r.BasePath, prev, r.MerchantID)
		}
		t[base] = r.MerchantID
	}
	return t, nil
}

// match splits an API path into merchant and method; ok is false for any
// path that is not {known base}/refundable-one-time-payment-code-v2/{known method}.
func (s *Server) match(path string) (merchant, method string, ok bool) {
	const seg = "/" + APIPathSegment + "/"
	i := strings.LastIndex(path, seg)
	if i < 0 {
		return "", "", false
	}
	base, method := path[:i], path[i+len(seg):]
	if !s.methods[method] {
		return "", "", false
	}
	merchant, ok = (*s.routes.Load())[base]
	return merchant, method, ok
}

// SetRoutes atomically replaces the base path table, e.g. after an
// operator adds a merchant. Requests in flight keep the old table.
func (s *Server) SetRoutes(routes []Route) error {
	t, err := newRouteTable(routes)
	if err != nil {
		return err
	}
	s.routes.Store(&t)
	return nil
}
