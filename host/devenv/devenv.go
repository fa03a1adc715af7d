// Package devenv provisions and describes a development installation: the
// data directory `otpcgate dev` creates (a KEK, a self-signed certificate,
// two demo merchants with our keys and a simulated Google's, a demo
// association and plugin) and the dev.json that tells `otpcgate sim`, tests
// and external clients how to play Google against it. Nothing a production
// host assembles imports it.
package devenv

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/otpcgate/otpcgate/host/admin"
	"github.com/otpcgate/otpcgate/host/directory"
	"github.com/otpcgate/otpcgate/host/envelope"
	"github.com/otpcgate/otpcgate/host/google"
	"github.com/otpcgate/otpcgate/host/ledger"
	"github.com/otpcgate/otpcgate/internal/db"
	"github.com/otpcgate/otpcgate/internal/tlsutil"
	"github.com/otpcgate/otpcgate/keystore"
)

// SimGooglePath is where development installations serve the simulated
// Google's endpoints on the gateway's own listener (see gateway.Options.Extra); the
// dev merchants' Google endpoint points there.
const SimGooglePath = "/sim-google"

// MerchantName is the display name of both demo merchants.
const MerchantName = "Demo Konbini"

// File is the name of the file Provision writes into the data
// directory: what an external client needs to play Google.
const File = "dev.json"

// Info describes a provisioned development installation.
type Info struct {
	DataDir  string `json:"dataDir"`
	DBPath   string `json:"dbPath"`
	KEKFile  string `json:"kekFile"`
	CertFile string `json:"tlsCertFile"`
	KeyFile  string `json:"tlsKeyFile"`
	// Addr is the listen address dev serves on; BaseURL of each merchant
	// is built from it.
	Addr string `json:"addr"`
	// AdminURL is the admin API (merchant events) of the running dev
	// gateway, recorded by RecordAdmin; empty means the sim looks for
	// it in the configuration (admin.addr).
	AdminURL  string     `json:"adminUrl,omitempty"`
	Merchants []Merchant `json:"merchants"`
}

// Merchant is one demo merchant.
type Merchant struct {
	ID       string          `json:"id"`
	BaseURL  string          `json:"baseUrl"`
	BasePath string          `json:"basePath"`
	PIAID    string          `json:"piaid"`
	Envelope envelope.Format `json:"envelope"`
	// KeysetID holds our keys (self) and the simulated Google's public
	// keys (peer).
	KeysetID string `json:"keysetId"`
	// SimKeysetID holds the simulated Google's keys (self) and our public
	// keys (peer), for `otpcgate sim` and tests.
	SimKeysetID string `json:"simKeysetId"`
	// OurPublicKeys is the file with our public keys (armored PGP or JWKS).
	OurPublicKeys string `json:"ourPublicKeys"`
	// GooglePrivateKeys is the file with the simulated Google's private
	// keys (armored PGP secret keys or a private JWKS): development only.
	GooglePrivateKeys string `json:"googlePrivateKeys"`
	// GooglePublicKeys is the file with the simulated Google's public keys.
	GooglePublicKeys string `json:"googlePublicKeys"`
	// DemoToken is a Google payment token already associated with
	// DemoAccount, so generateReferenceNumber works at once.
	DemoToken   string `json:"demoToken"`
	DemoIssuer  string `json:"demoIssuer"`
	DemoAccount string `json:"demoAccount"`
	// Plugin is the plugin version the merchant runs.
	Plugin string `json:"plugin"`
	// MerchantToken is the secret of a merchant-scoped admin token, for
	// `otpcgate sim` to report merchant events over the merchant API
	// (development only; installations provisioned before it have none).
	MerchantToken string `json:"merchantToken,omitempty"`
}

// Plugin is the plugin build Provision installs for every demo merchant.
type Plugin struct {
	Version string
	Wasm    []byte
	Config  []byte
}

// GoogleTransport returns a transport to the simulated Google of a
// development installation: the gateway's own listener, whose self-signed
// certificate it trusts.
func (info *Info) GoogleTransport() (*http.Transport, error) {
	pool, err := tlsutil.ReadCertPool(info.CertFile)
	if err != nil {
		return nil, err
	}
	return google.NewTransport(&tls.Config{RootCAs: pool})
}

// Read reads dir/dev.json.
func Read(dir string) (*Info, error) {
	b, err := os.ReadFile(filepath.Join(dir, File))
	if err != nil {
		return nil, err
	}
	var info Info
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, fmt.Errorf("devenv: %s: %w", File, err)
	}
	return &info, nil
}

