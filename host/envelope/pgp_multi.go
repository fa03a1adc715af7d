package envelope

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"fmt"
	"io"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/otpcgate/otpcgate/keystore"
)

// pgpSigners returns the signing keys for PGPConfig.SignWithAllActive: the
// self primary first, then every active, unexpired self key.
func pgpSigners(ks *keystore.Keyset, now time.Time) []*packet.PrivateKey {
	var out []*packet.PrivateKey
	add := func(k *keystore.Key) {
		if k.Expired(now) {
			return
		}
		if sk, ok := k.PGP.SigningKey(now); ok && sk.PrivateKey != nil && !sk.PrivateKey.Encrypted && sk.PrivateKey.Version == 4 {
			out = append(out, sk.PrivateKey)
		}
	}
	if p := ks.Primary(keystore.OwnerSelf); p != nil {
		add(p)
	}
	for _, k := range ks.Keys {
		if k.Owner == keystore.OwnerSelf && k.State == keystore.StateActive {
			add(k)
		}
	}
	return out
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// sealMulti writes a message signed by several keys, which go-crypto's v1
// Encrypt cannot do: one-pass signature packets for every signer, the
// literal data, the SHA-384 signatures in reverse order (RFC 4880 §5.4
// nesting), all inside an AES-256 SEIPD (MDC) with a PKESK per recipient.
func (c *pgpCodec) sealMulti(out io.Writer, to []*openpgp.Entity, signers []*packet.PrivateKey, plaintext []byte, pcfg *packet.Config) error {
	now := pcfg.Now()
	var inner bytes.Buffer
	for i, s := range signers {
		ops := &packet.OnePassSignature{
			Version: 3, SigType: packet.SigTypeBinary, Hash: crypto.SHA384,
			PubKeyAlgo: s.PubKeyAlgo, KeyId: s.KeyId, IsLast: i == len(signers)-1,
		}
		if err := ops.Serialize(&inner); err != nil {
			return err
		}
	}
	lw, err := packet.SerializeLiteral(nopWriteCloser{&inner}, true, "", 0)
	if err != nil {
		return err
	}
	if _, err := lw.Write(plaintext); err != nil {
		return err
	}
	if err := lw.Close(); err != nil {
		return err
	}
	for i := len(signers) - 1; i >= 0; i-- {
		s := signers[i]
		sig := &packet.Signature{
			Version: 4, SigType: packet.SigTypeBinary, PubKeyAlgo: s.PubKeyAlgo, Hash: crypto.SHA384,
			CreationTime: now, IssuerKeyId: &s.KeyId, IssuerKeyVersion: 4, IssuerFingerprint: s.Fingerprint,
		}
		h := crypto.SHA384.New()
		h.Write(plaintext)
		if err := sig.Sign(h, s, pcfg); err != nil {
			return fmt.Errorf("sign with %016X: %w", s.KeyId, err)
		}
		if err := sig.Serialize(&inner); err != nil {
			return err
		}
	}

	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	for _, e := range to {
		ek, ok := e.EncryptionKey(now)
		if !ok {
			return fmt.Errorf("recipient %016X has no valid encryption key", e.PrimaryKey.KeyId)
		}
		if err := packet.SerializeEncryptedKey(out, ek.PublicKey, packet.CipherAES256, key, pcfg); err != nil {
			return err
		}
	}
	w, err := packet.SerializeSymmetricallyEncrypted(out, packet.CipherAES256, false, packet.CipherSuite{}, key, pcfg)
	if err != nil {
		return err
	}
	if c.cfg.PGP.Compress {
		cw, err := packet.SerializeCompressed(nopWriteCloser{w}, packet.CompressionZLIB, nil)
		if err != nil {
			return err
		}
		if _, err := cw.Write(inner.Bytes()); err != nil {
			return err
		}
		if err := cw.Close(); err != nil {
			return err
		}
	} else if _, err := w.Write(inner.Bytes()); err != nil {
		return err
	}
	// Close writes the MDC; exactly once.
	return w.Close()
}
