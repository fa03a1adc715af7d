// Command gen writes codec_gen.go for package otpc: per-type JSON encoders
// (AppendJSON, MarshalJSON), strict decoders (UnmarshalJSON) and validators
// (Validate), derived from the struct definitions and their `json` and
// `otpc` tags. It exists so the package needs neither encoding/json nor
// reflect at run time. Run it with `go generate ./sdk/otpc`.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"log"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/otpcgate/otpcgate/sdk/otpc/internal/jsonx"
)

type kind int

const (
	kString kind = iota
	kBool
	kInt32
	kInt64
	kStruct    // T
	kPtrStruct // *T
	kPtrString // *string
	kStrings   // []string
	kStructs   // []T
)

type rules struct {
	req, reqid, ccy, pos, nonneg bool
	max                          string
}

type field struct {
	goName, jsonName string
	kind             kind
	elem             string // named type for struct kinds
	rules            rules
}

type typ struct {
	name   string
	fields []field
	union  bool
	extra  bool
}

func main() {
	dir := flag.String("dir", ".", "package directory")
	out := flag.String("out", "codec_gen.go", "output file name inside dir")
	flag.Parse()
	types, err := load(*dir, *out)
	if err != nil {
		log.Fatal(err)
	}
	src, err := generate(types)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(*dir, *out), src, 0o644); err != nil {
		log.Fatal(err)
	}
}

func load(dir, out string) ([]*typ, error) {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, dir, func(fi os.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go") && fi.Name() != out
	}, parser.ParseComments)
	if err != nil {
		return nil, err
	}
	var types []*typ
	for _, pkg := range pkgs {
		for _, f := range pkg.Files {
			for _, decl := range f.Decls {
				gd, ok := decl.(*ast.GenDecl)
				if !ok || gd.Tok != token.TYPE {
					continue
				}
				for _, spec := range gd.Specs {
					ts := spec.(*ast.TypeSpec)
					st, ok := ts.Type.(*ast.StructType)
					if !ok || ts.Assign != 0 {
						continue
					}
					if !tagged(st) {
						continue // not a message type (e.g. FieldError)
					}
					t := &typ{name: ts.Name.Name}
					for _, doc := range []*ast.CommentGroup{gd.Doc, ts.Doc} {
						if doc == nil {
							continue
						}
						for _, c := range doc.List {
							switch strings.TrimSpace(c.Text) {
							case "//otpc:union":
								t.union = true
							case "//otpc:extra":
								t.extra = true
							}
						}
					}
					for _, fl := range st.Fields.List {
						if len(fl.Names) != 1 || fl.Tag == nil {
							return nil, fmt.Errorf("%s: every field needs one name and a json tag", t.name)
						}
						tag, _ := strconv.Unquote(fl.Tag.Value)
						st := reflect.StructTag(tag)
						fd := field{goName: fl.Names[0].Name, jsonName: strings.Split(st.Get("json"), ",")[0]}
						if fd.jsonName == "" {
							return nil, fmt.Errorf("%s.%s: missing json name", t.name, fd.goName)
						}
						if err := parseRules(st.Get("otpc"), &fd.rules); err != nil {
							return nil, fmt.Errorf("%s.%s: %v", t.name, fd.goName, err)
						}
						if err := classify(fl.Type, &fd); err != nil {
							return nil, fmt.Errorf("%s.%s: %v", t.name, fd.goName, err)
						}
						t.fields = append(t.fields, fd)
					}
					types = append(types, t)
				}
			}
		}
	}
	sort.Slice(types, func(i, j int) bool { return types[i].name < types[j].name })
	known := map[string]bool{}
	for _, t := range types {
		known[t.name] = true
	}
	for _, t := range types {
		if len(t.fields) > 64 {
			return nil, fmt.Errorf("%s: more than 64 fields", t.name)
		}
		for _, f := range t.fields {
			if f.elem != "" && !known[f.elem] {
				return nil, fmt.Errorf("%s.%s: unknown type %s", t.name, f.goName, f.elem)
			}
			if t.union && f.kind != kPtrStruct && f.kind != kPtrString {
				return nil, fmt.Errorf("%s.%s: union members must be pointers", t.name, f.goName)
			}
		}
	}
	return types, nil
}

