// Package keystore holds keysets: the several live keys of one merchant's
// integration with Google in one environment, for PGP or for JWK.
//
// A Keyset value is an immutable snapshot. The envelope codecs read it without
// locks; every change (import, promotion, retirement...) produces a new
// snapshot that the Store publishes atomically, so traffic never sees a
// half-applied rotation.
package keystore

import (
	"fmt"
	"sort"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	jose "github.com/go-jose/go-jose/v4"
)

// Kind is the key format of a keyset; one integration uses one of them.
type Kind string

// Key kinds.
const (
	KindPGP Kind = "pgp"
	KindJWK Kind = "jwk"
)

// Owner says which side of the integration holds a key's private half.
type Owner string

// Owners. In the gateway "self" is us and "peer" is Google; in the Google
// simulator the same types are used with the roles swapped.
const (
	// OwnerSelf keys carry private material: we decrypt and sign with them.
	OwnerSelf Owner = "self"
	// OwnerPeer keys are public only: we verify with them and encrypt to them.
	OwnerPeer Owner = "peer"
)

// State is where a key is in its lifecycle.
type State string

// Key states, in lifecycle order.
const (
	// StatePending keys are imported or generated but not yet trusted.
	StatePending State = "pending"
	// StateActive keys decrypt (self) or verify (peer).
	StateActive State = "active"
	// StatePrimary keys also sign (self) or are encrypted to (peer); at most
	// one per owner.
	StatePrimary State = "primary"
	// StateRetiring keys still decrypt/verify during a grace period.
	StateRetiring State = "retiring"
	// StateDisabled keys are kept but refused for all traffic.
	StateDisabled State = "disabled"
	// StateDestroyed keys have had their private material erased.
	StateDestroyed State = "destroyed"
)

// Env is the Google environment a keyset belongs to. Sandbox and production
// never share keys.
type Env string

// Environments.
const (
	EnvSandbox    Env = "sandbox"
	EnvProduction Env = "production"
)

// Key is one key of a keyset with its parsed material.
type Key struct {
	// ID is the PGP primary key fingerprint (upper-case hex) or the JWK kid.
	ID      string
	Kind    Kind
	Owner   Owner
	State   State
	Created time.Time
	// Expires is the zero time for keys that never expire.
	Expires time.Time
	// PGP is set for KindPGP. For OwnerSelf its private keys are decrypted.
	PGP *openpgp.Entity
	// JWK is set for KindJWK. For OwnerSelf it is the private key.
	JWK *jose.JSONWebKey
}

// Expired reports whether the key is past its expiry at t.
func (k *Key) Expired(t time.Time) bool {
	return !k.Expires.IsZero() && !t.Before(k.Expires)
}

// Usable reports whether inbound traffic may use the key: to decrypt with
// (self) or verify with (peer).
func (k *Key) Usable() bool {
	switch k.State {
	case StateActive, StatePrimary, StateRetiring:
		return true
	}
	return false
}

// PGPKeyIDs returns the 64-bit key ids of the primary key and every subkey.
func (k *Key) PGPKeyIDs() []uint64 {
	if k.PGP == nil {
		return nil
	}
	ids := []uint64{k.PGP.PrimaryKey.KeyId}
	for _, sk := range k.PGP.Subkeys {
		ids = append(ids, sk.PublicKey.KeyId)
	}
	return ids
}

// Keyset is an immutable snapshot of one integration's keys. Build it with
// NewKeyset; do not modify a Keyset or its keys after that.
type Keyset struct {
	ID   string
	Kind Kind
	Env  Env
	// Keys in a stable order (by Created, then ID).
	Keys []*Key

	byID    map[string]*Key
	byPGPID map[uint64]*Key
}

// NewKeyset validates keys and builds the lookup indexes. Keys must all be
// of kind; ids must be unique; at most one primary per owner.
func NewKeyset(id string, kind Kind, env Env, keys []*Key) (*Keyset, error) {
	ks := &Keyset{
		ID: id, Kind: kind, Env: env,
		Keys:    append([]*Key(nil), keys...),
		byID:    make(map[string]*Key, len(keys)),
		byPGPID: make(map[uint64]*Key),
	}
	sort.SliceStable(ks.Keys, func(i, j int) bool {
		if !ks.Keys[i].Created.Equal(ks.Keys[j].Created) {
			return ks.Keys[i].Created.Before(ks.Keys[j].Created)
		}
		return ks.Keys[i].ID < ks.Keys[j].ID
	})
	primaries := map[Owner]string{}
	for _, k := range ks.Keys {
		if k.Kind != kind {
			return nil, fmt.Errorf("keystore: key %s is %s, keyset %s is %s", k.ID, k.Kind, id, kind)
		}
		if _, dup := ks.byID[k.ID]; dup {
			return nil, fmt.Errorf("keystore: duplicate key id %s in keyset %s", k.ID, id)
		}
		switch kind {
		case KindPGP:
			if k.PGP == nil {
				return nil, fmt.Errorf("keystore: PGP key %s has no material", k.ID)
			}
		case KindJWK:
			if k.JWK == nil && k.State != StateDestroyed {
				return nil, fmt.Errorf("keystore: JWK key %s has no material", k.ID)
			}
		}
		if k.State == StatePrimary {
			if other, ok := primaries[k.Owner]; ok {
				return nil, fmt.Errorf("keystore: keyset %s has two %s primaries: %s and %s", id, k.Owner, other, k.ID)
			}
			primaries[k.Owner] = k.ID
		}
		ks.byID[k.ID] = k
		for _, kid := range k.PGPKeyIDs() {
			// Only the first key claiming a 64-bit id is indexed; a collision
			// is astronomically unlikely and the later key stays reachable by
			// ID and by the hidden-recipient fallback.
			if _, taken := ks.byPGPID[kid]; !taken {
				ks.byPGPID[kid] = k
			}
		}
	}
	return ks, nil
}

// Key returns the key with the given ID, or nil.
func (ks *Keyset) Key(id string) *Key { return ks.byID[id] }

// ByPGPKeyID returns the key whose primary key or subkey has the 64-bit key
// id, or nil. It costs the same whatever the number of keys.
func (ks *Keyset) ByPGPKeyID(id uint64) *Key { return ks.byPGPID[id] }

// Primary returns the primary key of owner, or nil.
func (ks *Keyset) Primary(owner Owner) *Key {
	for _, k := range ks.Keys {
		if k.Owner == owner && k.State == StatePrimary {
			return k
		}
	}
	return nil
}

// Usable returns owner's keys that inbound traffic may use, in key order.
func (ks *Keyset) Usable(owner Owner) []*Key {
	var out []*Key
	for _, k := range ks.Keys {
		if k.Owner == owner && k.Usable() {
			out = append(out, k)
		}
	}
	return out
}

// Recipients returns the peer keys outbound messages are encrypted to: the
// peer's primary and active keys that have not expired at now.
func (ks *Keyset) Recipients(now time.Time) []*Key {
	var out []*Key
	for _, k := range ks.Keys {
		if k.Owner == OwnerPeer && (k.State == StatePrimary || k.State == StateActive) && !k.Expired(now) {
			out = append(out, k)
		}
	}
	return out
}

// DaysToExpiry returns whole days until the key expires at now (negative once
// expired, rounded down) and false if the key never expires.
func (k *Key) DaysToExpiry(now time.Time) (int, bool) {
	return daysToExpiry(k.Expires, now)
}
