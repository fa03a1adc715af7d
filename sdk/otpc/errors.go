package otpc

import "github.com/otpcgate/otpcgate/sdk/otpc/internal/jsonx"

// SyntaxError reports input that is not valid JSON (or nests deeper than
// MaxDepth); Offset is the byte offset of the problem. A host answers it
// with invalidDecryptedRequest.
type SyntaxError = jsonx.SyntaxError

// TypeError reports valid JSON that does not fit the message: a value of
// the wrong JSON type, an integer out of range (int64 overflow, fractions),
// or a duplicate key. A host answers it with invalidDecryptedRequest.
type TypeError = jsonx.TypeError

// ErrMalformed matches (errors.Is) every *SyntaxError and *TypeError.
var ErrMalformed = jsonx.ErrMalformed

// MaxDepth is the deepest nesting of JSON objects and arrays the decoder
// accepts, including inside skipped unknown fields.
const MaxDepth = jsonx.MaxDepth