// tagged reports whether st is a message type: it has no fields (Empty) or
// at least one field with a json tag.
func tagged(st *ast.StructType) bool {
	if len(st.Fields.List) == 0 {
		return true
	}
	for _, f := range st.Fields.List {
		if f.Tag != nil && strings.Contains(f.Tag.Value, "json:") {
			return true
		}
	}
	return false
}

func parseRules(s string, r *rules) error {
	if s == "" {
		return nil
	}
	for _, w := range strings.Split(s, ",") {
		switch {
		case w == "req":
			r.req = true
		case w == "reqid":
			r.reqid = true
		case w == "ccy":
			r.ccy = true
		case w == "pos":
			r.pos = true
		case w == "nonneg":
			r.nonneg = true
		case strings.HasPrefix(w, "max="):
			if _, err := strconv.ParseInt(w[4:], 10, 64); err != nil {
				return fmt.Errorf("bad rule %q", w)
			}
			r.max = w[4:]
		default:
			return fmt.Errorf("unknown rule %q", w)
		}
	}
	return nil
}

func classify(e ast.Expr, f *field) error {
	switch x := e.(type) {
	case *ast.Ident:
		switch x.Name {
		case "string":
			f.kind = kString
		case "bool":
			f.kind = kBool
		case "int32":
			f.kind = kInt32
		case "int64":
			f.kind = kInt64
		default:
			f.kind, f.elem = kStruct, x.Name
		}
		return nil
	case *ast.StarExpr:
		if id, ok := x.X.(*ast.Ident); ok {
			if id.Name == "string" {
				f.kind = kPtrString
			} else {
				f.kind, f.elem = kPtrStruct, id.Name
			}
			return nil
		}
	case *ast.ArrayType:
		if id, ok := x.Elt.(*ast.Ident); ok && x.Len == nil {
			if id.Name == "string" {
				f.kind = kStrings
			} else {
				f.kind, f.elem = kStructs, id.Name
			}
			return nil
		}
	}
	return fmt.Errorf("unsupported field type %T", e)
}

type writer struct{ bytes.Buffer }

func (w *writer) p(format string, args ...any) { fmt.Fprintf(&w.Buffer, format+"\n", args...) }

func generate(types []*typ) ([]byte, error) {
	var w writer
	w.p("// Code generated by internal/gen from the struct definitions; DO NOT EDIT.")
	w.p("")
	w.p("package otpc")
	w.p("")
	w.p(`import "github.com/otpcgate/otpcgate/sdk/otpc/internal/jsonx"`)
	for _, t := range types {
		genEncode(&w, t)
		genDecode(&w, t)
		genValidate(&w, t)
	}
	src, err := format.Source(w.Bytes())
	if err != nil {
		return w.Bytes(), fmt.Errorf("gofmt generated code: %v", err)
	}
	return src, nil
}

