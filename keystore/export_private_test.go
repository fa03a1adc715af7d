package keystore

import (
	"bytes"
	"context"
	"testing"
)

// TestExportPrivateRoundTrip checks that an exported private key imports
// into another keyset as a self key with the same id, for both kinds, and
// that peer keys are never exported.
func TestExportPrivateRoundTrip(t *testing.T) {
	ctx := context.Background()
	for _, kind := range []Kind{KindPGP, KindJWK} {
		t.Run(string(kind), func(t *testing.T) {
			s := newTestStore(t).s
			src, err := s.CreateKeyset(ctx, "test", "src", kind, EnvSandbox)
			if err != nil {
				t.Fatal(err)
			}
			k, err := s.Generate(ctx, "test", src.ID, GenerateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			priv, err := s.ExportPrivate(ctx, src.ID, k.ID)
			if err != nil {
				t.Fatal(err)
			}
			if kind == KindPGP && !bytes.Contains(priv, []byte("PRIVATE KEY BLOCK")) {
				t.Fatalf("not an armored secret key: %.60q", priv)
			}
			dst, err := s.CreateKeyset(ctx, "test", "dst", kind, EnvSandbox)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Import(ctx, "test", dst.ID, OwnerSelf, priv, ImportOptions{Expires: k.Expires})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].ID != k.ID || !got[0].HasPrivate {
				t.Fatalf("imported %+v, want self key %s with private material", got, k.ID)
			}
			pub, err := s.ExportPublic(ctx, src.ID, k.ID)
			if err != nil {
				t.Fatal(err)
			}
			peerSet, err := s.CreateKeyset(ctx, "test", "peer", kind, EnvSandbox)
			if err != nil {
				t.Fatal(err)
			}
			peers, err := s.Import(ctx, "test", peerSet.ID, OwnerPeer, pub, ImportOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.ExportPrivate(ctx, peerSet.ID, peers[0].ID); err == nil {
				t.Fatal("exported a peer key's private half")
			}
		})
	}
}
