package server

import (
	"errors"
	"fmt"
	"strings"

	"github.com/otpcgate/otpcgate/internal/basepath"
)

// ErrBadRoute is returned for an invalid or duplicate Route.
var ErrBadRoute = errors.New("server: bad route")

// NormalizeBasePath is basepath.Normalize with its error matching
// ErrBadRoute too.
func NormalizeBasePath(p string) (string, error) {
	n, err := basepath.Normalize(p)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadRoute, err)
	}
	return n, nil
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