// Provision creates (once) a development installation in dir: a KEK,
// a self-signed ECDSA P-256 certificate, and two demo merchants, one PGP
// and one JWE, each with our keys, a simulated Google's keys, a demo
// association and plugin. If dir/dev.json exists it is returned unchanged,
// except that the plugin is refreshed when plugin differs.
func Provision(ctx context.Context, dir, addr string, plugin Plugin, log *slog.Logger) (*Info, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("devenv: dev data dir: %w", err)
	}
	info, err := Read(dir)
	if err == nil {
		return info, refreshPlugin(ctx, info, plugin, log)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	info = &Info{
		DataDir:  dir,
		DBPath:   filepath.Join(dir, "otpcgate.db"),
		KEKFile:  filepath.Join(dir, "kek"),
		CertFile: filepath.Join(dir, "tls-cert.pem"),
		KeyFile:  filepath.Join(dir, "tls-key.pem"),
		Addr:     addr,
	}
	kek, err := keystore.GenerateKEK()
	if err != nil {
		return nil, err
	}
	if err := keystore.WriteKEKFile(info.KEKFile, kek); err != nil {
		return nil, err
	}
	if err := tlsutil.WriteSelfSigned(info.CertFile, info.KeyFile, tlsutil.DevHosts(), 365*24*time.Hour); err != nil {
		return nil, err
	}
	d, err := db.Open(ctx, info.DBPath)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	ks, err := keystore.Open(ctx, d, kek)
	if err != nil {
		return nil, err
	}
	ks.SetLogger(log)
	l, err := ledger.New(ctx, d, ledger.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	defer l.Close()
	reg, err := directory.Open(ctx, d)
	if err != nil {
		return nil, err
	}
	tokens, err := admin.OpenTokens(ctx, d)
	if err != nil {
		return nil, err
	}
	for _, demo := range []struct {
		id, piaid string
		kind      keystore.Kind
	}{
		{"demo-pgp", "DEMO_PGP_JPY", keystore.KindPGP},
		{"demo-jose", "DEMO_JOSE_JPY", keystore.KindJWK},
	} {
		m, err := provisionMerchant(ctx, dir, addr, ks, l, reg, demo.id, demo.piaid, demo.kind, plugin)
		if err != nil {
			return nil, fmt.Errorf("devenv: dev merchant %s: %w", demo.id, err)
		}
		// A merchant token lets the sim report the merchant's events.
		if _, m.MerchantToken, err = tokens.Issue(ctx, admin.ScopeMerchant, demo.id, "otpcgate dev sim"); err != nil {
			return nil, fmt.Errorf("devenv: dev merchant %s token: %w", demo.id, err)
		}
		info.Merchants = append(info.Merchants, m)
	}
	if err := writeInfo(dir, info); err != nil {
		return nil, err
	}
	return info, nil
}

// writeInfo writes dir/dev.json (0600: it holds token secrets).
func writeInfo(dir string, info *Info) error {
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, File), append(b, '\n'), 0o600)
}

// RecordAdmin records in dir/dev.json where the dev gateway serves its
// admin API (addr as in admin.addr; "" records none), so `otpcgate sim`
// needs only the data directory. A loopback address is plain HTTP, any
// other HTTPS with the dev certificate (as the admin listener serves it).
func RecordAdmin(dir, addr string) (*Info, error) {
	info, err := Read(dir)
	if err != nil {
		return nil, err
	}
	url := ""
	if addr != "" {
		url = "https://" + addr
		if admin.IsLoopback(addr) {
			url = "http://" + addr
		}
	}
	if info.AdminURL == url {
		return info, nil
	}
	info.AdminURL = url
	return info, writeInfo(dir, info)
}

const devActor = "otpcgate dev"

