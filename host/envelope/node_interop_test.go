package envelope

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/otpcgate/otpcgate/internal/testenv"
	"github.com/otpcgate/otpcgate/keystore"
)

// nodeDir holds the node interop project (installed by scripts/setup).
var nodeDir = filepath.Join("..", "..", "testdata", "interop", "node")

// nodeReq / nodeResp mirror the JSON of testdata/interop/node/*.mjs.
type nodeReq struct {
	Payload    string             `json:"payload,omitempty"`
	SignJwk    *jose.JSONWebKey   `json:"signJwk,omitempty"`
	EncJwk     *jose.JSONWebKey   `json:"encJwk,omitempty"`
	SigAlg     string             `json:"sigAlg,omitempty"`
	KeyAlg     string             `json:"keyAlg,omitempty"`
	Enc        string             `json:"enc,omitempty"`
	Zip        bool               `json:"zip,omitempty"`
	SignKid    string             `json:"signKid,omitempty"`
	EncKid     string             `json:"encKid,omitempty"`
	Body       string             `json:"body,omitempty"`
	DecJwk     *jose.JSONWebKey   `json:"decJwk,omitempty"`
	VerifyJwks []*jose.JSONWebKey `json:"verifyJwks,omitempty"`
	KeyAlgs    []string           `json:"keyAlgs,omitempty"`
	Encs       []string           `json:"encs,omitempty"`
	SigAlgs    []string           `json:"sigAlgs,omitempty"`
	name       string             // for messages only
	cfg        *JOSEConfig        // codec configuration (us → node)
	ks         *keystore.Keyset   // keyset (us → node)
}

type nodeResp struct {
	Body      string         `json:"body"`
	Payload   string         `json:"payload"`
	JweHeader map[string]any `json:"jweHeader"`
	JwsHeader map[string]any `json:"jwsHeader"`
	Error     string         `json:"error"`
}

// runNode runs one of the node drivers on a batch of requests (one process
// per batch keeps the test fast).
func runNode(t *testing.T, script, mode string, reqs []nodeReq, nodeFlags ...string) []nodeResp {
	t.Helper()
	node := testenv.LookPath(t, "node", "Node.js runs the npm jose / node-jose packages")
	if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "jose")); err != nil {
		testenv.SkipOrFail(t, "testdata/interop/node/node_modules missing; run ./scripts/setup")
	}
	in, err := json.Marshal(reqs)
	if err != nil {
		t.Fatal(err)
	}
	args := append(append([]string{}, nodeFlags...), script, mode)
	cmd := exec.Command(node, args...)
	cmd.Dir = nodeDir
	cmd.Stdin = bytes.NewReader(in)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %v: %v\n%s", args, err, errb.String())
	}
	// The result is the last line: node prints warnings (e.g. for
	// --security-revert) to stdout before it.
	lines := bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n"))
	var resps []nodeResp
	if err := json.Unmarshal(lines[len(lines)-1], &resps); err != nil || len(resps) != len(reqs) {
		t.Fatalf("node %v: bad output (%v): %s\n%s", args, err, out.String(), errb.String())
	}
	return resps
}

// joseInteropKeyset is the gateway's JWK keyset with RSA-2048, RSA-3072 and
// P-256 keys on both sides; flip swaps the roles (Google's view).
func joseInteropKeyset(t *testing.T, flip bool) *keystore.Keyset {
	P, A := keystore.StatePrimary, keystore.StateActive
	s, p := self, peer
	if flip {
		s, p = peer, self
	}
	return joseKeyset(t, s("gw-a", P), s("gw-3072", A), s("ec-gw", A), p("google-1", P), p("google-3072", A), p("ec-google", A))
}

func pubJWK(t *testing.T, name string) *jose.JSONWebKey {
	if name[:3] == "ec-" {
		return ecJWK(name, keystore.OwnerPeer)
	}
	return jwkOf(t, name, keystore.OwnerPeer)
}

