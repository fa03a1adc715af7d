package otpc

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

const echoJSON = `{"requestHeader":{"requestId":"G1MQ0YERJ0Q7LPM","requestTimestamp":{"epochMillis":"1481899949606"},` +
	`"protocolVersion":{"major":2},"paymentIntegratorAccountId":"InvisiCashUSA_USD"},"clientMessage":"hi"}`

func TestMalformedInputs(t *testing.T) {
	deep := strings.Repeat(`{"a":`, MaxDepth+1) + "1" + strings.Repeat("}", MaxDepth+1)
	deepArr := `{"x":` + strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1) + `}`
	tests := []struct {
		name, in string
		syntax   bool // want *SyntaxError (else *TypeError)
	}{
		{"empty", ``, true},
		{"whitespace only", " \n\t", true},
		{"truncated", echoJSON[:40], true},
		{"trailing garbage", echoJSON + "x", true},
		{"two values", echoJSON + "{}", true},
		{"trailing comma object", `{"clientMessage":"a",}`, true},
		{"trailing comma array", `{"x":[1,]}`, true},
		{"missing comma", `{"a":1 "b":2}`, true},
		{"missing colon", `{"a" 1}`, true},
		{"unquoted key", `{a:1}`, true},
		{"single quotes", `{'a':1}`, true},
		{"comment", `{/* c */"a":1}`, true},
		{"BOM", "\ufeff{}", true},
		{"invalid escape", `{"clientMessage":"\x41"}`, true},
		{"short unicode escape", `{"clientMessage":"\u12"}`, true},
		{"lone high surrogate", `{"clientMessage":"\ud800"}`, true},
		{"lone low surrogate", `{"clientMessage":"\udc00"}`, true},
		{"high surrogate then non-low", `{"clientMessage":"\ud800\u0041"}`, true},
		{"raw control char", "{\"clientMessage\":\"a\x01b\"}", true},
		{"raw newline in string", "{\"clientMessage\":\"a\nb\"}", true},
		{"invalid UTF-8", "{\"clientMessage\":\"\xff\"}", true},
		{"overlong UTF-8", "{\"clientMessage\":\"\xc0\xaf\"}", true},
		{"UTF-8 surrogate", "{\"clientMessage\":\"\xed\xa0\x80\"}", true},
		{"invalid UTF-8 in unknown key", "{\"\xff\":1}", true},
		{"leading zero", `{"x":01}`, true},
		{"leading zero negative", `{"x":-01}`, true},
		{"bare minus", `{"x":-}`, true},
		{"plus sign", `{"x":+1}`, true},
		{"dot without digits", `{"x":1.}`, true},
		{"leading dot", `{"x":.5}`, true},
		{"empty exponent", `{"x":1e}`, true},
		{"NaN", `{"x":NaN}`, true},
		{"bad literal", `{"x":tru}`, true},
		{"nesting too deep", deep, true},
		{"nesting too deep arrays", deepArr, true},
		{"unterminated string", `{"clientMessage":"abc`, true},
		{"duplicate known key", `{"clientMessage":"a","clientMessage":"b"}`, false},
		{"duplicate known key null first", `{"clientMessage":null,"clientMessage":"b"}`, false},
		{"duplicate unknown key", `{"zz":1,"zz":2}`, false},
		{"duplicate unknown key escaped", `{"zz":1,"\u007a\u007a":2}`, false},
		{"duplicate key in skipped object", `{"zz":{"a":1,"b":2,"a":3}}`, false},
		{"duplicate key among many", `{` + manyKeys(40) + `,"k7":0}`, false},
		{"duplicate nested known key", `{"requestHeader":{"requestId":"a","requestId":"b"}}`, false},
		{"int64 overflow string", `{"requestHeader":{"requestTimestamp":{"epochMillis":"9223372036854775808"}}}`, false},
		{"int64 overflow number", `{"requestHeader":{"requestTimestamp":{"epochMillis":9223372036854775808}}}`, false},
		{"int64 underflow", `{"requestHeader":{"requestTimestamp":{"epochMillis":"-9223372036854775809"}}}`, false},
		{"int64 fraction", `{"requestHeader":{"requestTimestamp":{"epochMillis":1.5}}}`, false},
		{"int64 exponent", `{"requestHeader":{"requestTimestamp":{"epochMillis":1e3}}}`, false},
		{"int64 string with space", `{"requestHeader":{"requestTimestamp":{"epochMillis":" 1"}}}`, false},
		{"int64 string leading zero", `{"requestHeader":{"requestTimestamp":{"epochMillis":"01"}}}`, false},
		{"int64 empty string", `{"requestHeader":{"requestTimestamp":{"epochMillis":""}}}`, false},
		{"int64 bool", `{"requestHeader":{"requestTimestamp":{"epochMillis":true}}}`, false},
		{"int32 overflow", `{"requestHeader":{"protocolVersion":{"major":2147483648}}}`, false},
		{"string as object", `{"requestHeader":"x"}`, false},
		{"number as string", `{"clientMessage":5}`, false},
		{"object as string", `{"clientMessage":{}}`, false},
		{"top-level array", `[]`, false},
		{"top-level null", `null`, false},
		{"top-level string", `"x"`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var m EchoRequest
			err := m.UnmarshalJSON([]byte(tc.in))
			if err == nil {
				t.Fatalf("accepted %q", tc.in)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("error %v does not match ErrMalformed", err)
			}
			var se *SyntaxError
			var te *TypeError
			switch {
			case tc.syntax && !errors.As(err, &se):
				t.Errorf("want *SyntaxError, got %T: %v", err, err)
			case !tc.syntax && !errors.As(err, &te):
				t.Errorf("want *TypeError, got %T: %v", err, err)
			}
			if se != nil && (se.Offset < 0 || se.Offset > int64(len(tc.in))) {
				t.Errorf("offset %d outside input", se.Offset)
			}
			// Apart from the documented extra strictness (invalid UTF-8,
			// lone surrogates, depth limit), our syntax errors are
			// encoding/json's too.
			stricter := strings.Contains(tc.name, "surrogate") || strings.Contains(tc.name, "deep") ||
				strings.Contains(tc.name, "UTF-8")
			if tc.syntax && !stricter && json.Valid([]byte(tc.in)) {
				t.Errorf("encoding/json finds %q valid", tc.in)
			}
		})
	}
}

