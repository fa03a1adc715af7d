package envelope

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/otpcgate/otpcgate/keystore"
)

// Benchmarks. Run e.g.
//
//	go test ./host/envelope -run '^$' -bench . -benchtime 1s
//
// Every envelope benchmark reports, besides ns/op, its ratio to the raw
// crypto/rsa operations it contains, measured in the same run:
//   - x-private: envelope ns/op ÷ the RSA private-key operation(s)
//     (Open: one decryption; Seal: one signature). Goal ≤ 1.10.
//   - x-rsa: envelope ns/op ÷ all its RSA operations (private + public).
//
// keys=10 keysets hold ten self and ten peer keys: the real pair created
// last (worst place for a linear scan) and nine cheap Ed25519/X25519 (PGP) or
// P-256 (JWK) decoys per role. Decryption and verification pick keys by key
// id, so keys=10 should cost what keys=1 costs.

func benchPayload(n int) []byte {
	// JSON-shaped, partly random so compression does not erase the size.
	raw := make([]byte, n/2)
	rand.Read(raw)
	s := `{"requestHeader":{"protocolVersion":{"major":2}},"blob":"` + hex.EncodeToString(raw)
	return []byte(s[:n-2] + `"}`)
}

var (
	decoyOnce sync.Once
	decoyPGP  []*openpgp.Entity
	decoyJWK  []*jose.JSONWebKey
)

func decoys(tb testing.TB) ([]*openpgp.Entity, []*jose.JSONWebKey) {
	decoyOnce.Do(func() {
		for i := 0; i < 18; i++ {
			e, err := openpgp.NewEntity(fmt.Sprintf("decoy %d", i), "TEST-ONLY", "decoy@test.invalid",
				&packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, Time: func() time.Time { return time.Now().Add(-48 * time.Hour) }})
			if err != nil {
				panic(err)
			}
			decoyPGP = append(decoyPGP, e)
			k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				panic(err)
			}
			decoyJWK = append(decoyJWK, &jose.JSONWebKey{Key: k, KeyID: fmt.Sprintf("kid-decoy-%d", i)})
		}
	})
	return decoyPGP, decoyJWK
}

// benchKeyset returns the keyset of side "gw" (self gw, peer google) or the
// swapped one, with n keys per role.
func benchKeyset(tb testing.TB, f Format, bits, n int, swapped bool) *keystore.Keyset {
	gwName, googleName := "gw-a", "google-1"
	if bits == 3072 {
		gwName, googleName = "gw-3072", "google-3072"
	}
	selfName, peerName := gwName, googleName
	if swapped {
		selfName, peerName = googleName, gwName
	}
	P := keystore.StatePrimary
	var base *keystore.Keyset
	if f == FormatPGP {
		base = pgpKeyset(tb, self(selfName, P), peer(peerName, P))
	} else {
		base = joseKeyset(tb, self(selfName, P), peer(peerName, P))
	}
	keys := append([]*keystore.Key(nil), base.Keys...)
	dp, dj := decoys(tb)
	old := time.Now().Add(-1000 * 24 * time.Hour)
	for i := 0; i < 2*(n-1); i++ {
		// Peer decoys are "retiring": they verify but are not encrypted
		// to, so Seal does the same work whatever n is.
		owner, state := keystore.OwnerSelf, keystore.StateActive
		if i%2 == 1 {
			owner, state = keystore.OwnerPeer, keystore.StateRetiring
		}
		k := &keystore.Key{Kind: base.Kind, Owner: owner, State: state, Created: old.Add(time.Duration(i) * time.Second)}
		if f == FormatPGP {
			k.PGP = dp[i]
			k.ID = fmt.Sprintf("%X", dp[i].PrimaryKey.Fingerprint)
		} else {
			k.JWK = dj[i]
			k.ID = dj[i].KeyID
		}
		keys = append(keys, k)
	}
	ks, err := keystore.NewKeyset("bench", base.Kind, base.Env, keys)
	if err != nil {
		tb.Fatal(err)
	}
	return ks
}