func privJWK(t *testing.T, name string) *jose.JSONWebKey {
	if name[:3] == "ec-" {
		return ecJWK(name, keystore.OwnerSelf)
	}
	return jwkOf(t, name, keystore.OwnerSelf)
}

// TestNodeToUs: JWS-in-JWE made by the npm `jose` package (every allowed
// algorithm except RSA1_5) and by `node-jose` (RSA1_5) open in our codec.
func TestNodeToUs(t *testing.T) {
	ctx := context.Background()
	c := mustCodec(t, FormatJOSE, Config{})
	gw := joseInteropKeyset(t, false)
	b64payload := base64.StdEncoding.EncodeToString(payload)
	mk := func(signer, recipient, keyAlg, enc, sigAlg string, zip, kids bool) nodeReq {
		r := nodeReq{
			Payload: b64payload, SignJwk: privJWK(t, signer), EncJwk: pubJWK(t, recipient),
			SigAlg: sigAlg, KeyAlg: keyAlg, Enc: enc, Zip: zip,
			name: fmt.Sprintf("%s→%s %s/%s/%s zip=%v kids=%v", signer, recipient, keyAlg, enc, sigAlg, zip, kids),
		}
		if kids {
			r.SignKid, r.EncKid = jwkID(signer), jwkID(recipient)
		}
		return r
	}
	var joseReqs, nodeJoseReqs []nodeReq
	for _, enc := range DefaultJWEContentEncryptions() {
		for _, sig := range []string{"RS256", "PS256"} {
			for _, zip := range []bool{true, false} {
				joseReqs = append(joseReqs, mk("google-1", "gw-a", "RSA-OAEP-256", enc, sig, zip, true))
			}
		}
		for _, zip := range []bool{true, false} {
			nodeJoseReqs = append(nodeJoseReqs, mk("google-1", "gw-a", "RSA1_5", enc, "RS256", zip, true))
		}
	}
	joseReqs = append(joseReqs,
		mk("google-3072", "gw-3072", "RSA-OAEP-256", "A256GCM", "RS256", true, true),
		mk("google-3072", "gw-3072", "RSA-OAEP-256", "A128CBC-HS256", "PS256", false, true),
		mk("ec-google", "ec-gw", "ECDH-ES+A256KW", "A256GCM", "ES256", true, true),
		mk("google-1", "gw-a", "RSA-OAEP-256", "A256GCM", "RS256", true, false), // no kid: every key is tried
	)
	nodeJoseReqs = append(nodeJoseReqs,
		mk("google-3072", "gw-3072", "RSA1_5", "A128CBC-HS256", "RS256", true, true),
		mk("google-1", "gw-a", "RSA1_5", "A256CBC-HS512", "PS256", true, true),
	)
	for _, batch := range []struct {
		script string
		reqs   []nodeReq
	}{{"jose.mjs", joseReqs}, {"nodejose.mjs", nodeJoseReqs}} {
		resps := runNode(t, batch.script, "seal", batch.reqs)
		for i, r := range resps {
			req := batch.reqs[i]
			t.Run(batch.script+" "+req.name, func(t *testing.T) {
				if r.Error != "" {
					t.Fatalf("node: %s", r.Error)
				}
				h := joseHeader(t, r.Body)
				if h["alg"] != req.KeyAlg || h["enc"] != req.Enc || (h["zip"] == "DEF") != req.Zip {
					t.Fatalf("node produced header %v", h)
				}
				op, err := c.Open(ctx, gw, []byte(r.Body))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(op.Plaintext, payload) {
					t.Errorf("plaintext %q", op.Plaintext)
				}
				if op.VerifiedBy != req.SignJwk.KeyID || op.DecryptedBy != req.EncJwk.KeyID {
					t.Errorf("verified by %s decrypted by %s", op.VerifiedBy, op.DecryptedBy)
				}
				if req.EncKid != "" && len(op.Tried) != 1 {
					t.Errorf("tried %v despite kid", op.Tried)
				}
			})
		}
	}
}

