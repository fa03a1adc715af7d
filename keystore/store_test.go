package keystore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

func TestOpenKEK(t *testing.T) {
	e := newTestStore(t)
	if _, err := Open(e.ctx, e.db, nil); !errors.Is(err, ErrNoKEK) {
		t.Fatalf("nil KEK: got %v, want ErrNoKEK", err)
	}
	other, _ := GenerateKEK()
	if _, err := e.reopen(t, other); !errors.Is(err, ErrWrongKEK) {
		t.Fatalf("other KEK: got %v, want ErrWrongKEK", err)
	}
	if _, err := e.reopen(t, e.kek); err != nil {
		t.Fatalf("same KEK: %v", err)
	}
}

func TestTransitionMatrix(t *testing.T) {
	// The legal moves, written out independently of state.go.
	legal := map[[2]State]bool{
		{StatePending, StateActive}: true, {StatePending, StateDisabled}: true,
		{StateActive, StatePrimary}: true, {StateActive, StateRetiring}: true, {StateActive, StateDisabled}: true,
		{StatePrimary, StateDisabled}: true,
		{StateRetiring, StateActive}:  true, {StateRetiring, StateDisabled}: true,
		{StateDisabled, StateActive}: true, {StateDisabled, StateDestroyed}: true,
	}
	all := []State{StatePending, StateActive, StatePrimary, StateRetiring, StateDisabled, StateDestroyed}
	e := newTestStore(t)
	ks := e.keyset(t, KindPGP)
	id := e.mustImport(t, ks, OwnerPeer, pgpPublic(t, 0), ImportOptions{})[0].ID
	for _, from := range all {
		for _, to := range all {
			t.Run(fmt.Sprintf("%s-%s", from, to), func(t *testing.T) {
				// Place the key in from directly; the peer key has no
				// private material, so every state is reachable by SQL.
				if _, err := e.db.Exec(`UPDATE keystore_keys SET state = ? WHERE keyset_id = ? AND id = ?`, from, ks, id); err != nil {
					t.Fatal(err)
				}
				err := e.s.SetState(e.ctx, "matrix", ks, id, to)
				if legal[[2]State{from, to}] {
					if err != nil {
						t.Fatalf("legal move refused: %v", err)
					}
					var got State
					e.db.QueryRow(`SELECT state FROM keystore_keys WHERE keyset_id = ? AND id = ?`, ks, id).Scan(&got)
					if got != to {
						t.Fatalf("state %s after move, want %s", got, to)
					}
				} else if !errors.Is(err, ErrIllegalTransition) {
					t.Fatalf("illegal move: got %v, want ErrIllegalTransition", err)
				}
				if CanTransition(from, to) != legal[[2]State{from, to}] {
					t.Fatalf("CanTransition disagrees")
				}
			})
		}
	}
	if err := e.s.SetState(e.ctx, "t", ks, id, State("bogus")); !errors.Is(err, ErrIllegalTransition) {
		t.Fatalf("unknown state: %v", err)
	}
	if err := e.s.SetState(e.ctx, "t", ks, "NOPE", StateActive); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown key: %v", err)
	}
}

