package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/otpcgate/otpcgate/host/ledger"
)

// maxJSONBody bounds every JSON body but plugin uploads.
const maxJSONBody = 1 << 20

// bind decodes a JSON body of at most limit bytes into v: exactly one JSON
// value, no unknown fields, no key twice in an object (encoding/json would
// silently keep the last, so two readers of one body could disagree), no
// trailing data.
func bind(c echo.Context, limit int64, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fail(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", limit), "")
		}
		return fail(http.StatusBadRequest, "unreadable request body: "+err.Error(), "")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return fail(http.StatusBadRequest, "empty request body", "send a JSON object")
	}
	if err := checkDuplicateKeys(body); err != nil {
		return fail(http.StatusBadRequest, "malformed JSON body: "+err.Error(), "")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fail(http.StatusBadRequest, "malformed JSON body: "+err.Error(), "")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fail(http.StatusBadRequest, "malformed JSON body: data after the JSON value", "send exactly one JSON object")
	}
	return nil
}

// checkDuplicateKeys walks the JSON value in body and reports the first
// object key that appears twice in one object. Syntax errors are left to
// the decoder that follows.
func checkDuplicateKeys(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var walk func(path string) error
	walk = func(path string) error {
		tok, err := dec.Token()
		if err != nil {
			return nil // the decoder reports syntax errors
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil
				}
				key, _ := kt.(string)
				if seen[key] {
					return fmt.Errorf("key %q appears twice in %s", key, path)
				}
				seen[key] = true
				if err := walk(path + "." + key); err != nil {
					return err
				}
			}
			_, _ = dec.Token() // '}'
		case json.Delim('['):
			for i := 0; dec.More(); i++ {
				if err := walk(path + "[" + strconv.Itoa(i) + "]"); err != nil {
					return err
				}
			}
			_, _ = dec.Token() // ']'
		}
		return nil
	}
	return walk("$")
}

// MerchantSubject is the audit subject of everything about one merchant
// (its integration, plugins, keys, tokens), so its events are one query.
func MerchantSubject(id string) string { return "merchant/" + id }

// audit records a change: who (token id, never the secret), what, the
// subject and JSON snapshots before and after (never secrets).
func (s *Server) audit(c echo.Context, action, subject string, before, after any) error {
	e := ledger.AuditEntry{Actor: tokenOf(c).Actor(), Action: action, Subject: subject}
	var err error
	if before != nil {
		if e.Before, err = json.Marshal(before); err != nil {
			return err
		}
	}
	if after != nil {
		if e.After, err = json.Marshal(after); err != nil {
			return err
		}
	}
	if err := s.d.Ledger.Audit(c.Request().Context(), e); err != nil {
		// The change is made; a lost audit line must be loud.
		s.log.Error("audit entry not written", "action", action, "subject", subject, "err", err)
		return fmt.Errorf("admin: change applied but audit failed: %w", err)
	}
	return nil
}

func (s *Server) listMerchants(c echo.Context) error {
	ms, err := s.d.Backend.Merchants(c.Request().Context())
	if err != nil {
		return err
	}
	if ms == nil {
		ms = []Merchant{}
	}
	return c.JSON(http.StatusOK, ms)
}

func (s *Server) showMerchant(c echo.Context) error {
	m, err := s.d.Backend.Merchant(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, m)
}

func (s *Server) createMerchant(c echo.Context) error {
	var spec MerchantSpec
	if err := bind(c, maxJSONBody, &spec); err != nil {
		return err
	}
	m, err := s.d.Backend.CreateMerchant(c.Request().Context(), tokenOf(c).Actor(), spec)
	if err != nil {
		return err
	}
	if err := s.audit(c, "merchant.create", MerchantSubject(m.ID), nil, m); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, m)
}

func (s *Server) updateMerchant(c echo.Context) error {
	var u MerchantUpdate
	if err := bind(c, maxJSONBody, &u); err != nil {
		return err
	}
	ctx := c.Request().Context()
	before, err := s.d.Backend.Merchant(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	after, err := s.d.Backend.UpdateMerchant(ctx, before.ID, u)
	if err != nil {
		return err
	}
	if err := s.audit(c, "merchant.update", MerchantSubject(before.ID), before, after); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, after)
}

func (s *Server) disableMerchant(c echo.Context) error { return s.setDisabled(c, true) }
func (s *Server) enableMerchant(c echo.Context) error  { return s.setDisabled(c, false) }

func (s *Server) setDisabled(c echo.Context, disabled bool) error {
	ctx := c.Request().Context()
	before, err := s.d.Backend.Merchant(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	after, err := s.d.Backend.SetMerchantDisabled(ctx, before.ID, disabled)
	if err != nil {
		return err
	}
	action := "merchant.enable"
	if disabled {
		action = "merchant.disable"
	}
	if err := s.audit(c, action, MerchantSubject(before.ID), map[string]string{"status": before.Status},
		map[string]string{"status": after.Status}); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, after)
}

