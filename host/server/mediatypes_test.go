package server

import (
	"strings"
	"testing"
)

// TestConfiguredMediaTypes: the accepted media types come from Config, so a
// new envelope format needs no change in this package; a type that is not
// configured is refused before the gateway runs.
func TestConfiguredMediaTypes(t *testing.T) {
	g := &recorder{}
	ts := startServer(t, Config{Routes: testRoutes, MediaTypes: []string{"application/x-toy"}}, g, Options{})
	c := ts.client(nil)
	url := ts.url("/acme/" + APIPathSegment + "/echo")
	tests := []struct {
		ct   string
		want int
	}{
		{"application/x-toy", 200},
		{"application/x-toy; charset=utf-8", 200},
		{MediaTypePGP, 415},
		{MediaTypeJOSE, 415},
	}
	for _, tc := range tests {
		before := g.count()
		resp, _ := post(t, c, url, tc.ct, strings.NewReader("x"))
		if resp.StatusCode != tc.want {
			t.Errorf("%q: status %d, want %d", tc.ct, resp.StatusCode, tc.want)
		}
		if called := g.count() != before; called != (tc.want == 200) {
			t.Errorf("%q: gateway called = %v, want %v", tc.ct, called, tc.want == 200)
		}
	}
}