func genEncode(w *writer, t *typ) {
	for _, f := range t.fields {
		if f.kind == kStruct && f.goName == f.elem && (f.elem == "RequestHeader" || f.elem == "ResponseHeader") {
			w.p("")
			w.p("// Header returns a pointer to the message's %s.", strings.TrimSuffix(f.jsonName, "Header")+"Header")
			w.p("func (m *%s) Header() *%s { return &m.%s }", t.name, f.elem, f.goName)
		}
	}
	w.p("")
	w.p("// AppendJSON appends the JSON encoding of m to dst and returns the extended slice.")
	w.p("func (m *%s) AppendJSON(dst []byte) []byte {", t.name)
	if len(t.fields) == 0 {
		w.p("return append(dst, '{', '}')")
		w.p("}")
	} else {
		// Commas are static where the generator knows whether an earlier
		// member was written, and literals are merged ('{' with the first
		// key, keys with '['): in wasm each append costs a taken branch.
		possible, certain, dynamic := false, false, false
		for _, f := range t.fields {
			dynamic = dynamic || (possible && !certain)
			certain = certain || unconditional(f)
			possible = true
		}
		opened := false
		if !unconditional(t.fields[0]) {
			w.p("dst = append(dst, '{')")
			opened = true
		}
		if dynamic {
			w.p("start := len(dst)")
		}
		possible, certain = false, false
		for _, f := range t.fields {
			// key returns the statement writing the member's key followed
			// by suffix.
			key := func(suffix string) string {
				lit := `"` + f.jsonName + `":` + suffix
				switch {
				case !possible:
					if !opened {
						lit = "{" + lit
						opened = true
					}
				case certain:
					lit = "," + lit
				default:
					k := fmt.Sprintf("dst = jsonx.Key(dst, start, `\"%s\":`)", f.jsonName)
					if suffix != "" {
						k += fmt.Sprintf("\ndst = append(dst, %q...)", suffix)
					}
					return k
				}
				return fmt.Sprintf("dst = append(dst, `%s`...)", lit)
			}
			k := key("")
			x := "m." + f.goName
			switch f.kind {
			case kString:
				if f.rules.req {
					w.p("%s\ndst = jsonx.AppendString(dst, %s)", k, x)
				} else {
					w.p("if %s != \"\" {\n%s\ndst = jsonx.AppendString(dst, %s)\n}", x, k, x)
				}
			case kBool:
				w.p("if %s {\n%s\n}", x, key("true"))
			case kInt32, kInt64:
				app := "jsonx.AppendInt(dst, int64(" + x + "))"
				if f.kind == kInt64 {
					app = "jsonx.AppendInt64String(dst, " + x + ")"
				}
				if f.rules.req {
					w.p("%s\ndst = %s", k, app)
				} else {
					w.p("if %s != 0 {\n%s\ndst = %s\n}", x, k, app)
				}
			case kStruct:
				w.p("%s\ndst = %s.AppendJSON(dst)", k, x)
			case kPtrStruct:
				w.p("if %s != nil {\n%s\ndst = %s.AppendJSON(dst)\n}", x, k, x)
			case kPtrString:
				w.p("if %s != nil {\n%s\ndst = jsonx.AppendString(dst, *%s)\n}", x, k, x)
			case kStrings, kStructs:
				elem := "dst = jsonx.AppendString(dst, e)"
				rng := "for i, e := range " + x
				if f.kind == kStructs {
					elem = "dst = " + x + "[i].AppendJSON(dst)"
					rng = "for i := range " + x
				}
				w.p("if len(%s) > 0 {\n%s\n%s {\nif i > 0 {\ndst = append(dst, ',')\n}\n%s\n}\ndst = append(dst, ']')\n}", x, key("["), rng, elem)
			}
			certain = certain || unconditional(f)
			possible = true
		}
		w.p("return append(dst, '}')")
		w.p("}")
	}
	w.p("")
	w.p("// MarshalJSON implements encoding/json.Marshaler with the bytes of AppendJSON.")
	w.p("func (m %s) MarshalJSON() ([]byte, error) {", t.name)
	w.p("return m.AppendJSON(make([]byte, 0, 256)), nil")
	w.p("}")
}

// unconditional reports whether AppendJSON always writes member f.
func unconditional(f field) bool {
	switch f.kind {
	case kString, kInt32, kInt64:
		return f.rules.req
	case kStruct:
		return true
	}
	return false
}