func TestSinglePrimaryAndAudit(t *testing.T) {
	e := newTestStore(t)
	ks := e.keyset(t, KindPGP)
	a := e.mustImport(t, ks, OwnerSelf, pgpSecret(t, 0), ImportOptions{})[0].ID
	b := e.mustImport(t, ks, OwnerSelf, armorBytes(t, openpgp.PrivateKeyType, pgpSecret(t, 1)), ImportOptions{})[0].ID
	p := e.mustImport(t, ks, OwnerPeer, pgpPublic(t, 2), ImportOptions{})[0].ID
	for _, id := range []string{a, b, p} {
		e.mustSet(t, ks, id, StateActive)
	}
	e.mustSet(t, ks, a, StatePrimary)
	e.mustSet(t, ks, p, StatePrimary) // another owner: its own primary
	e.mustSet(t, ks, b, StatePrimary)

	snap, err := e.s.Keyset(e.ctx, ks)
	if err != nil {
		t.Fatal(err)
	}
	if got := snap.Primary(OwnerSelf); got == nil || got.ID != b {
		t.Fatalf("self primary %v, want %s", got, b)
	}
	if got := snap.Key(a).State; got != StateActive {
		t.Fatalf("old primary is %s, want active", got)
	}
	if got := snap.Primary(OwnerPeer); got == nil || got.ID != p {
		t.Fatalf("peer primary changed: %v", got)
	}
	// A primary is replaced, never demoted directly.
	for _, to := range []State{StateActive, StateRetiring} {
		if err := e.s.SetState(e.ctx, "t", ks, b, to); !errors.Is(err, ErrIllegalTransition) {
			t.Fatalf("primary → %s: got %v", to, err)
		}
	}
	// The database itself refuses a second primary.
	if _, err := e.db.Exec(`UPDATE keystore_keys SET state = 'primary' WHERE keyset_id = ? AND id = ?`, ks, a); err == nil {
		t.Fatal("unique primary index missing")
	}

	evs, err := e.s.Events(e.ctx, ks)
	if err != nil {
		t.Fatal(err)
	}
	var demoted, promoted bool
	for _, ev := range evs {
		if ev.Actor == "" || ev.At.IsZero() {
			t.Fatalf("event without actor or time: %+v", ev)
		}
		if ev.KeyID == a && ev.From == StatePrimary && ev.To == StateActive && strings.Contains(ev.Note, b) {
			demoted = true
		}
		if ev.KeyID == b && ev.From == StateActive && ev.To == StatePrimary {
			promoted = true
			if !demoted {
				t.Fatal("promotion recorded before the demotion")
			}
		}
	}
	if !demoted || !promoted {
		t.Fatalf("audit trail incomplete: %+v", evs)
	}
}

func TestPromoteRefusals(t *testing.T) {
	e := newTestStore(t)
	ks := e.keyset(t, KindJWK)
	sigPeer := e.mustImport(t, ks, OwnerPeer, jwkJSON(t, 0, false, "peer-sig", "sig"), ImportOptions{})[0].ID
	encSelf := e.mustImport(t, ks, OwnerSelf, jwkJSON(t, 1, true, "self-enc", "enc"), ImportOptions{})[0].ID
	soon := e.mustImport(t, ks, OwnerSelf, jwkJSON(t, 2, true, "self-soon", ""), ImportOptions{Expires: time.Now().Add(time.Hour)})[0].ID
	for _, id := range []string{sigPeer, encSelf, soon} {
		e.mustSet(t, ks, id, StateActive)
	}
	if err := e.s.SetState(e.ctx, "t", ks, sigPeer, StatePrimary); !errors.Is(err, ErrNoEncryptionKey) {
		t.Fatalf("sig-only peer promoted: %v", err)
	}
	if err := e.s.SetState(e.ctx, "t", ks, encSelf, StatePrimary); !errors.Is(err, ErrCannotSign) {
		t.Fatalf("enc-only self promoted: %v", err)
	}
	// Two hours later the key has expired: neither promotion nor
	// re-activation is allowed.
	e.s.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if err := e.s.SetState(e.ctx, "t", ks, soon, StatePrimary); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired key promoted: %v", err)
	}
	e.mustSet(t, ks, soon, StateDisabled)
	if err := e.s.SetState(e.ctx, "t", ks, soon, StateActive); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired key re-activated: %v", err)
	}
}

