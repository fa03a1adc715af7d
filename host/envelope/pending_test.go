package envelope

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/otpcgate/otpcgate/keystore"
)

// TestPendingKeysNotTrusted: a pending key (imported or generated, not yet
// activated) takes part in nothing. A message signed by Google's pending
// key is refused (ErrSignature); a message encrypted only to our pending
// key is refused (ErrEncryption) without the pending key even being
// tried; we neither encrypt to Google's pending key nor sign with our own.
// Each refusal has a control where the same key is active and the same
// message is accepted, so the refusal is the key state's doing.
func TestPendingKeysNotTrusted(t *testing.T) {
	ctx := context.Background()
	P, A, N := keystore.StatePrimary, keystore.StateActive, keystore.StatePending
	for _, f := range []Format{FormatPGP, FormatJOSE} {
		t.Run(string(f), func(t *testing.T) {
			ks := pgpKeyset
			id := func(n string) string { return fx(t, n).ID() }
			if f == FormatJOSE {
				ks, id = joseKeyset, jwkID
			}
			codecs := []Codec{mustCodec(t, f, Config{})}
			if f == FormatPGP {
				codecs = append(codecs, mustCodec(t, f, Config{PGP: PGPConfig{SignWithAllActive: true}}))
			}
			seal := func(c Codec, k *keystore.Keyset) []byte {
				t.Helper()
				b, err := c.Seal(ctx, k, payload)
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
			c := codecs[0]

			// Inbound, signed by Google's pending key.
			bySecond := seal(c, ks(t, self("google-2", P), peer("gw-a", P)))
			if _, err := c.Open(ctx, ks(t, self("gw-a", P), peer("google-1", P), peer("google-2", N)), bySecond); !errors.Is(err, ErrSignature) {
				t.Errorf("signed by a pending Google key: %v, want ErrSignature", err)
			}
			if _, err := c.Open(ctx, ks(t, self("gw-a", P), peer("google-1", P), peer("google-2", A)), bySecond); err != nil {
				t.Errorf("control, the same key active: %v", err)
			}

			// Inbound, encrypted only to our pending key.
			toPending := seal(c, ks(t, self("google-1", P), peer("gw-b", P)))
			_, err := c.Open(ctx, ks(t, self("gw-a", P), self("gw-b", N), peer("google-1", P)), toPending)
			if !errors.Is(err, ErrEncryption) {
				t.Errorf("encrypted to our pending key: %v, want ErrEncryption", err)
			}
			var ee *EncryptionError
			if errors.As(err, &ee) && slices.Contains(ee.Tried, id("gw-b")) {
				t.Errorf("the pending key was tried: %v", ee.Tried)
			}
			if op, err := c.Open(ctx, ks(t, self("gw-a", P), self("gw-b", A), peer("google-1", P)), toPending); err != nil || op.DecryptedBy != id("gw-b") {
				t.Errorf("control, the same key active: %+v %v", op, err)
			}

			for _, c := range codecs {
				// Outbound: never encrypted to Google's pending key; never
				// signed with our pending key.
				out := seal(c, ks(t, self("gw-a", P), self("gw-b", N), peer("google-1", P), peer("google-2", N)))
				if _, err := c.Open(ctx, ks(t, self("google-2", P), peer("gw-a", P), peer("gw-b", A)), out); !errors.Is(err, ErrEncryption) {
					t.Errorf("sealed to Google's pending key: %v, want ErrEncryption", err)
				}
				if _, err := c.Open(ctx, ks(t, self("google-1", P), peer("gw-b", P)), out); !errors.Is(err, ErrSignature) {
					t.Errorf("signed with our pending key: %v, want ErrSignature", err)
				}
				if op, err := c.Open(ctx, ks(t, self("google-1", P), peer("gw-a", P)), out); err != nil || op.VerifiedBy != id("gw-a") {
					t.Errorf("control, Google opens with its active key and our primary: %+v %v", op, err)
				}
			}
		})
	}
}
