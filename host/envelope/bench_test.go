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
// BenchmarkOpen and BenchmarkSeal interleave the envelope operation with the
// raw crypto/rsa operations it contains and report the ratios (see
// benchEnvelope); BenchmarkRSA gives the same raw operations on their own.
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

// BenchmarkRSA is the baseline: the raw crypto/rsa operations the envelopes
// contain, by format, key size and direction.
func BenchmarkRSA(b *testing.B) {
	for _, f := range []Format{FormatPGP, FormatJOSE} {
		for _, bits := range []int{2048, 3072} {
			for _, open := range []bool{true, false} {
				dir := map[bool]string{true: "open", false: "seal"}[open]
				ops := rsaOpsFor(b, f, bits, open)
				b.Run(fmt.Sprintf("%s/%d/%s/private", f, bits, dir), func(b *testing.B) {
					defer lockThread()()
					start := threadCPU()
					for b.Loop() {
						ops.private()
					}
					b.ReportMetric(float64((threadCPU()-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
				})
				b.Run(fmt.Sprintf("%s/%d/%s/private+public", f, bits, dir), func(b *testing.B) {
					defer lockThread()()
					start := threadCPU()
					for b.Loop() {
						ops.private()
						ops.public()
					}
					b.ReportMetric(float64((threadCPU()-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
				})
			}
		}
	}
}

// benchEnvelope times, in every iteration and one after the other, the
// envelope operation with a 1-key and a 10-key keyset and the raw RSA
// private and public operations it contains. Interleaving makes the ratios
// robust on a shared machine: every part sees the same conditions. The parts
// are timed with the thread's CPU clock (Linux), so time spent waiting for a
// core does not count. ns/op is the wall time of the whole iteration; the
// metrics are the parts:
//
//	cpu-ns/env-keys=1, cpu-ns/env-keys=10, cpu-ns/rsa-private, cpu-ns/rsa-public
//	x-private    = env(keys=1) ÷ rsa-private        (goal ≤ 1.10)
//	x-rsa        = env(keys=1) ÷ (private + public)
//	x-keys10     = env(keys=10) ÷ env(keys=1)         (goal ≤ 1.00 + noise)
func benchEnvelope(b *testing.B, size int, ops rsaOps, env1, env10 func()) {
	defer lockThread()()
	var tEnv1, tEnv10, tPriv, tPub time.Duration
	n := 0
	b.SetBytes(int64(size))
	for b.Loop() {
		t0 := threadCPU()
		env1()
		t1 := threadCPU()
		env10()
		t2 := threadCPU()
		ops.private()
		t3 := threadCPU()
		ops.public()
		t4 := threadCPU()
		tEnv1 += t1 - t0
		tEnv10 += t2 - t1
		tPriv += t3 - t2
		tPub += t4 - t3
		n++
	}
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(n) }
	b.ReportMetric(per(tEnv1), "cpu-ns/env-keys=1")
	b.ReportMetric(per(tEnv10), "cpu-ns/env-keys=10")
	b.ReportMetric(per(tPriv), "cpu-ns/rsa-private")
	b.ReportMetric(per(tPub), "cpu-ns/rsa-public")
	b.ReportMetric(per(tEnv1)/per(tPriv), "x-private")
	b.ReportMetric(per(tEnv1)/(per(tPriv)+per(tPub)), "x-rsa")
	b.ReportMetric(per(tEnv10)/per(tEnv1), "x-keys10")
}

func BenchmarkOpen(b *testing.B) {
	ctx := context.Background()
	for _, f := range []Format{FormatPGP, FormatJOSE} {
		c := mustCodec(b, f, Config{})
		for _, bits := range []int{2048, 3072} {
			ks1, ks10 := benchKeyset(b, f, bits, 1, false), benchKeyset(b, f, bits, 10, false)
			ops := rsaOpsFor(b, f, bits, true)
			for _, size := range []int{1 << 10, 16 << 10} {
				body, err := c.Seal(ctx, benchKeyset(b, f, bits, 1, true), benchPayload(size))
				if err != nil {
					b.Fatal(err)
				}
				open := func(ks *keystore.Keyset) func() {
					return func() {
						if _, err := c.Open(ctx, ks, body); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.Run(fmt.Sprintf("%s/%d/%dKiB", f, bits, size>>10), func(b *testing.B) {
					benchEnvelope(b, size, ops, open(ks1), open(ks10))
				})
			}
		}
	}
}

func BenchmarkSeal(b *testing.B) {
	ctx := context.Background()
	for _, f := range []Format{FormatPGP, FormatJOSE} {
		c := mustCodec(b, f, Config{})
		for _, bits := range []int{2048, 3072} {
			ks1, ks10 := benchKeyset(b, f, bits, 1, false), benchKeyset(b, f, bits, 10, false)
			ops := rsaOpsFor(b, f, bits, false)
			for _, size := range []int{1 << 10, 16 << 10} {
				pl := benchPayload(size)
				seal := func(ks *keystore.Keyset) func() {
					return func() {
						if _, err := c.Seal(ctx, ks, pl); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.Run(fmt.Sprintf("%s/%d/%dKiB", f, bits, size>>10), func(b *testing.B) {
					benchEnvelope(b, size, ops, seal(ks1), seal(ks10))
				})
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
				cpu0 := processCPU()
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
				// req/s is what this run got on a possibly shared machine;
				// cpu-ns/op is the process CPU (all threads, GC included)
				// per round trip, so 1e9/cpu-ns/op is req/s per free core.
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
				b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
			})
		}
	}
}