func TestCiphertextBoundToRow(t *testing.T) {
	e := newTestStore(t)
	ks1, ks2 := e.keyset(t, KindPGP), e.keyset(t, KindPGP)
	a := e.mustImport(t, ks1, OwnerSelf, pgpSecret(t, 0), ImportOptions{})[0].ID
	b := e.mustImport(t, ks1, OwnerSelf, pgpSecret(t, 1), ImportOptions{})[0].ID
	e.mustImport(t, ks2, OwnerSelf, pgpSecret(t, 0), ImportOptions{})
	if _, err := e.s.Keyset(e.ctx, ks1); err != nil {
		t.Fatal(err)
	}
	blob := func(ks, id string) []byte {
		var b []byte
		if err := e.db.QueryRow(`SELECT private_sealed FROM keystore_keys WHERE keyset_id = ? AND id = ?`, ks, id).Scan(&b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := []struct {
		name             string
		fromKS, fromID   string
		toKS, toID       string
		victimKS, victim string
	}{
		{"other key same keyset", ks1, b, ks1, a, ks1, a},
		{"same key other keyset", ks1, a, ks2, a, ks2, a},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			orig := blob(c.toKS, c.toID)
			defer e.db.Exec(`UPDATE keystore_keys SET private_sealed = ? WHERE keyset_id = ? AND id = ?`, orig, c.toKS, c.toID)
			if _, err := e.db.Exec(`UPDATE keystore_keys SET private_sealed = ? WHERE keyset_id = ? AND id = ?`,
				blob(c.fromKS, c.fromID), c.toKS, c.toID); err != nil {
				t.Fatal(err)
			}
			s2, err := e.reopen(t, e.kek) // a fresh process: nothing cached
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s2.Keyset(e.ctx, c.victimKS); !errors.Is(err, ErrCorruptRecord) {
				t.Fatalf("moved ciphertext accepted: %v", err)
			}
		})
	}
	s2, _ := e.reopen(t, e.kek)
	if _, err := s2.Keyset(e.ctx, ks1); err != nil {
		t.Fatalf("after restoring the rows: %v", err)
	}
}

func TestDestroyErasesPrivate(t *testing.T) {
	e := newTestStore(t)
	ks := e.keyset(t, KindPGP)
	id := e.mustImport(t, ks, OwnerSelf, pgpSecret(t, 0), ImportOptions{})[0].ID
	var sealed []byte
	e.db.QueryRow(`SELECT private_sealed FROM keystore_keys WHERE id = ?`, id).Scan(&sealed)
	if len(sealed) < 500 {
		t.Fatalf("sealed blob of %d bytes", len(sealed))
	}
	if bytes.Contains(sealed, pgpSecret(t, 0)[:200]) {
		t.Fatal("private key stored in clear")
	}
	if err := e.s.SetState(e.ctx, "t", ks, id, StateDestroyed); !errors.Is(err, ErrIllegalTransition) {
		t.Fatalf("pending → destroyed: %v", err)
	}
	e.mustSet(t, ks, id, StateDisabled)
	e.mustSet(t, ks, id, StateDestroyed)

	var n int
	e.db.QueryRow(`SELECT COUNT(*) FROM keystore_keys WHERE id = ? AND private_sealed IS NULL`, id).Scan(&n)
	if n != 1 {
		t.Fatal("private_sealed not NULL after destroy")
	}
	infos, _ := e.s.List(e.ctx, ks)
	if infos[0].HasPrivate || infos[0].State != StateDestroyed {
		t.Fatalf("list after destroy: %+v", infos[0])
	}
	snap, err := e.s.Keyset(e.ctx, ks)
	if err != nil {
		t.Fatal(err)
	}
	if k := snap.Key(id); k.PGP.PrivateKey != nil || k.Usable() {
		t.Fatal("destroyed key still carries a private key or is usable")
	}
	// The wrapped blob is gone from the files too (secure_delete +
	// checkpoint): search a 64-byte window of it.
	for _, f := range []string{e.path, e.path + "-wal"} {
		raw, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if bytes.Contains(raw, sealed[100:164]) {
			t.Fatalf("%s still holds the wrapped private key", f)
		}
	}
	if err := e.s.SetState(e.ctx, "t", ks, id, StateActive); !errors.Is(err, ErrIllegalTransition) {
		t.Fatalf("destroyed is not final: %v", err)
	}
}

