// Package keystoretest gives tests of other packages a real keystore on a
// temporary SQLite file and the key exchange of spec §11 between two
// keysets (ours and Google's), so each test does not assemble it again.
package keystoretest

import (
	"context"
	"database/sql"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/otpcgate/otpcgate/internal/db"
	"github.com/otpcgate/otpcgate/keystore"
)

// Actor is who the test's key changes are recorded as.
const Actor = "keystoretest"

// Open opens a keystore with a fresh KEK on a new SQLite file in tb's
// temporary directory, logging nowhere, and returns it with the database,
// which the test may share with other components (the ledger).
func Open(tb testing.TB) (*keystore.Store, *sql.DB) {
	tb.Helper()
	ctx := context.Background()
	d, err := db.Open(ctx, filepath.Join(tb.TempDir(), "keys.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	kek, err := keystore.GenerateKEK()
	if err != nil {
		tb.Fatal(err)
	}
	st, err := keystore.Open(ctx, d, kek)
	if err != nil {
		tb.Fatal(err)
	}
	st.SetLogger(slog.New(slog.DiscardHandler))
	return st, d
}

// Pair names two keysets that have exchanged keys.
type Pair struct {
	// Ours holds our key pair and Google's public key.
	Ours string
	// Google holds Google's key pair and our public key.
	Google string
}

// Exchange creates two keysets of kind, generates a primary key in each
// and gives each the other's public key as its primary peer key.
func Exchange(tb testing.TB, st *keystore.Store, kind keystore.Kind) Pair {
	tb.Helper()
	ctx := context.Background()
	var ids [2]string
	var pubs [2][]byte
	for i, name := range []string{"ours", "google"} {
		set, err := st.CreateKeyset(ctx, Actor, name, kind, keystore.EnvSandbox)
		if err != nil {
			tb.Fatal(err)
		}
		k, err := st.Generate(ctx, Actor, set.ID, keystore.GenerateOptions{Name: name})
		if err != nil {
			tb.Fatal(err)
		}
		Promote(tb, st, set.ID, k.ID)
		if pubs[i], err = st.ExportPublic(ctx, set.ID, k.ID); err != nil {
			tb.Fatal(err)
		}
		ids[i] = set.ID
	}
	for i, set := range ids {
		keys, err := st.Import(ctx, Actor, set, keystore.OwnerPeer, pubs[1-i], keystore.ImportOptions{})
		if err != nil {
			tb.Fatal(err)
		}
		for _, k := range keys {
			Promote(tb, st, set, k.ID)
		}
	}
	return Pair{Ours: ids[0], Google: ids[1]}
}

// Promote moves a key through active to primary.
func Promote(tb testing.TB, st *keystore.Store, keysetID, keyID string) {
	tb.Helper()
	for _, s := range []keystore.State{keystore.StateActive, keystore.StatePrimary} {
		if err := st.SetState(context.Background(), Actor, keysetID, keyID, s); err != nil {
			tb.Fatal(err)
		}
	}
}