// rsaOps are the raw crypto/rsa operations an envelope contains.
type rsaOps struct {
	private func() // the private-key operation(s)
	public  func() // the public-key operation(s)
}

// rsaOpsFor mirrors what the default codecs do: PGP uses PKCS#1 v1.5
// session-key encryption and SHA-384 PKCS#1 v1.5 signatures; JOSE uses
// RSA-OAEP-256 and RS256.
func rsaOpsFor(tb testing.TB, f Format, bits int, open bool) rsaOps {
	name := "gw-a"
	if bits == 3072 {
		name = "gw-3072"
	}
	priv := fx(tb, name).RSA()
	key := make([]byte, 32)
	rand.Read(key)
	h384 := sha512.Sum384(key)
	h256 := sha256.Sum256(key)
	var ct, sig []byte
	var err error
	if f == FormatPGP {
		ct, err = rsa.EncryptPKCS1v15(rand.Reader, &priv.PublicKey, key)
		if err == nil {
			sig, err = rsa.SignPKCS1v15(nil, priv, crypto.SHA384, h384[:])
		}
	} else {
		ct, err = rsa.EncryptOAEP(sha256.New(), rand.Reader, &priv.PublicKey, key, nil)
		if err == nil {
			sig, err = rsa.SignPKCS1v15(nil, priv, crypto.SHA256, h256[:])
		}
	}
	if err != nil {
		tb.Fatal(err)
	}
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	switch {
	case f == FormatPGP && open:
		return rsaOps{
			private: func() { _, err := priv.Decrypt(rand.Reader, ct, nil); must(err) },
			public:  func() { must(rsa.VerifyPKCS1v15(&priv.PublicKey, crypto.SHA384, h384[:], sig)) },
		}
	case f == FormatPGP:
		return rsaOps{
			private: func() { _, err := rsa.SignPKCS1v15(nil, priv, crypto.SHA384, h384[:]); must(err) },
			public:  func() { _, err := rsa.EncryptPKCS1v15(rand.Reader, &priv.PublicKey, key); must(err) },
		}
	case open:
		return rsaOps{
			private: func() { _, err := rsa.DecryptOAEP(sha256.New(), nil, priv, ct, nil); must(err) },
			public:  func() { must(rsa.VerifyPKCS1v15(&priv.PublicKey, crypto.SHA256, h256[:], sig)) },
		}
	default:
		return rsaOps{
			private: func() { _, err := rsa.SignPKCS1v15(nil, priv, crypto.SHA256, h256[:]); must(err) },
			public:  func() { _, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &priv.PublicKey, key, nil); must(err) },
		}
	}
}

// floors caches the baseline ns/op per (format, bits, direction, part) so
// each is measured once per run. testing.Benchmark cannot be nested in a
// benchmark (it waits for the lock the running benchmark holds), so the
// floor is timed directly: at least 300 ms and 20 iterations after warm-up.
var floors sync.Map

func floorNs(tb testing.TB, f Format, bits int, open, privateOnly bool) float64 {
	k := fmt.Sprint(f, bits, open, privateOnly)
	if v, ok := floors.Load(k); ok {
		return v.(float64)
	}
	ops := rsaOpsFor(tb, f, bits, open)
	run := func() {
		ops.private()
		if !privateOnly {
			ops.public()
		}
	}
	for i := 0; i < 3; i++ {
		run()
	}
	n := 0
	start := time.Now()
	for n < 20 || time.Since(start) < 300*time.Millisecond {
		run()
		n++
	}
	ns := float64(time.Since(start).Nanoseconds()) / float64(n)
	floors.Store(k, ns)
	return ns
}