func TestSnapshots(t *testing.T) {
	e := newTestStore(t)
	ks := e.keyset(t, KindPGP)
	id := e.mustImport(t, ks, OwnerSelf, pgpSecret(t, 0), ImportOptions{})[0].ID
	old, err := e.s.Keyset(e.ctx, ks)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := e.s.Keyset(e.ctx, ks); again != old {
		t.Fatal("unchanged keyset not served from cache")
	}
	if old.Key(id).PGP.PrivateKey == nil || old.Key(id).PGP.PrivateKey.Encrypted {
		t.Fatal("snapshot lacks the decrypted private key")
	}
	v := e.s.Version()
	e.mustSet(t, ks, id, StateActive)
	e.mustSet(t, ks, id, StatePrimary)
	if e.s.Version() != v+2 {
		t.Fatalf("version %d, want %d", e.s.Version(), v+2)
	}
	cur, err := e.s.Keyset(e.ctx, ks)
	if err != nil {
		t.Fatal(err)
	}
	if cur == old || cur.Primary(OwnerSelf) == nil {
		t.Fatal("change not visible in a new snapshot")
	}
	// The old snapshot is untouched and still works.
	if old.Key(id).State != StatePending || old.Primary(OwnerSelf) != nil || len(old.Usable(OwnerSelf)) != 0 {
		t.Fatal("old snapshot changed")
	}
	if old.ByPGPKeyID(old.Key(id).PGP.Subkeys[0].PublicKey.KeyId) == nil {
		t.Fatal("old snapshot index broken")
	}
	// Disabling takes the private key out of memory.
	e.mustSet(t, ks, id, StateDisabled)
	cur, _ = e.s.Keyset(e.ctx, ks)
	if cur.Key(id).PGP.PrivateKey != nil {
		t.Fatal("disabled key still decrypted in the snapshot")
	}
}

func TestSyncAcrossProcesses(t *testing.T) {
	e := newTestStore(t)
	ks := e.keyset(t, KindPGP)
	id := e.mustImport(t, ks, OwnerPeer, pgpPublic(t, 0), ImportOptions{})[0].ID
	other, err := e.reopen(t, e.kek)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := e.s.Keyset(e.ctx, ks)
	if err := other.SetState(e.ctx, "admin", ks, id, StateActive); err != nil {
		t.Fatal(err)
	}
	if stale, _ := e.s.Keyset(e.ctx, ks); stale != before {
		t.Fatal("expected the cached snapshot before Sync")
	}
	changed, err := e.s.Sync(e.ctx)
	if err != nil || !changed {
		t.Fatalf("Sync: %v %v", changed, err)
	}
	now, _ := e.s.Keyset(e.ctx, ks)
	if now.Key(id).State != StateActive {
		t.Fatal("change from the other process not seen after Sync")
	}
	if changed, _ := e.s.Sync(e.ctx); changed {
		t.Fatal("Sync reported a change twice")
	}
}

