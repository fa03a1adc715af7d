package admin

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

func TestBindStrictJSON(t *testing.T) {
	type inner struct {
		B string `json:"b"`
	}
	type body struct {
		A     string  `json:"a"`
		In    inner   `json:"in"`
		List  []inner `json:"list"`
		Count int     `json:"count"`
	}
	tests := []struct {
		name, body string
		status     int    // 0: accepted
		msg        string // substring of the refusal
	}{
		{"plain", `{"a":"x","in":{"b":"y"},"list":[{"b":"1"},{"b":"2"}],"count":2}`, 0, ""},
		{"same key in sibling objects", `{"list":[{"b":"1"},{"b":"1"}],"in":{"b":"1"}}`, 0, ""},
		{"whitespace after", "{\"a\":\"x\"}\n\t ", 0, ""},
		{"duplicate top-level key", `{"a":"x","a":"y"}`, 400, `key "a" appears twice in $`},
		{"duplicate nested key", `{"in":{"b":"1","b":"2"}}`, 400, `key "b" appears twice in $.in`},
		{"duplicate key in an array element", `{"list":[{"b":"1"},{"b":"1","b":"2"}]}`, 400, `in $.list[1]`},
		{"trailing object", `{"a":"x"}{"a":"y"}`, 400, "data after the JSON value"},
		{"trailing garbage", `{"a":"x"} junk`, 400, "malformed JSON body"},
		{"unknown field", `{"a":"x","admin":true}`, 400, "unknown field"},
		{"empty", ``, 400, "empty request body"},
		{"too large", `{"a":"` + strings.Repeat("x", 200) + `"}`, 413, "over 100 bytes"},
		{"syntax error", `{"a":`, 400, "malformed JSON body"},
	}
	e := echo.New()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tc.body))
			c := e.NewContext(req, httptest.NewRecorder())
			var v body
			limit := int64(maxJSONBody)
			if tc.status == http.StatusRequestEntityTooLarge {
				limit = 100
			}
			err := bind(c, limit, &v)
			if tc.status == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var he *echo.HTTPError
			if !errors.As(err, &he) || he.Code != tc.status {
				t.Fatalf("got %v, want HTTP %d", err, tc.status)
			}
			if msg := he.Message.(apiError).Error; !strings.Contains(msg, tc.msg) {
				t.Fatalf("message %q, want %q", msg, tc.msg)
			}
		})
	}
}