// BenchmarkRSA is the baseline: the raw crypto/rsa operations the envelopes
// contain, by format, key size and direction.
func BenchmarkRSA(b *testing.B) {
	for _, f := range []Format{FormatPGP, FormatJOSE} {
		for _, bits := range []int{2048, 3072} {
			for _, open := range []bool{true, false} {
				dir := map[bool]string{true: "open", false: "seal"}[open]
				ops := rsaOpsFor(b, f, bits, open)
				b.Run(fmt.Sprintf("%s/%d/%s/private", f, bits, dir), func(b *testing.B) {
					for b.Loop() {
						ops.private()
					}
				})
				b.Run(fmt.Sprintf("%s/%d/%s/private+public", f, bits, dir), func(b *testing.B) {
					for b.Loop() {
						ops.private()
						ops.public()
					}
				})
			}
		}
	}
}

func reportRatios(b *testing.B, f Format, bits int, open bool) {
	perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(perOp/floorNs(b, f, bits, open, true), "x-private")
	b.ReportMetric(perOp/floorNs(b, f, bits, open, false), "x-rsa")
}

func BenchmarkOpen(b *testing.B) {
	ctx := context.Background()
	for _, f := range []Format{FormatPGP, FormatJOSE} {
		c := mustCodec(b, f, Config{})
		for _, bits := range []int{2048, 3072} {
			for _, size := range []int{1 << 10, 16 << 10} {
				pl := benchPayload(size)
				body, err := c.Seal(ctx, benchKeyset(b, f, bits, 1, true), pl)
				if err != nil {
					b.Fatal(err)
				}
				for _, n := range []int{1, 10} {
					ks := benchKeyset(b, f, bits, n, false)
					b.Run(fmt.Sprintf("%s/%d/%dKiB/keys=%d", f, bits, size>>10, n), func(b *testing.B) {
						floorNs(b, f, bits, true, true) // measure outside the timed loop
						floorNs(b, f, bits, true, false)
						b.SetBytes(int64(size))
						for b.Loop() {
							if _, err := c.Open(ctx, ks, body); err != nil {
								b.Fatal(err)
							}
						}
						reportRatios(b, f, bits, true)
					})
				}
			}
		}
	}
}

func BenchmarkSeal(b *testing.B) {
	ctx := context.Background()
	for _, f := range []Format{FormatPGP, FormatJOSE} {
		c := mustCodec(b, f, Config{})
		for _, bits := range []int{2048, 3072} {
			for _, size := range []int{1 << 10, 16 << 10} {
				pl := benchPayload(size)
				for _, n := range []int{1, 10} {
					ks := benchKeyset(b, f, bits, n, false)
					b.Run(fmt.Sprintf("%s/%d/%dKiB/keys=%d", f, bits, size>>10, n), func(b *testing.B) {
						floorNs(b, f, bits, false, true)
						floorNs(b, f, bits, false, false)
						b.SetBytes(int64(size))
						for b.Loop() {
							if _, err := c.Seal(ctx, ks, pl); err != nil {
								b.Fatal(err)
							}
						}
						reportRatios(b, f, bits, false)
					})
				}
			}
		}
	}
}

// BenchmarkRoundTrip is the crypto floor of one gateway request: open a 1 KiB
// request sealed by the peer, seal a 1 KiB response, on all cores. The
// gateway's end-to-end benchmark compares its throughput with this one.
func BenchmarkRoundTrip(b *testing.B) {
	ctx := context.Background()
	for _, f := range []Format{FormatPGP, FormatJOSE} {
		c := mustCodec(b, f, Config{})
		for _, bits := range []int{2048, 3072} {
			pl := benchPayload(1 << 10)
			req, err := c.Seal(ctx, benchKeyset(b, f, bits, 1, true), pl)
			if err != nil {
				b.Fatal(err)
			}
			ks := benchKeyset(b, f, bits, 1, false)
			b.Run(fmt.Sprintf("%s/%d", f, bits), func(b *testing.B) {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						op, err := c.Open(ctx, ks, req)
						if err != nil {
							b.Error(err)
							return
						}
						if _, err := c.Seal(ctx, ks, op.Plaintext); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
			})
		}
	}
}