func genDecode(w *writer, t *typ) {
	w.p("")
	w.p("// UnmarshalJSON implements encoding/json.Unmarshaler with the strict decoder of")
	w.p("// this package; m is reset first. It does not validate: call Validate.")
	w.p("func (m *%s) UnmarshalJSON(data []byte) (err error) {", t.name)
	w.p("var d jsonx.Decoder")
	w.p("d.Reset(data)")
	w.p("defer d.Recover(&err)")
	w.p("*m = %s{}", t.name)
	w.p("m.decodeJSON(&d)")
	w.p("return d.Finish()")
	w.p("}")
	w.p("")
	w.p("func (m *%s) decodeJSON(d *jsonx.Decoder) {", t.name)
	w.p("if !d.BeginObject() {\nreturn\n}")
	if len(t.fields) == 0 {
		w.p("for d.NextMember() {\nd.Unknown()\n}")
		w.p("}")
		return
	}
	w.p("var seen uint64")
	// Keys are matched by a hash switch confirmed with word compares: a
	// string switch would call runtime.memequal, a byte loop that costs an
	// interrupt check per byte in a wasm guest.
	w.p("for d.NextMember() {")
	w.p("switch d.KeyHash() {")
	hashes := map[uint64]string{}
	for bit, f := range t.fields {
		w0, w1, w2, w3, h := jsonx.KeyWords(f.jsonName)
		if other, dup := hashes[h]; dup {
			log.Fatalf("%s: keys %q and %q have the same hash", t.name, other, f.jsonName)
		}
		hashes[h] = f.jsonName
		cond := fmt.Sprintf("d.KeyIs(%d, %#x, %#x, %#x, %#x)", len(f.jsonName), w0, w1, w2, w3)
		if len(f.jsonName) > 32 {
			cond += fmt.Sprintf(" && string(d.Key()[32:]) == %q", f.jsonName[32:])
		}
		x := "m." + f.goName
		w.p("case %#x: // %q", h, f.jsonName)
		w.p("if !(%s) {\nbreak\n}", cond)
		w.p("dup := seen & (1 << %d)\nseen |= 1 << %d", bit, bit)
		var dec string
		switch f.kind {
		case kString:
			dec = fmt.Sprintf("%s = d.String()", x)
		case kBool:
			dec = fmt.Sprintf("%s = d.Bool()", x)
		case kInt32:
			dec = fmt.Sprintf("%s = d.Int32()", x)
		case kInt64:
			dec = fmt.Sprintf("%s = d.Int64()", x)
		case kStruct:
			dec = fmt.Sprintf("%s.decodeJSON(d)", x)
		case kPtrStruct:
			dec = fmt.Sprintf("%s = new(%s)\n%s.decodeJSON(d)", x, f.elem, x)
		case kPtrString:
			dec = fmt.Sprintf("s := d.String()\n%s = &s", x)
		case kStrings:
			dec = fmt.Sprintf("if d.BeginArray() {\nfor j := 0; d.NextElem(j); j++ {\n%s = append(%s, d.String())\n}\n}", x, x)
		case kStructs:
			dec = fmt.Sprintf("if d.BeginArray() {\nfor j := 0; d.NextElem(j); j++ {\n%s = append(%s, %s{})\n%s[len(%s)-1].decodeJSON(d)\n}\n}", x, x, f.elem, x, x)
		}
		// The value is decoded in two branches so that the common one
		// (first occurrence, plain value) has a single predecessor and
		// the compiler lays it out as a fall-through: in wasm every taken
		// branch costs an interrupt check.
		w.p("if dup|d.ValueFlags() == 0 {\n%s\ncontinue\n}\nif d.Field(dup) {\n%s\n}", dec, dec)
		w.p("continue")
	}
	w.p("}")
	w.p("d.Unknown()")
	w.p("}")
	w.p("}")
}