func TestRotateKEK(t *testing.T) {
	e := newTestStore(t)
	ks := e.keyset(t, KindPGP)
	id := e.mustImport(t, ks, OwnerSelf, pgpSecret(t, 0), ImportOptions{})[0].ID
	next, _ := GenerateKEK()
	if err := e.s.RotateKEK(e.ctx, "ops", next); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reopen(t, e.kek); !errors.Is(err, ErrWrongKEK) {
		t.Fatalf("old KEK after rotation: %v", err)
	}
	s2, err := e.reopen(t, next)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := s2.Keyset(e.ctx, ks)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Key(id).PGP.PrivateKey == nil {
		t.Fatal("private key lost in rotation")
	}
	// The rotating store itself keeps working (new writes use next).
	if _, err := e.s.Import(e.ctx, "t", ks, OwnerSelf, pgpSecret(t, 1), ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	s3, _ := e.reopen(t, next)
	if _, err := s3.Keyset(e.ctx, ks); err != nil {
		t.Fatalf("key written after rotation: %v", err)
	}
}

func TestImportRefusals(t *testing.T) {
	small := func() []byte {
		ent, err := openpgp.NewEntity("small", "", "", &packet.Config{RSABits: 1024})
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		ent.Serialize(&b)
		return b.Bytes()
	}()
	revoked := func() []byte {
		ent := entityOf(t, pgpSecret(t, 0))
		if err := ent.RevokeKey(packet.KeyCompromised, "test", nil); err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		ent.Serialize(&b)
		return b.Bytes()
	}()
	signOnly := func() []byte {
		ent := entityOf(t, pgpSecret(t, 0))
		ent.Subkeys = nil
		var b bytes.Buffer
		ent.Serialize(&b)
		return b.Bytes()
	}()
	expired := func() []byte {
		// Valid for one day, two days ago.
		cfg := &packet.Config{RSABits: 2048, KeyLifetimeSecs: 86400, Time: func() time.Time { return time.Now().Add(-48 * time.Hour) }}
		ent, err := openpgp.NewEntity("old", "", "", cfg)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		ent.Serialize(&b)
		return b.Bytes()
	}()
	protected := func(pass string) []byte {
		ent := entityOf(t, pgpSecret(t, 1))
		if err := ent.EncryptPrivateKeys([]byte(pass), nil); err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		ent.SerializePrivateWithoutSigning(&b, nil)
		return b.Bytes()
	}("right")

	e := newTestStore(t)
	pgpKS, jwkKS := e.keyset(t, KindPGP), e.keyset(t, KindJWK)
	e.mustImport(t, pgpKS, OwnerPeer, pgpPublic(t, 2), ImportOptions{})
	smallJWK := func() []byte {
		return []byte(`{"kty":"RSA","kid":"small","e":"AQAB","n":"` + strings.Repeat("A", 170) + `w"}`)
	}()

	cases := []struct {
		name  string
		ks    string
		owner Owner
		data  []byte
		opts  ImportOptions
		want  error
	}{
		{"RSA-1024 PGP", pgpKS, OwnerPeer, small, ImportOptions{}, ErrWeakKey},
		{"revoked PGP", pgpKS, OwnerPeer, revoked, ImportOptions{}, ErrRevoked},
		{"no encryption subkey", pgpKS, OwnerPeer, signOnly, ImportOptions{}, ErrNoEncryptionKey},
		{"expired PGP", pgpKS, OwnerPeer, expired, ImportOptions{}, ErrExpired},
		{"private for peer", pgpKS, OwnerPeer, pgpSecret(t, 0), ImportOptions{}, ErrUnexpectedPrivate},
		{"public for self", pgpKS, OwnerSelf, pgpPublic(t, 0), ImportOptions{}, ErrNoPrivateKey},
		{"no passphrase", pgpKS, OwnerSelf, protected, ImportOptions{}, ErrPassphraseRequired},
		{"wrong passphrase", pgpKS, OwnerSelf, protected, ImportOptions{Passphrase: []byte("wrong")}, ErrBadPassphrase},
		{"duplicate", pgpKS, OwnerPeer, pgpPublic(t, 2), ImportOptions{}, ErrDuplicateKey},
		{"same key twice in input", pgpKS, OwnerPeer, append(append([]byte{}, pgpPublic(t, 0)...), pgpPublic(t, 0)...), ImportOptions{}, ErrDuplicateKey},
		{"garbage", pgpKS, OwnerPeer, []byte("not a key"), ImportOptions{}, ErrMalformed},
		{"JWK into PGP keyset", pgpKS, OwnerPeer, jwkJSON(t, 0, false, "x", ""), ImportOptions{}, ErrKindMismatch},
		{"PGP into JWK keyset", jwkKS, OwnerPeer, pgpPublic(t, 0), ImportOptions{}, ErrKindMismatch},
		{"symmetric JWK", jwkKS, OwnerPeer, []byte(`{"kty":"oct","kid":"s","k":"c2VjcmV0c2VjcmV0c2VjcmV0"}`), ImportOptions{}, ErrSymmetricKey},
		{"symmetric in JWKS", jwkKS, OwnerSelf, []byte(`{"keys":[` + string(jwkJSON(t, 0, true, "a", "")) + `,{"kty":"oct","k":"c2VjcmV0"}]}`), ImportOptions{}, ErrSymmetricKey},
		{"RSA-1024 JWK", jwkKS, OwnerPeer, smallJWK, ImportOptions{}, ErrWeakKey},
		{"private JWK for peer", jwkKS, OwnerPeer, jwkJSON(t, 0, true, "p", ""), ImportOptions{}, ErrUnexpectedPrivate},
		{"public JWK for self", jwkKS, OwnerSelf, jwkJSON(t, 0, false, "p", ""), ImportOptions{}, ErrNoPrivateKey},
		{"expired JWK", jwkKS, OwnerPeer, jwkJSON(t, 0, false, "p", ""), ImportOptions{Expires: time.Now().Add(-time.Hour)}, ErrExpired},
		{"empty JWKS", jwkKS, OwnerPeer, []byte(`{"keys":[]}`), ImportOptions{}, ErrNoKeys},
		{"bad JSON", jwkKS, OwnerPeer, []byte(`{"keys":`), ImportOptions{}, ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before, _ := e.s.List(e.ctx, c.ks)
			_, err := e.s.Import(e.ctx, "t", c.ks, c.owner, c.data, c.opts)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			after, _ := e.s.List(e.ctx, c.ks)
			if len(after) != len(before) {
				t.Fatal("refused import left keys behind")
			}
		})
	}

	t.Run("AllowExpired lands disabled", func(t *testing.T) {
		got, err := e.s.Import(e.ctx, "t", pgpKS, OwnerPeer, expired, ImportOptions{AllowExpired: true})
		if err != nil {
			t.Fatal(err)
		}
		if got[0].State != StateDisabled {
			t.Fatalf("state %s, want disabled", got[0].State)
		}
	})
	t.Run("passphrase-protected with passphrase", func(t *testing.T) {
		got, err := e.s.Import(e.ctx, "t", pgpKS, OwnerSelf, protected, ImportOptions{Passphrase: []byte("right")})
		if err != nil {
			t.Fatal(err)
		}
		snap, err := e.s.Keyset(e.ctx, pgpKS)
		if err != nil {
			t.Fatal(err)
		}
		k := snap.Key(got[0].ID)
		if k.PGP.PrivateKey.Encrypted || k.PGP.Subkeys[0].PrivateKey.Encrypted {
			t.Fatal("stored key still needs the passphrase")
		}
	})
}

