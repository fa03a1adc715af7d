package envelope

import (
	"slices"
	"testing"

	"github.com/otpcgate/otpcgate/keystore"
)

// TestSpecs checks the format table against what each codec reports, so
// the table and the codecs cannot drift apart.
func TestSpecs(t *testing.T) {
	specs := Specs()
	if len(specs) < 2 {
		t.Fatalf("%d formats, want at least PGP and JOSE", len(specs))
	}
	seenKinds := map[keystore.Kind]bool{}
	for _, sp := range specs {
		c, err := New(sp.Format, Config{})
		if err != nil {
			t.Fatalf("%s: %v", sp.Format, err)
		}
		if c.Format() != sp.Format || c.ContentType() != sp.ContentType {
			t.Errorf("%s: codec reports %s %q, table says %q", sp.Format, c.Format(), c.ContentType(), sp.ContentType)
		}
		if got, ok := Lookup(sp.Format); !ok || got.MediaType != sp.MediaType {
			t.Errorf("Lookup(%s) = %+v, %v", sp.Format, got, ok)
		}
		if f, err := ForKind(sp.KeyKind); err != nil || f != sp.Format {
			t.Errorf("ForKind(%s) = %s, %v; want %s", sp.KeyKind, f, err, sp.Format)
		}
		if seenKinds[sp.KeyKind] {
			t.Errorf("key kind %s serves two formats", sp.KeyKind)
		}
		seenKinds[sp.KeyKind] = true
		if !slices.Contains(MediaTypes(), sp.MediaType) {
			t.Errorf("MediaTypes() lacks %s", sp.MediaType)
		}
	}
	if _, err := New("toy", Config{}); err == nil {
		t.Error("New accepted an unknown format")
	}
	if _, ok := Lookup("toy"); ok {
		t.Error("Lookup found an unknown format")
	}
	if _, err := ForKind("rot13"); err == nil {
		t.Error("ForKind accepted an unknown key kind")
	}
}