func provisionMerchant(ctx context.Context, dir, addr string, ks *keystore.Store, l *ledger.Ledger, reg *directory.Store,
	id, piaid string, kind keystore.Kind, plugin Plugin) (Merchant, error) {
	format, err := envelope.ForKind(kind)
	if err != nil {
		return Merchant{}, err
	}
	m := Merchant{
		ID: id, BasePath: "/" + id, PIAID: piaid, Envelope: format,
		BaseURL:     "https://" + addr + "/" + id,
		DemoToken:   "demo-token-" + id,
		DemoIssuer:  "demo-issuer",
		DemoAccount: "demo-account-1",
		Plugin:      plugin.Version,
	}
	if err := l.Apply(ctx, func(tx *ledger.Tx) error {
		// The name is what shoppers see on the login page: the store, not
		// the envelope (the id says which one it is).
		if err := tx.CreateMerchant(ledger.Merchant{ID: id, Name: MerchantName, Status: ledger.MerchantActive}); err != nil {
			return err
		}
		return tx.AddPIAID(piaid, id)
	}); err != nil {
		return m, err
	}
	ours, err := ks.CreateKeyset(ctx, devActor, id, kind, keystore.EnvSandbox)
	if err != nil {
		return m, err
	}
	google, err := ks.CreateKeyset(ctx, devActor, "sim-google-"+id, kind, keystore.EnvSandbox)
	if err != nil {
		return m, err
	}
	m.KeysetID, m.SimKeysetID = ours.ID, google.ID
	ourKey, err := NewPrimaryKey(ctx, ks, ours.ID, "otpcgate demo "+id)
	if err != nil {
		return m, err
	}
	googleKey, err := NewPrimaryKey(ctx, ks, google.ID, "simulated Google for "+id)
	if err != nil {
		return m, err
	}
	ourPub, err := ks.ExportPublic(ctx, ours.ID, ourKey.ID)
	if err != nil {
		return m, err
	}
	googlePub, err := ks.ExportPublic(ctx, google.ID, googleKey.ID)
	if err != nil {
		return m, err
	}
	// Each side trusts the other's public key: the key exchange of spec §11.
	if err := ImportPrimaryKey(ctx, ks, google.ID, ourPub, ourKey.Expires); err != nil {
		return m, err
	}
	if err := ImportPrimaryKey(ctx, ks, ours.ID, googlePub, googleKey.Expires); err != nil {
		return m, err
	}
	ext := ".asc"
	if kind == keystore.KindJWK {
		ext = ".jwks.json"
	}
	m.OurPublicKeys = filepath.Join(dir, id+"-our-public"+ext)
	m.GooglePublicKeys = filepath.Join(dir, id+"-google-public"+ext)
	if err := os.WriteFile(m.OurPublicKeys, ourPub, 0o644); err != nil {
		return m, err
	}
	if err := os.WriteFile(m.GooglePublicKeys, googlePub, 0o644); err != nil {
		return m, err
	}
	if priv, err := ks.ExportPrivate(ctx, google.ID, googleKey.ID); err == nil {
		m.GooglePrivateKeys = filepath.Join(dir, id+"-google-private"+ext)
		if err := os.WriteFile(m.GooglePrivateKeys, priv, 0o600); err != nil {
			return m, err
		}
	} else {
		return m, err
	}
	if err := reg.PutIntegration(ctx, directory.Integration{MerchantID: id, BasePath: m.BasePath, Envelope: format, KeysetID: ours.ID,
		GoogleEndpoint: "https://" + addr + SimGooglePath}); err != nil {
		return m, err
	}
	if err := installPlugin(ctx, reg, id, plugin); err != nil {
		return m, err
	}
	err = l.Apply(ctx, func(tx *ledger.Tx) error {
		return tx.Associate(ledger.Association{
			PIAID: piaid, AssociationID: "demo-association-" + id, RequestID: "dev-provisioning-" + id,
			IssuerID: m.DemoIssuer, GPTHash: ledger.GPTHash(m.DemoToken), AccountID: m.DemoAccount,
			AuthRequestID: "dev-provisioning-" + id,
		})
	})
	return m, err
}

// NewPrimaryKey generates a self key in keysetID and promotes it to primary.
func NewPrimaryKey(ctx context.Context, ks *keystore.Store, keysetID, name string) (keystore.KeyInfo, error) {
	k, err := ks.Generate(ctx, devActor, keysetID, keystore.GenerateOptions{Name: name})
	if err != nil {
		return k, err
	}
	for _, st := range []keystore.State{keystore.StateActive, keystore.StatePrimary} {
		if err := ks.SetState(ctx, devActor, keysetID, k.ID, st); err != nil {
			return k, err
		}
	}
	return k, nil
}

// ImportPrimaryKey imports the other side's public key and makes it primary.
func ImportPrimaryKey(ctx context.Context, ks *keystore.Store, keysetID string, pub []byte, expires time.Time) error {
	keys, err := ks.Import(ctx, devActor, keysetID, keystore.OwnerPeer, pub, keystore.ImportOptions{Expires: expires})
	if err != nil {
		return err
	}
	for _, k := range keys {
		for _, st := range []keystore.State{keystore.StateActive, keystore.StatePrimary} {
			if err := ks.SetState(ctx, devActor, keysetID, k.ID, st); err != nil {
				return err
			}
		}
	}
	return nil
}