func genValidate(w *writer, t *typ) {
	w.p("")
	w.p("// Validate checks required fields, value formats and unions of m (see")
	w.p("// the field documentation). It returns nil or a *FieldError.")
	w.p("func (m *%s) Validate() error {", t.name)
	w.p("var v validator")
	w.p("m.validate(&v, nil)")
	w.p("return v.err()")
	w.p("}")
	w.p("")
	// isZero
	w.p("func (m *%s) isZero() bool {", t.name)
	if len(t.fields) == 0 {
		w.p("return true")
	} else {
		var conds []string
		for _, f := range t.fields {
			x := "m." + f.goName
			switch f.kind {
			case kString:
				conds = append(conds, x+` == ""`)
			case kBool:
				conds = append(conds, "!"+x)
			case kInt32, kInt64:
				conds = append(conds, x+" == 0")
			case kStruct:
				conds = append(conds, x+".isZero()")
			case kPtrStruct, kPtrString:
				conds = append(conds, x+" == nil")
			case kStrings, kStructs:
				conds = append(conds, "len("+x+") == 0")
			}
		}
		w.p("return %s", strings.Join(conds, " &&\n"))
	}
	w.p("}")
	if t.union {
		w.p("")
		w.p("func (m *%s) memberCount() (n int) {", t.name)
		for _, f := range t.fields {
			w.p("if m.%s != nil {\nn++\n}", f.goName)
		}
		w.p("return n")
		w.p("}")
	}
	w.p("")
	w.p("func (m *%s) validate(v *validator, p *path) {", t.name)
	for _, f := range t.fields {
		x := "m." + f.goName
		name := strconv.Quote(f.jsonName)
		r := f.rules
		switch f.kind {
		case kString:
			var checks []string
			if r.reqid {
				checks = append(checks, fmt.Sprintf("if !validRequestID(%s) {\nv.invalid(p, %s, reasonRequestID)\n}", x, name))
			}
			if r.ccy {
				checks = append(checks, fmt.Sprintf("if !validCurrency(%s) {\nv.invalid(p, %s, reasonCurrency)\n}", x, name))
			}
			if r.req {
				w.p("if %s == \"\" {\nv.missing(p, %s)\n}", x, name)
				for _, c := range checks {
					w.p("%s", strings.Replace(c, "if ", "if "+x+" != \"\" && ", 1))
				}
			} else {
				for _, c := range checks {
					w.p("%s", strings.Replace(c, "if ", "if "+x+" != \"\" && ", 1))
				}
			}
		case kInt32, kInt64:
			if r.req {
				w.p("if %s == 0 {\nv.missing(p, %s)\n}", x, name)
			}
			if r.pos {
				w.p("if %s < 0 {\nv.invalid(p, %s, reasonPositive)\n}", x, name)
			} else if r.nonneg {
				w.p("if %s < 0 {\nv.invalid(p, %s, reasonNonNegative)\n}", x, name)
			}
			if r.max != "" {
				w.p("if %s > %s {\nv.invalid(p, %s, \"must be at most %s\")\n}", x, r.max, name, r.max)
			}
		case kStruct, kPtrStruct:
			zero := x + ".isZero()"
			if f.kind == kPtrStruct {
				zero = x + " == nil"
			}
			w.p("if %s {", zero)
			if r.req {
				w.p("v.missing(p, %s)", name)
			}
			w.p("} else {")
			w.p("c := path{parent: p, name: %s, index: -1}", name)
			w.p("%s.validate(v, &c)", x)
			if r.pos {
				if f.elem != "Amount" {
					log.Fatalf("%s.%s: pos on a struct is only defined for Amount", t.name, f.goName)
				}
				w.p("if %s.AmountMicros < 0 {\nv.invalid(&c, \"amountMicros\", reasonPositive)\n}", x)
			}
			w.p("}")
		case kPtrString:
			w.p("if %s != nil && *%s == \"\" {\nv.invalid(p, %s, reasonEmpty)\n}", x, x, name)
		case kStrings:
			if r.req {
				w.p("if len(%s) == 0 {\nv.missing(p, %s)\n}", x, name)
			}
		case kStructs:
			if r.req {
				w.p("if len(%s) == 0 {\nv.missing(p, %s)\n}", x, name)
			}
			w.p("for i := range %s {\nc := path{parent: p, name: %s, index: i}\n%s[i].validate(v, &c)\n}", x, name, x)
		}
	}
	if t.union {
		w.p("if n := m.memberCount(); n != 1 {\nv.union(p, n)\n}")
	}
	if t.extra {
		w.p("m.validateExtra(v, p)")
	}
	w.p("}")
}
