package envelope

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otpcgate/otpcgate/keystore"
)

// fuzzSeeds are sealed with the fixture keys, so the fuzzer starts from
// messages that decrypt and verify and mutates them. With -update-fixtures
// they are also written to testdata/fuzz/<Target>/ (the committed seed
// corpus, which plain `go test` runs too).
func fuzzSeeds(tb testing.TB, f Format) map[string][]byte {
	ctx := context.Background()
	out := map[string][]byte{}
	seal := func(name string, cfg Config, ks *keystore.Keyset) {
		body, err := mustCodec(tb, f, cfg).Seal(ctx, ks, payload)
		if err != nil {
			tb.Fatal(err)
		}
		out[name] = body
	}
	if f == FormatPGP {
		seal("binary", Config{}, googlePGP(tb))
		seal("armored-padded", Config{PGP: PGPConfig{Armor: true, Padded: true}}, googlePGP(tb))
		seal("compressed", Config{PGP: PGPConfig{Compress: true}}, googlePGP(tb))
		seal("two-recipients", Config{}, pgpKeyset(tb, self("google-1", keystore.StatePrimary), peer("gw-a", keystore.StatePrimary), peer("gw-b", keystore.StateActive)))
	} else {
		seal("default", Config{}, googleJOSE(tb))
		seal("rsa1_5-cbc", Config{JOSE: JOSEConfig{EmitKeyAlgorithm: "RSA1_5", EmitContentEncryption: "A128CBC-HS256"}}, googleJOSE(tb))
		seal("no-zip", Config{JOSE: JOSEConfig{NoCompression: true}}, googleJOSE(tb))
		out["dots"] = []byte("a.b.c.d.e")
	}
	if *updateFixtures {
		dir := filepath.Join("testdata", "fuzz", map[Format]string{FormatPGP: "FuzzOpenPGP", FormatJOSE: "FuzzOpenJOSE"}[f])
		if err := os.MkdirAll(dir, 0o755); err != nil {
			tb.Fatal(err)
		}
		for name, body := range out {
			data := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", body)
			if err := os.WriteFile(filepath.Join(dir, "seed-"+name), []byte(data), 0o644); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return out
}

// Run with a bounded minimization, e.g.
//
//	go test ./host/envelope -run '^$' -fuzz FuzzOpenPGP -fuzztime 5m -fuzzminimizetime 100x -parallel 1
//
// Without -fuzzminimizetime every new interesting input is minimized for up
// to 60 s, one RSA operation per attempt, and progress looks stalled.
//
// fuzzOpen checks the invariants of Open on arbitrary input: no panic (the
// codec's recover would hide one, so a recovered parser panic fails too),
// and either a fully attributed result or a classified error.
func fuzzOpen(f *testing.F, format Format, ks *keystore.Keyset) {
	for _, seed := range fuzzSeeds(f, format) {
		f.Add(seed)
	}
	f.Add([]byte(""))
	f.Add([]byte("-----BEGIN PGP MESSAGE-----\n\n-----END PGP MESSAGE-----"))
	c := mustCodec(f, format, Config{MaxBodyBytes: 64 << 10})
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, body []byte) {
		op, err := c.Open(ctx, ks, body)
		if err != nil {
			if op != nil {
				t.Fatal("result with error")
			}
			if strings.Contains(err.Error(), "parser panic") {
				t.Fatalf("parser panicked: %v", err)
			}
			if !errors.Is(err, ErrEncryption) && !errors.Is(err, ErrSignature) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		if op.DecryptedBy == "" || op.VerifiedBy == "" || len(op.Tried) == 0 {
			t.Fatalf("opened without attribution: %+v", op)
		}
	})
}

func FuzzOpenPGP(f *testing.F) { fuzzOpen(f, FormatPGP, gwPGP(f)) }

func FuzzOpenJOSE(f *testing.F) { fuzzOpen(f, FormatJOSE, gwJOSE(f)) }