func installPlugin(ctx context.Context, reg *directory.Store, merchantID string, plugin Plugin) error {
	if _, err := reg.AddPluginVersion(ctx, directory.PluginVersion{MerchantID: merchantID, Version: plugin.Version,
		Wasm: plugin.Wasm, Config: plugin.Config}); err != nil {
		return err
	}
	return reg.ActivatePluginVersion(ctx, merchantID, plugin.Version)
}

// refreshPlugin installs plugin for every demo merchant if it is new
// (a rebuilt plugin gets a new content-derived version) and activates it,
// unless the merchant's active version is one dev did not install (the
// author uploaded and activated it through the admin API): that stays
// active across restarts, and dev's build is only stored.
func refreshPlugin(ctx context.Context, info *Info, plugin Plugin, log *slog.Logger) error {
	if plugin.Wasm == nil {
		return nil
	}
	d, err := db.Open(ctx, info.DBPath)
	if err != nil {
		return err
	}
	defer d.Close()
	reg, err := directory.Open(ctx, d)
	if err != nil {
		return err
	}
	for i := range info.Merchants {
		m := &info.Merchants[i]
		if active, err := reg.ActivePluginVersion(ctx, m.ID); err == nil && active.Version != m.Plugin && active.Version != plugin.Version {
			if _, err := reg.AddPluginVersion(ctx, directory.PluginVersion{MerchantID: m.ID, Version: plugin.Version,
				Wasm: plugin.Wasm, Config: plugin.Config}); err != nil {
				return err
			}
			log.Info("dev: keeping the plugin version activated through the admin API; dev's build is stored, not activated",
				"merchant", m.ID, "active", active.Version, "dev_build", plugin.Version)
			continue
		}
		if err := installPlugin(ctx, reg, m.ID, plugin); err != nil {
			return err
		}
		m.Plugin = plugin.Version
	}
	return writeInfo(info.DataDir, info)
}

// KonbiniConfig configures the konbini plugin for the demo merchants:
// JPY and USD codes of 100 to 300,000 units, payable for 72 hours, and two
// demo accounts (demo-account-1 logs in with "demo-password").
var KonbiniConfig = []byte(`{
  "minAmountMicros": 100000000,
  "maxAmountMicros": 300000000000,
  "currencies": ["JPY", "USD"],
  "expiry": "72h",
  "codeLength": 14,
  "prefix": "81",
  "refundWindowDays": 90,
  "accounts": {
    "demo-account-1": {"secretSha256": "41bd876b085d6031cb0e04de35b88d77f83a4ba39f879fee40805ac19e356023", "name": "Demo User", "countryCode": "JP"},
    "account-42": {"name": "Test Account", "countryCode": "JP"},
    "demo-closed": {"closed": true}
  }
}`)

// RefreshKeyFiles rewrites each demo merchant's key files named in
// info (our public key, the simulated Google's public and private keys)
// from the keystore's primary keys, so external clients reading dev.json
// (gpg, another JOSE library) keep working after a rotation such as `sim
// drill`. A keyset without a primary self key keeps its old file.
func RefreshKeyFiles(ctx context.Context, info *Info, ks *keystore.Store) error {
	primary := func(keysetID string) (string, error) {
		keys, err := ks.List(ctx, keysetID)
		if err != nil {
			return "", err
		}
		for _, k := range keys {
			if k.Owner == keystore.OwnerSelf && k.State == keystore.StatePrimary {
				return k.ID, nil
			}
		}
		return "", nil
	}
	for _, m := range info.Merchants {
		files := []struct {
			path, keyset string
			private      bool
			mode         os.FileMode
		}{{m.OurPublicKeys, m.KeysetID, false, 0o644}, {m.GooglePublicKeys, m.SimKeysetID, false, 0o644},
			{m.GooglePrivateKeys, m.SimKeysetID, true, 0o600}}
		for _, f := range files {
			if f.path == "" {
				continue
			}
			id, err := primary(f.keyset)
			if err != nil || id == "" {
				return err
			}
			var b []byte
			if f.private {
				b, err = ks.ExportPrivate(ctx, f.keyset, id)
			} else {
				b, err = ks.ExportPublic(ctx, f.keyset, id)
			}
			if err != nil {
				return fmt.Errorf("devenv: dev key file %s: %w", f.path, err)
			}
			// Written aside and renamed, so a reader never sees half a key.
			tmp := f.path + ".tmp"
			if err := os.WriteFile(tmp, b, f.mode); err != nil {
				return err
			}
			if err := os.Rename(tmp, f.path); err != nil {
				return err
			}
		}
	}
	return nil
}
