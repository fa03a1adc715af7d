package otpc

import "errors"

// ErrInvalid matches (errors.Is) every *FieldError returned by Validate.
var ErrInvalid = errors.New("otpc: invalid message")

// FieldError is returned by Validate. Missing lists absent required fields
// and Invalid lists fields with bad values, both as dotted JSON paths from
// the validated message (e.g. "requestHeader.requestId",
// "captureEvents[2].eventFee"). Each Invalid entry is "path: reason".
// A host answers Missing with missingRequiredField (missingFieldNames =
// Missing) and Invalid with invalidFieldValue.
type FieldError struct {
	// Missing holds the paths of absent required fields.
	Missing []string
	// Invalid holds "path: reason" for fields with unacceptable values.
	Invalid []string
}

func (e *FieldError) Error() string {
	s := "otpc: invalid message:"
	if len(e.Missing) > 0 {
		s += " missing " + join(e.Missing, ", ")
		if len(e.Invalid) > 0 {
			s += ";"
		}
	}
	if len(e.Invalid) > 0 {
		s += " invalid " + join(e.Invalid, ", ")
	}
	return s
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// InvalidPaths returns the paths of the Invalid entries without reasons.
func (e *FieldError) InvalidPaths() []string {
	out := make([]string, len(e.Invalid))
	for i, s := range e.Invalid {
		if j := index(s, ": "); j >= 0 {
			s = s[:j]
		}
		out[i] = s
	}
	return out
}

func join(list []string, sep string) string {
	n := 0
	for _, s := range list {
		n += len(s) + len(sep)
	}
	b := make([]byte, 0, n)
	for i, s := range list {
		if i > 0 {
			b = append(b, sep...)
		}
		b = append(b, s...)
	}
	return string(b)
}

func index(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

const (
	reasonRequestID   = "must be 1-100 characters of a-z A-Z 0-9 : - _"
	reasonCurrency    = "must be an ISO 4217 code (three upper-case letters)"
	reasonPositive    = "must be > 0"
	reasonNonNegative = "must be >= 0"
	reasonEmpty       = "must not be empty"
)

// path is a JSON path built on the stack while validating; it is rendered
// only when a problem is reported, so valid messages cost no allocations.
type path struct {
	parent *path
	name   string
	index  int // >= 0 renders as name[index]
}

func (p *path) appendTo(b []byte) []byte {
	if p == nil {
		return b
	}
	b = p.parent.appendTo(b)
	if len(b) > 0 {
		b = append(b, '.')
	}
	b = append(b, p.name...)
	if p.index >= 0 {
		b = append(b, '[')
		b = appendInt(b, int64(p.index))
		b = append(b, ']')
	}
	return b
}

// validator collects the problems of one Validate call.
type validator struct{ fe FieldError }

func render(p *path, name string) string {
	b := p.appendTo(make([]byte, 0, 48))
	if name != "" {
		if len(b) > 0 {
			b = append(b, '.')
		}
		b = append(b, name...)
	}
	if len(b) == 0 {
		return "(message)"
	}
	return string(b)
}

func (v *validator) missing(p *path, name string) {
	v.fe.Missing = append(v.fe.Missing, render(p, name))
}

func (v *validator) invalid(p *path, name, reason string) {
	v.fe.Invalid = append(v.fe.Invalid, render(p, name)+": "+reason)
}

// union reports a union at p with n != 1 members set.
func (v *validator) union(p *path, n int) {
	if n == 0 {
		v.invalid(p, "", "exactly one member must be set, none is (or only unknown ones)")
		return
	}
	v.invalid(p, "", "exactly one member must be set, "+itoa(int64(n))+" are")
}

func (v *validator) err() error {
	if len(v.fe.Missing) == 0 && len(v.fe.Invalid) == 0 {
		return nil
	}
	fe := v.fe
	return &fe
}

// ValidRequestID reports whether id is a valid requestId: 1 to 100
// characters, each one of a-z A-Z 0-9 : - _ (spec §4.1).
func ValidRequestID(id string) bool { return validRequestID(id) }

func validRequestID(id string) bool {
	if len(id) == 0 || len(id) > 100 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == ':' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// ValidCurrencyCode reports whether code has the shape of an ISO 4217
// alphabetic code: exactly three upper-case ASCII letters. It does not
// check the code against the ISO list.
func ValidCurrencyCode(code string) bool { return validCurrency(code) }

func validCurrency(c string) bool {
	return len(c) == 3 && c[0] >= 'A' && c[0] <= 'Z' && c[1] >= 'A' && c[1] <= 'Z' && c[2] >= 'A' && c[2] <= 'Z'
}

// ErrorResult maps the problems to the ErrorResponseResult a host returns
// with HTTP 400: missingRequiredField listing Missing when any field is
// missing, otherwise invalidFieldValue naming the first invalid field.
func (e *FieldError) ErrorResult() *ErrorResponseResult {
	if len(e.Missing) > 0 {
		names := make([]string, len(e.Missing))
		copy(names, e.Missing)
		return &ErrorResponseResult{MissingRequiredField: &MissingRequiredField{MissingFieldNames: names}}
	}
	name := ""
	if paths := e.InvalidPaths(); len(paths) > 0 {
		name = paths[0]
	}
	return &ErrorResponseResult{InvalidFieldValue: &InvalidFieldValue{InvalidFieldName: name}}
}