func TestExpiry(t *testing.T) {
	e := newTestStore(t)
	ks := e.keyset(t, KindJWK)
	now := time.Now()
	for i, days := range []int{5, 20, 100} {
		e.mustImport(t, ks, OwnerPeer, jwkJSON(t, i, false, fmt.Sprintf("k%d", days), ""),
			ImportOptions{Expires: now.Add(time.Duration(days)*24*time.Hour + time.Hour)})
	}
	// A disabled key is not warned about.
	e.mustSet(t, ks, "k20", StateDisabled)
	for _, c := range []struct {
		within int
		want   []string
	}{{7, []string{"k5"}}, {30, []string{"k5"}}, {101, []string{"k5", "k100"}}, {1, nil}} {
		got, err := e.s.ExpiringWithin(e.ctx, c.within, now)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, k := range got {
			ids = append(ids, k.ID)
		}
		if fmt.Sprint(ids) != fmt.Sprint(c.want) {
			t.Errorf("within %d days: %v, want %v", c.within, ids, c.want)
		}
	}
	infos, _ := e.s.List(e.ctx, ks)
	snap, _ := e.s.Keyset(e.ctx, ks)
	for _, ki := range infos {
		d, ok := ki.DaysToExpiry(now)
		want := map[string]int{"k5": 5, "k20": 20, "k100": 100}[ki.ID]
		if !ok || d != want {
			t.Errorf("%s: DaysToExpiry %d %v, want %d", ki.ID, d, ok, want)
		}
		if d2, _ := snap.Key(ki.ID).DaysToExpiry(now); d2 != d {
			t.Errorf("%s: Key.DaysToExpiry %d != KeyInfo %d", ki.ID, d2, d)
		}
	}
	if d, ok := daysToExpiry(now.Add(-time.Hour), now); !ok || d != -1 {
		t.Errorf("expired an hour ago: %d", d)
	}
	if _, ok := daysToExpiry(time.Time{}, now); ok {
		t.Error("never-expiring key reports an expiry")
	}
}

