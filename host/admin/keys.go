package admin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/otpcgate/otpcgate/keystore"
)

// Expiry warning thresholds, in days (CLI output and metrics).
const (
	WarnDays     = 30
	CriticalDays = 7
)

// KeyView is a key as the API lists it: metadata only, never material.
type KeyView struct {
	keystore.KeyInfo
	// DaysToExpiry is nil for keys that never expire.
	DaysToExpiry *int `json:"daysToExpiry,omitempty"`
	// Warning is "expired", "critical" (< 7 days) or "warning" (< 30 days)
	// for keys still in service.
	Warning string `json:"warning,omitempty"`
}

func (s *Server) keysetOf(c echo.Context) (string, error) {
	m, err := s.d.Backend.Merchant(c.Request().Context(), c.Param("id"))
	if err != nil {
		return "", err
	}
	if m.KeysetID == "" {
		return "", fail(http.StatusConflict, "merchant has no keyset", "bind one with `otpcgate merchants update --keyset`")
	}
	return m.KeysetID, nil
}

func inService(st keystore.State) bool {
	switch st {
	case keystore.StatePending, keystore.StateActive, keystore.StatePrimary, keystore.StateRetiring:
		return true
	}
	return false
}

// ViewKey adds days to expiry and the warning level at now.
func ViewKey(k keystore.KeyInfo, now time.Time) KeyView {
	v := KeyView{KeyInfo: k}
	if d, ok := k.DaysToExpiry(now); ok {
		v.DaysToExpiry = &d
		if inService(k.State) {
			switch {
			case !k.Expires.After(now):
				v.Warning = "expired"
			case d < CriticalDays:
				v.Warning = "critical"
			case d < WarnDays:
				v.Warning = "warning"
			}
		}
	}
	return v
}

func (s *Server) listKeys(c echo.Context) error {
	ksID, err := s.keysetOf(c)
	if err != nil {
		return err
	}
	ks, err := s.d.Keys.List(c.Request().Context(), ksID)
	if err != nil {
		return err
	}
	now := s.d.Now()
	out := make([]KeyView, 0, len(ks))
	for _, k := range ks {
		out = append(out, ViewKey(k, now))
	}
	return c.JSON(http.StatusOK, out)
}

// exportPublic returns armored PGP or a JWKS; ?key= selects keys (repeat),
// none means our keys in service: what to send Google.
func (s *Server) exportPublic(c echo.Context) error {
	ksID, err := s.keysetOf(c)
	if err != nil {
		return err
	}
	b, err := s.d.Keys.ExportPublic(c.Request().Context(), ksID, c.QueryParams()["key"]...)
	if err != nil {
		return err
	}
	ct := "application/pgp-keys"
	if bytes.HasPrefix(bytes.TrimSpace(b), []byte("{")) {
		ct = "application/jwk-set+json"
	}
	return c.Blob(http.StatusOK, ct, b)
}

// GenerateRequest is the body of POST /v1/merchants/{id}/keys.
type GenerateRequest struct {
	Algorithm    string `json:"algorithm,omitempty"`
	Bits         int    `json:"bits,omitempty"`
	LifetimeDays int    `json:"lifetimeDays,omitempty"`
	Name         string `json:"name,omitempty"`
	Comment      string `json:"comment,omitempty"`
	Email        string `json:"email,omitempty"`
	Use          string `json:"use,omitempty"`
}

func (s *Server) generateKey(c echo.Context) error {
	ksID, err := s.keysetOf(c)
	if err != nil {
		return err
	}
	var req GenerateRequest
	if err := bind(c, maxJSONBody, &req); err != nil {
		return err
	}
	k, err := s.d.Keys.Generate(c.Request().Context(), tokenOf(c).Actor(), ksID, keystore.GenerateOptions{
		Algorithm: req.Algorithm, Bits: req.Bits, Lifetime: time.Duration(req.LifetimeDays) * 24 * time.Hour,
		Name: req.Name, Comment: req.Comment, Email: req.Email, Use: req.Use,
	})
	if err != nil {
		return err
	}
	if err := s.audit(c, "key.generate", MerchantSubject(c.Param("id")), nil, keyRecord(k)); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, ViewKey(k, s.d.Now()))
}

// ImportRequest is the body of POST /v1/merchants/{id}/keys/import.
type ImportRequest struct {
	// Owner is "peer" (Google's public keys, the default) or "self".
	Owner string `json:"owner,omitempty"`
	// Data is what gpg --export [--armor] / --export-secret-keys wrote, or
	// a JWK / JWKS; binary data is sent base64 in DataBase64.
	Data       string `json:"data,omitempty"`
	DataBase64 []byte `json:"dataBase64,omitempty"`
	// Passphrase decrypts protected secret keys; never stored or logged.
	Passphrase   string    `json:"passphrase,omitempty"`
	Expires      time.Time `json:"expires,omitzero"`
	AllowExpired bool      `json:"allowExpired,omitempty"`
}

