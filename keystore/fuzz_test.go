package keystore

import (
	"testing"
	"time"
)

// FuzzParseImport feeds untrusted bytes to the import parsers: whatever the
// input, they return keys or an error, never panic. The seeds run as part
// of go test; `go test -fuzz FuzzParseImport` explores further.
func FuzzParseImport(f *testing.F) {
	sec := pgpSecret(f, 0)
	arm := armorBytes(f, "PGP PRIVATE KEY BLOCK", sec)
	for _, seed := range [][]byte{
		sec, sec[:len(sec)/2], pgpPublic(f, 0)[:40], arm, arm[:len(arm)/2],
		[]byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n=AAAA\n-----END PGP PUBLIC KEY BLOCK-----\n"),
		jwkJSON(f, 0, true, "k", ""), []byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","d":"AA"}]}`),
		[]byte(`{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}`), {0x99, 0x01}, {},
	} {
		f.Add(seed)
	}
	now := time.Now()
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, kind := range []Kind{KindPGP, KindJWK} {
			for _, owner := range []Owner{OwnerSelf, OwnerPeer} {
				ms, err := parseImport(KeysetInfo{Kind: kind}, "ks", owner, data, ImportOptions{Passphrase: []byte("x")}, now)
				if err == nil && len(ms) == 0 {
					t.Fatal("no error and no keys")
				}
			}
		}
	})
}
