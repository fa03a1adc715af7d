package basepath

import (
	"errors"
	"testing"
)

func TestNormalize(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"", "", true},
		{"/", "", true},
		{"/acme", "/acme", true},
		{"/acme/", "/acme", true},
		{"/a/b-c_d.e~f", "/a/b-c_d.e~f", true},
		{"acme", "", false},
		{"/a//b", "", false},
		{"/a/../b", "", false},
		{"/./a", "", false},
		{"/x/" + APIPathSegment, "", false},
		{"/a b", "", false},
		{"/a%2Fb", "", false},
		{"/ä", "", false},
	} {
		got, err := Normalize(tc.in)
		if tc.ok && (err != nil || got != tc.want) {
			t.Errorf("Normalize(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
		if !tc.ok && !errors.Is(err, ErrInvalid) {
			t.Errorf("Normalize(%q) = %q, %v; want ErrInvalid", tc.in, got, err)
		}
	}
}