func (s *Server) importKeys(c echo.Context) error {
	ksID, err := s.keysetOf(c)
	if err != nil {
		return err
	}
	var req ImportRequest
	if err := bind(c, maxJSONBody, &req); err != nil {
		return err
	}
	owner := keystore.OwnerPeer
	switch req.Owner {
	case "", "peer":
	case "self":
		owner = keystore.OwnerSelf
	default:
		return fail(http.StatusBadRequest, "owner is peer (Google's keys) or self (ours)", "")
	}
	data := req.DataBase64
	if data == nil {
		data = []byte(req.Data)
	}
	ks, err := s.d.Keys.Import(c.Request().Context(), tokenOf(c).Actor(), ksID, owner, data, keystore.ImportOptions{
		Passphrase: []byte(req.Passphrase), Expires: req.Expires, AllowExpired: req.AllowExpired})
	if err != nil {
		return err
	}
	now := s.d.Now()
	out := make([]KeyView, 0, len(ks))
	recs := make([]map[string]string, 0, len(ks))
	for _, k := range ks {
		out = append(out, ViewKey(k, now))
		recs = append(recs, keyRecord(k))
	}
	if err := s.audit(c, "key.import", MerchantSubject(c.Param("id")), nil, recs); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, out)
}

func keyRecord(k keystore.KeyInfo) map[string]string {
	return map[string]string{"keyset": k.KeysetID, "key": k.ID, "owner": string(k.Owner), "state": string(k.State)}
}

// StateRequest is the body of POST /v1/merchants/{id}/keys/{key}/state.
type StateRequest struct {
	State keystore.State `json:"state"`
}

func (s *Server) findKey(ctx context.Context, ksID, keyID string) (keystore.KeyInfo, error) {
	ks, err := s.d.Keys.List(ctx, ksID)
	if err != nil {
		return keystore.KeyInfo{}, err
	}
	for _, k := range ks {
		if k.ID == keyID {
			return k, nil
		}
	}
	return keystore.KeyInfo{}, fmt.Errorf("%w: key %s in keyset %s", ErrNotFound, keyID, ksID)
}

func (s *Server) setKeyState(c echo.Context) error {
	ksID, err := s.keysetOf(c)
	if err != nil {
		return err
	}
	var req StateRequest
	if err := bind(c, maxJSONBody, &req); err != nil {
		return err
	}
	ctx := c.Request().Context()
	before, err := s.findKey(ctx, ksID, c.Param("key"))
	if err != nil {
		return err
	}
	if err := s.d.Keys.SetState(ctx, tokenOf(c).Actor(), ksID, before.ID, req.State); err != nil {
		return err
	}
	after, err := s.findKey(ctx, ksID, before.ID)
	if err != nil {
		return err
	}
	if err := s.audit(c, "key.state", MerchantSubject(c.Param("id")), keyRecord(before), keyRecord(after)); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ViewKey(after, s.d.Now()))
}

// errNoRoundTripPartner: no other of our keys is in service to play Google
// in a round trip, as with a merchant's first key.
var errNoRoundTripPartner = errors.New("no other of our keys is in service to play Google")

// VerifyResult reports a key's self round trip through the envelope.
type VerifyResult struct {
	Key string `json:"key"`
	// With is the other self key the round trip used as "Google".
	With string `json:"with"`
	// Inbound: a message sealed to the key opens with it.
	Inbound bool `json:"inbound"`
	// Outbound: a message the key signs verifies with its public half.
	Outbound bool `json:"outbound"`
}