// deleteMerchant deletes a disabled merchant that never held a record; its
// tokens are revoked in the same transaction and the audit entry is written
// there too.
func (s *Server) deleteMerchant(c echo.Context) error {
	id := c.Param("id")
	before, err := s.d.Backend.DeleteMerchant(c.Request().Context(), tokenOf(c).Actor(), id,
		func(exec Exec) error { return RevokeMerchant(exec, id, time.Now()) })
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, before)
}

// releasePIAID takes a never-used PIAID away from a disabled merchant.
func (s *Server) releasePIAID(c echo.Context) error {
	m, err := s.d.Backend.ReleasePIAID(c.Request().Context(), tokenOf(c).Actor(), c.Param("id"), c.Param("piaid"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, m)
}

// AuditEntry is an audit log line as the API shows it.
type AuditEntry struct {
	ID      int64           `json:"id"`
	At      string          `json:"at"`
	Actor   string          `json:"actor"`
	Action  string          `json:"action"`
	Subject string          `json:"subject"`
	Before  json.RawMessage `json:"before,omitempty"`
	After   json.RawMessage `json:"after,omitempty"`
}

func (s *Server) auditQuery(c echo.Context, subject string) error {
	q := ledger.AuditQuery{Subject: subject}
	if v := c.QueryParam("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fail(http.StatusBadRequest, "after must be an audit entry id", "")
		}
		q.AfterID = n
	}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return fail(http.StatusBadRequest, "limit must be 1..1000", "")
		}
		q.Limit = n
	}
	es, err := s.d.Ledger.AuditLog(c.Request().Context(), q)
	if err != nil {
		return err
	}
	out := make([]AuditEntry, 0, len(es))
	for _, e := range es {
		out = append(out, AuditEntry{ID: e.ID, At: e.At.UTC().Format("2006-01-02T15:04:05.000Z07:00"), Actor: e.Actor,
			Action: e.Action, Subject: e.Subject, Before: rawOrNil(e.Before), After: rawOrNil(e.After)})
	}
	return c.JSON(http.StatusOK, out)
}

func rawOrNil(b []byte) json.RawMessage {
	if len(b) == 0 || !json.Valid(b) {
		return nil
	}
	return b
}

func (s *Server) auditLog(c echo.Context) error { return s.auditQuery(c, c.QueryParam("subject")) }

func (s *Server) merchantEvents(c echo.Context) error {
	if _, err := s.d.Backend.Merchant(c.Request().Context(), c.Param("id")); err != nil {
		return err
	}
	return s.auditQuery(c, MerchantSubject(c.Param("id")))
}

// issueRequest is the body of POST /v1/tokens.
type issueRequest struct {
	Scope      Scope  `json:"scope"`
	MerchantID string `json:"merchantId,omitempty"`
	Name       string `json:"name,omitempty"`
}

// IssuedToken is a new token with its secret, shown once.
type IssuedToken struct {
	Token
	Secret string `json:"secret"`
}

func (s *Server) listTokens(c echo.Context) error {
	ts, err := s.d.Tokens.List(c.Request().Context())
	if err != nil {
		return err
	}
	if ts == nil {
		ts = []Token{}
	}
	return c.JSON(http.StatusOK, ts)
}

func (s *Server) issueToken(c echo.Context) error {
	var req issueRequest
	if err := bind(c, maxJSONBody, &req); err != nil {
		return err
	}
	ctx := c.Request().Context()
	if req.Scope == ScopeMerchant {
		if _, err := s.d.Backend.Merchant(ctx, req.MerchantID); err != nil {
			return err
		}
	}
	t, secret, err := s.d.Tokens.Issue(ctx, req.Scope, req.MerchantID, req.Name)
	if err != nil {
		return fail(http.StatusBadRequest, err.Error(), "scope is operator or merchant; a merchant token needs merchantId")
	}
	subject := "token/" + t.ID
	if t.MerchantID != "" {
		subject = MerchantSubject(t.MerchantID)
	}
	if err := s.audit(c, "token.issue", subject, nil, t); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, IssuedToken{Token: t, Secret: secret})
}

func (s *Server) revokeToken(c echo.Context) error {
	ctx := c.Request().Context()
	before, err := s.d.Tokens.Get(ctx, c.Param("tid"))
	if err != nil {
		return err
	}
	after, err := s.d.Tokens.Revoke(ctx, before.ID)
	if err != nil {
		return err
	}
	subject := "token/" + after.ID
	if after.MerchantID != "" {
		subject = MerchantSubject(after.MerchantID)
	}
	if err := s.audit(c, "token.revoke", subject, before, after); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, after)
}
