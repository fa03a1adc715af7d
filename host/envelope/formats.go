package envelope

import "github.com/otpcgate/otpcgate/keystore"

// Spec declares one application-layer protection: everything the rest of
// the gateway needs to serve it. Routing (415 before any crypto), merchant
// validation, the key kind a merchant's keyset must have and codec
// construction all read this table, so a new format is one entry here plus
// its codec.
type Spec struct {
	// Format is the name merchants are configured with.
	Format Format
	// MediaType is the request media type, without parameters.
	MediaType string
	// ContentType is what the gateway sends with its answers.
	ContentType string
	// KeyKind is the kind of keyset the format's keys live in.
	KeyKind keystore.Kind

	newCodec func(Config) (Codec, error)
}

// specs is the table of formats, in the order they are listed to operators.
var specs = [...]Spec{
	{Format: FormatPGP, MediaType: MediaTypePGP, ContentType: ContentTypePGP, KeyKind: keystore.KindPGP,
		newCodec: func(c Config) (Codec, error) { return newPGP(c), nil }},
	{Format: FormatJOSE, MediaType: MediaTypeJOSE, ContentType: ContentTypeJOSE, KeyKind: keystore.KindJWK,
		newCodec: func(c Config) (Codec, error) { return newJOSE(c) }},
}

// Specs returns every supported format.
func Specs() []Spec { return append([]Spec(nil), specs[:]...) }

// Lookup returns the spec of format.
func Lookup(format Format) (Spec, bool) {
	for _, sp := range specs {
		if sp.Format == format {
			return sp, true
		}
	}
	return Spec{}, false
}

// MediaTypes lists the request media types of every format.
func MediaTypes() []string {
	out := make([]string, len(specs))
	for i, sp := range specs {
		out[i] = sp.MediaType
	}
	return out
}