func manyKeys(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"k` + itoa(int64(i)) + `":0`)
	}
	return b.String()
}

func TestManyDistinctUnknownKeysAccepted(t *testing.T) {
	var m EchoRequest
	if err := m.UnmarshalJSON([]byte(`{` + manyKeys(5000) + `,"clientMessage":"x"}`)); err != nil {
		t.Fatal(err)
	}
	if m.ClientMessage != "x" {
		t.Fatalf("clientMessage = %q", m.ClientMessage)
	}
}

func TestUnknownFieldsSkipped(t *testing.T) {
	plain := `{"requestHeader":{"requestId":"r1","requestTimestamp":{"epochMillis":"1"},"protocolVersion":{"major":2},` +
		`"paymentIntegratorAccountId":"P"},"googlePaymentToken":{"issuerId":{"value":"i"},"token":"t"},` +
		`"transactionDescription":"d","amount":{"amountMicros":"5","currencyCode":"USD"}}`
	extra := `{"future":{"a":[1,2,{"b":null,"c":[[],{}]}],"s":"\u00e9\ud83d\ude00\"\\"},` +
		`"requestHeader":{"requestId":"r1","newHeaderField":[true,false,null,-1.5e-3],"requestTimestamp":{"epochMillis":"1","nanos":7},` +
		`"protocolVersion":{"major":2,"minor":9},"paymentIntegratorAccountId":"P"},` +
		`"googlePaymentToken":{"issuerId":{"value":"i","x":{}},"token":"t"},"n":0,` +
		`"transactionDescription":"d","amount":{"amountMicros":"5","currencyCode":"USD","extra":"x"},"tail":[]}`
	var a, b GenerateReferenceNumberRequest
	if err := a.UnmarshalJSON([]byte(plain)); err != nil {
		t.Fatal(err)
	}
	if err := b.UnmarshalJSON([]byte(extra)); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("unknown fields changed the message:\n%+v\n%+v", a, b)
	}
	if got := string(b.AppendJSON(nil)); got != plain {
		t.Fatalf("re-encoded:\n got %s\nwant %s", got, plain)
	}
}

func TestUnknownUnionMemberDecodesToZeroMembers(t *testing.T) {
	var r GenerateReferenceNumberResponse
	in := `{"responseHeader":{"responseTimestamp":{"epochMillis":"1"}},"result":{"someFutureDecline":{}}}`
	if err := r.UnmarshalJSON([]byte(in)); err != nil {
		t.Fatalf("decode must not fail on an unknown member: %v", err)
	}
	var fe *FieldError
	if err := r.Validate(); !errors.As(err, &fe) || !reflect.DeepEqual(fe.Missing, []string{"result"}) {
		t.Fatalf("Validate = %v", err)
	}
}

func TestNullIsAbsent(t *testing.T) {
	var r AssociateAccountRequest
	in := `{"requestHeader":null,"associationId":null,"provideUserInformation":null}`
	if err := r.UnmarshalJSON([]byte(in)); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r, AssociateAccountRequest{}) {
		t.Fatalf("null set a field: %+v", r)
	}
}

func TestInt64NumberOrString(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{`"1481899949606"`, 1481899949606},
		{`1481899949606`, 1481899949606},
		{`"-5"`, -5},
		{`-5`, -5},
		{`"0"`, 0},
		{`-0`, 0},
		{`"9223372036854775807"`, math.MaxInt64},
		{`9223372036854775807`, math.MaxInt64},
		{`"-9223372036854775808"`, math.MinInt64},
		{`-9223372036854775808`, math.MinInt64},
	}
	for _, tc := range tests {
		var ts Timestamp
		if err := ts.UnmarshalJSON([]byte(`{"epochMillis":` + tc.in + `}`)); err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if ts.EpochMillis != tc.want {
			t.Errorf("%s: got %d want %d", tc.in, ts.EpochMillis, tc.want)
		}
		// Always emitted as a string, and encoding/json agrees on the value.
		out := ts.AppendJSON(nil)
		var std struct {
			EpochMillis int64 `json:"epochMillis,string"`
		}
		if err := json.Unmarshal(out, &std); err != nil || std.EpochMillis != tc.want {
			t.Errorf("%s: encoded %s, encoding/json reads %d, %v", tc.in, out, std.EpochMillis, err)
		}
	}
}

func TestStringDecodingMatchesEncodingJSON(t *testing.T) {
	inputs := []string{
		`""`, `"plain"`, `"\"\\\/\b\f\n\r\t"`, `"\u0000\u001f\u007f"`, `"\u00e9t\u00c9"`,
		`"\ud83d\ude00 smile"`, `"日本語"`, `"\u2028\u2029"`, `"<>&"`, "\"\u00e9\"", `"\uFFFF\uffFe"`,
	}
	for _, in := range inputs {
		var m EchoRequest
		if err := m.UnmarshalJSON([]byte(`{"clientMessage":` + in + `}`)); err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		var want string
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatal(err)
		}
		if m.ClientMessage != want {
			t.Errorf("%s: got %q want %q", in, m.ClientMessage, want)
		}
	}
}

func TestStringEncodingMatchesEncodingJSON(t *testing.T) {
	inputs := []string{"", "plain", "\"\\/\b\f\n\r\t", "\x00\x1f\x7f", "é日本😀", "\u2028\u2029",
		"<script>&amp;</script>", "bad\xffutf8\xc0", "\xed\xa0\x80", strings.Repeat("a\"", 50)}
	for _, s := range inputs {
		m := EchoResponse{ClientMessage: s, ServerMessage: s}
		std, err := json.Marshal(struct {
			ResponseHeader ResponseHeader `json:"responseHeader"`
			ClientMessage  string         `json:"clientMessage"`
			ServerMessage  string         `json:"serverMessage,omitempty"`
		}{m.ResponseHeader, s, s})
		if err != nil {
			t.Fatal(err)
		}
		if got := m.AppendJSON(nil); string(got) != string(std) {
			t.Errorf("%q:\n got %s\nwant %s", s, got, std)
		}
	}
}

func TestTimestampTime(t *testing.T) {
	ts := Timestamp{EpochMillis: 1481899949606}
	if got := TimestampOf(ts.Time()); got != ts {
		t.Fatalf("round trip %v", got)
	}
	if ts.Time().Location().String() != "UTC" || ts.Time().Year() != 2016 {
		t.Fatalf("Time() = %v", ts.Time())
	}
	if !(Timestamp{}).IsZero() || ts.IsZero() {
		t.Fatal("IsZero")
	}
}

func TestUnionWithTwoMembersDecodesThenFailsValidation(t *testing.T) {
	var r RefundResponse
	in := `{"responseHeader":{"responseTimestamp":{"epochMillis":"1"}},"result":{"success":{},"accountOnHold":{"rawResult":{"rawCode":"x"}}}}`
	if err := r.UnmarshalJSON([]byte(in)); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if r.Result.Success == nil || r.Result.AccountOnHold == nil || r.Result.AccountOnHold.RawResult.RawCode != "x" {
		t.Fatalf("members lost: %+v", r.Result)
	}
	var fe *FieldError
	if err := r.Validate(); !errors.As(err, &fe) || len(fe.Invalid) != 1 || !strings.HasPrefix(fe.Invalid[0], "result: exactly one member") {
		t.Fatalf("Validate = %v", err)
	}
	// Encoding keeps both, so a host can log exactly what a plugin produced.
	if got := string(r.AppendJSON(nil)); got != in {
		t.Fatalf("re-encoded %s", got)
	}
}