// verifyKey proves a (usually new, pending) self key works in the envelope
// before it carries traffic: another of our self keys plays Google, once
// sending to the new key and once receiving from it.
func (s *Server) verifyKey(c echo.Context) error {
	ksID, err := s.keysetOf(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	ks, err := s.d.Keys.Keyset(ctx, ksID)
	if err != nil {
		return err
	}
	res, err := s.roundTrip(ctx, ks, c.Param("key"))
	if errors.Is(err, errNoRoundTripPartner) {
		// Not a failure of the key: there is nothing to test it against.
		return fail(http.StatusConflict, "cannot verify by a round trip: "+err.Error(),
			"this is the first key in service: activate and promote it, then prove it with Google's echo "+
				"(otpcgate sim smoke in development); later keys are verified against it")
	}
	if err != nil {
		return fail(http.StatusUnprocessableEntity, "round trip failed: "+err.Error(),
			"do not promote this key; generate or import another and verify it")
	}
	return c.JSON(http.StatusOK, res)
}

func (s *Server) roundTrip(ctx context.Context, ks *keystore.Keyset, keyID string) (VerifyResult, error) {
	res := VerifyResult{Key: keyID}
	k := ks.Key(keyID)
	if k == nil {
		return res, fmt.Errorf("key %s not in keyset", keyID)
	}
	if k.Owner != keystore.OwnerSelf {
		return res, fmt.Errorf("key %s is Google's (peer); only our keys can be verified by a round trip", keyID)
	}
	var other *keystore.Key
	for _, o := range ks.Keys {
		if o.ID == k.ID || o.Owner != keystore.OwnerSelf || !inService(o.State) || o.State == keystore.StatePending {
			continue
		}
		if other == nil || o.State == keystore.StatePrimary {
			other = o
		}
	}
	if other == nil {
		return res, fmt.Errorf("%w (key %s)", errNoRoundTripPartner, keyID)
	}
	res.With = other.ID
	codec := s.codecs[ks.Kind]
	msg := []byte(`{"otpcgateRoundTrip":"` + time.Now().UTC().Format(time.RFC3339Nano) + `"}`)
	check := func(sender, receiver *keystore.Key) error {
		as := func(k *keystore.Key, o keystore.Owner, st keystore.State) *keystore.Key {
			cp := *k
			cp.Owner, cp.State = o, st
			return &cp
		}
		from, err := keystore.NewKeyset("roundtrip-from", ks.Kind, ks.Env, []*keystore.Key{
			as(sender, keystore.OwnerSelf, keystore.StatePrimary), as(receiver, keystore.OwnerPeer, keystore.StatePrimary)})
		if err != nil {
			return err
		}
		to, err := keystore.NewKeyset("roundtrip-to", ks.Kind, ks.Env, []*keystore.Key{
			as(receiver, keystore.OwnerSelf, keystore.StatePrimary), as(sender, keystore.OwnerPeer, keystore.StatePrimary)})
		if err != nil {
			return err
		}
		body, err := codec.Seal(ctx, from, msg)
		if err != nil {
			return fmt.Errorf("seal: %w", err)
		}
		opened, err := codec.Open(ctx, to, body)
		if err != nil {
			return fmt.Errorf("open: %w", err)
		}
		if !bytes.Equal(opened.Plaintext, msg) || opened.DecryptedBy != receiver.ID || opened.VerifiedBy != sender.ID {
			return fmt.Errorf("opened by %s/%s, want %s/%s", opened.DecryptedBy, opened.VerifiedBy, receiver.ID, sender.ID)
		}
		return nil
	}
	if err := check(other, k); err != nil {
		return res, fmt.Errorf("inbound (Google → %s): %w", k.ID, err)
	}
	res.Inbound = true
	if err := check(k, other); err != nil {
		return res, fmt.Errorf("outbound (%s → Google): %w", k.ID, err)
	}
	res.Outbound = true
	return res, nil
}

// merchantMetrics is the JSON view a merchant gets of its own numbers.
type merchantMetricsView struct {
	Plugins []PluginVersion `json:"plugins"`
	Keys    []keyUse        `json:"keys"`
	Expiry  map[string]*int `json:"daysToExpiry"`
}

type keyUse struct {
	Key  string            `json:"key"`
	Uses map[string]uint64 `json:"uses"`
}

func (s *Server) merchantMetrics(c echo.Context) error {
	id := c.Param("id")
	ctx := c.Request().Context()
	vs, err := s.d.Backend.PluginVersions(ctx, id)
	if err != nil {
		return err
	}
	ksID, err := s.keysetOf(c)
	if err != nil {
		return err
	}
	keys, err := s.d.Keys.List(ctx, ksID)
	if err != nil {
		return err
	}
	view := merchantMetricsView{Plugins: s.withStats(id, vs), Keys: []keyUse{}, Expiry: map[string]*int{}}
	if view.Plugins == nil {
		view.Plugins = []PluginVersion{}
	}
	now := s.d.Now()
	for _, k := range keys {
		u := s.d.Counters.Get(k.ID)
		ku := keyUse{Key: k.ID, Uses: map[string]uint64{}}
		for i, n := range u {
			ku.Uses[keystore.Use(i).String()] = n
		}
		view.Keys = append(view.Keys, ku)
		view.Expiry[k.ID] = ViewKey(k, now).DaysToExpiry
	}
	return c.JSON(http.StatusOK, view)
}