// TestConcurrentReadersDuringRotation runs request-path readers against a
// rotating writer; run with -race. Every snapshot a reader sees is whole: it
// has exactly one self primary once the first promotion is done.
func TestConcurrentReadersDuringRotation(t *testing.T) {
	e := newTestStore(t)
	ks := e.keyset(t, KindPGP)
	a := e.mustImport(t, ks, OwnerSelf, pgpSecret(t, 0), ImportOptions{})[0].ID
	b := e.mustImport(t, ks, OwnerSelf, pgpSecret(t, 1), ImportOptions{})[0].ID
	e.mustSet(t, ks, a, StateActive)
	e.mustSet(t, ks, b, StateActive)
	e.mustSet(t, ks, a, StatePrimary)
	done := make(chan struct{})
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			for {
				select {
				case <-done:
					errs <- nil
					return
				default:
				}
				snap, err := e.s.Keyset(e.ctx, ks)
				if err != nil {
					errs <- err
					return
				}
				if p := snap.Primary(OwnerSelf); p == nil || p.PGP.PrivateKey == nil {
					errs <- fmt.Errorf("snapshot without a usable primary")
					return
				}
			}
		}()
	}
	for i := range 20 {
		next := []string{b, a}[i%2]
		e.mustSet(t, ks, next, StatePrimary)
	}
	close(done)
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestKeysetsDirectory(t *testing.T) {
	e := newTestStore(t)
	a, err := e.s.CreateKeyset(e.ctx, "ops", "acme", KindPGP, EnvSandbox)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.CreateKeyset(e.ctx, "ops", "acme", KindJWK, EnvSandbox); !errors.Is(err, ErrKeysetExists) {
		t.Fatalf("duplicate name: %v", err)
	}
	b, err := e.s.CreateKeyset(e.ctx, "ops", "acme", KindJWK, EnvProduction)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		env  Env
		want string
	}{{EnvSandbox, a.ID}, {EnvProduction, b.ID}} {
		got, err := e.s.FindKeyset(e.ctx, "acme", c.env)
		if err != nil || got.ID != c.want {
			t.Fatalf("%s: %+v %v", c.env, got, err)
		}
	}
	if _, err := e.s.FindKeyset(e.ctx, "nobody", EnvSandbox); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown name: %v", err)
	}
	if _, err := e.s.CreateKeyset(e.ctx, "ops", "x", Kind("rsa"), EnvSandbox); err == nil {
		t.Fatal("bad kind accepted")
	}
	all, _ := e.s.Keysets(e.ctx)
	if len(all) != 2 {
		t.Fatalf("%d keysets", len(all))
	}
	if _, err := e.s.Keyset(e.ctx, "ks_missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing keyset: %v", err)
	}
	evs, _ := e.s.Events(e.ctx, "")
	if len(evs) != 2 || evs[0].Actor != "ops" {
		t.Fatalf("events %+v", evs)
	}
}