// TestUsToNode: what our codec seals, `jose` (and, for RSA1_5, node-jose)
// decrypt and verify.
func TestUsToNode(t *testing.T) {
	ctx := context.Background()
	gw := joseInteropKeyset(t, false)
	gw3072 := joseKeyset(t, self("gw-3072", keystore.StatePrimary), peer("google-3072", keystore.StatePrimary))
	gwEC := joseKeyset(t, self("ec-gw", keystore.StatePrimary), peer("ec-google", keystore.StatePrimary))
	all := func(names ...string) []*jose.JSONWebKey {
		var out []*jose.JSONWebKey
		for _, n := range names {
			out = append(out, pubJWK(t, n))
		}
		return out
	}
	mk := func(ks *keystore.Keyset, dec string, cfg JOSEConfig) nodeReq {
		cfg.KeyAlgorithms = nil
		return nodeReq{
			DecJwk: privJWK(t, dec), VerifyJwks: all("gw-a", "gw-3072", "ec-gw"),
			KeyAlgs: DefaultJWEKeyAlgorithms(), Encs: DefaultJWEContentEncryptions(), SigAlgs: DefaultJWSAlgorithms(),
			name: fmt.Sprintf("%+v", cfg), cfg: &cfg, ks: ks,
		}
	}
	var joseReqs, rsa15Reqs []nodeReq
	for _, enc := range DefaultJWEContentEncryptions() {
		for _, sig := range []string{"RS256", "PS256"} {
			for _, noZip := range []bool{false, true} {
				joseReqs = append(joseReqs, mk(gw, "google-1", JOSEConfig{EmitKeyAlgorithm: "RSA-OAEP-256", EmitContentEncryption: enc, EmitSignatureAlgorithm: sig, NoCompression: noZip}))
			}
		}
		rsa15Reqs = append(rsa15Reqs, mk(gw, "google-1", JOSEConfig{EmitKeyAlgorithm: "RSA1_5", EmitContentEncryption: enc}))
	}
	joseReqs = append(joseReqs,
		mk(gw3072, "google-3072", JOSEConfig{}),
		mk(gwEC, "ec-google", JOSEConfig{}),
	)
	rsa15Reqs = append(rsa15Reqs, mk(gw3072, "google-3072", JOSEConfig{EmitKeyAlgorithm: "RSA1_5", EmitContentEncryption: "A128CBC-HS256"}))
	seal := func(reqs []nodeReq) {
		for i := range reqs {
			c := mustCodec(t, FormatJOSE, Config{JOSE: *reqs[i].cfg})
			body, err := c.Seal(ctx, reqs[i].ks, payload)
			if err != nil {
				t.Fatalf("%s: %v", reqs[i].name, err)
			}
			reqs[i].Body = string(body)
		}
	}
	seal(joseReqs)
	seal(rsa15Reqs)
	check := func(script string, reqs []nodeReq, resps []nodeResp) {
		for i, r := range resps {
			req := reqs[i]
			t.Run(script+" "+req.name, func(t *testing.T) {
				if r.Error != "" {
					t.Fatalf("node could not open our message: %s", r.Error)
				}
				got, _ := base64.StdEncoding.DecodeString(r.Payload)
				if !bytes.Equal(got, payload) {
					t.Errorf("payload %q", got)
				}
				if r.JweHeader["kid"] != req.DecJwk.KeyID || r.JwsHeader["kid"] == nil {
					t.Errorf("headers %v %v", r.JweHeader, r.JwsHeader)
				}
				if req.cfg.EmitKeyAlgorithm != "" && r.JweHeader["alg"] != req.cfg.EmitKeyAlgorithm {
					t.Errorf("alg %v", r.JweHeader["alg"])
				}
			})
		}
	}
	check("jose.mjs", joseReqs, runNode(t, "jose.mjs", "open", joseReqs))
	// Node.js refuses RSA PKCS#1 v1.5 decryption since CVE-2023-46809; the
	// documented revert flag turns it back on for this test-only oracle.
	check("nodejose.mjs", rsa15Reqs, runNode(t, "nodejose.mjs", "open", rsa15Reqs, "--security-revert=CVE-2023-46809"))
}
