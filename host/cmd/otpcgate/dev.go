package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"

	"github.com/otpcgate/otpcgate/host/devenv"
	"github.com/otpcgate/otpcgate/host/gateway"
	"github.com/otpcgate/otpcgate/internal/wasmbuild"
)

func newDevCmd(e env) *cobra.Command {
	var dataDir, addr, pluginDir, pluginConfig string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Start a working development gateway with two demo merchants",
		Long: "Creates (once) a data directory with a development key-encryption key, a " +
			"self-signed ECDSA P-256 certificate, our keys and a simulated Google's keys " +
			"for two demo merchants (one PGP, one JWE), builds and loads the konbini " +
			"plugin with the local Go toolchain, writes dev.json for external clients " +
			"and serves until interrupted. Development only: the KEK and the simulated " +
			"Google's private keys are files in the data directory.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, err := loadConfig(cmd, e)
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("log-format") {
				cfg.Log.Format = "text"
			}
			log, err := newLogger(cfg.Log, e.stderr)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "building plugin %s ...\n", pluginDir)
			wasm, err := wasmbuild.Build(ctx, pluginDir)
			if err != nil {
				if !cmd.Flags().Changed("plugin") {
					return fmt.Errorf("%w\n  next: run otpcgate dev from the repository root, or pass --plugin DIR", err)
				}
				return fmt.Errorf("%w\n  next: check that %s is a Go plugin package (main, importing the otpcgate sdk) that builds with GOOS=wasip1 GOARCH=wasm", err, pluginDir)
			}
			name, config, err := devPluginConfig(pluginDir, pluginConfig)
			if err != nil {
				return err
			}
			// The version names module and configuration: a version's
			// configuration never changes once stored.
			sum := sha256.Sum256(append(slices.Clip(wasm), config...))
			plugin := devenv.Plugin{Version: name + "-" + hex.EncodeToString(sum[:6]), Wasm: wasm, Config: config}
			_, statErr := os.Stat(filepath.Join(dataDir, devenv.File))
			reused := statErr == nil
			info, err := devenv.Provision(ctx, dataDir, addr, plugin, log)
			if err != nil {
				return err
			}
			// Where the merchant API listens, for `otpcgate sim`.
			if info, err = devenv.RecordAdmin(dataDir, cfg.Admin.Addr); err != nil {
				return err
			}
			if len(cfg.WebLogin.Callbacks) == 0 {
				// Development default: the callback `otpcgate sim` uses.
				// Production installations list Google's real callback.
				cfg.WebLogin.Callbacks = map[string][]string{"*": {devCallbackPrefix}}
			}
			cfg.DataDir, cfg.DBPath, cfg.KEKFile = info.DataDir, info.DBPath, info.KEKFile
			cfg.Listen.Addr, cfg.Listen.CertFile, cfg.Listen.KeyFile = info.Addr, info.CertFile, info.KeyFile
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("invalid configuration:\n%w", err)
			}
			tr, err := info.GoogleTransport()
			if err != nil {
				return err
			}
			if reused {
				fmt.Fprintf(e.stdout, "reusing the development data in %s\n", info.DataDir)
				if cmd.Flags().Changed("addr") && addr != info.Addr {
					fmt.Fprintf(e.stderr, "warning: --addr %s is ignored: %s serves on %s (recorded in %s); "+
						"delete the directory to start afresh on another address\n", addr, info.DataDir, info.Addr, devenv.File)
				}
			}
			// The banner comes once both listeners accept connections.
			ready := func(adminAddr string) { printDevInfo(e, info, cfg.WebLogin.Path, adminAddr, reused) }
			// Notifications go to the simulated Google mounted on this
			// listener (see dev.json's merchants' Google endpoint).
			return run(ctx, cfg, e, log, ready, func(o *gateway.Options) { o.Extra, o.GoogleTransport = devSimGoogle(info, log), tr })
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", filepath.Join("data", "dev"), "development data directory (created once, reused)")
	f.StringVar(&addr, "addr", "127.0.0.1:8443", "listen address written to dev.json on first start")
	f.StringVar(&pluginDir, "plugin", "./plugins/konbini", "plugin package built and loaded for the demo merchants (a directory, e.g. a module of its own from `plugins new`)")
	f.StringVar(&pluginConfig, "plugin-config", "", "the plugin's configuration JSON file (default: DIR/config.json if there is one, konbini's demo configuration for konbini, else {})")
	addSettingFlags(f)
	return cmd
}

// devCallbackPrefix is the login page's allowed callback in development;
// authCallback (sim.go) lies under it.
const devCallbackPrefix = "https://payments.google.com/payments/apis-secure/"

func printDevInfo(e env, info *devenv.Info, loginPath, adminAddr string, reused bool) {
	w := e.stdout
	how := "created"
	if reused {
		how = "reused"
	}
	fmt.Fprintf(w, "\notpcgate dev is up: data %s in %s (%s describes it for external clients)\n\n",
		how, info.DataDir, filepath.Join(info.DataDir, devenv.File))
	fmt.Fprintf(w, "Google-facing endpoints (TLS, self-signed %s):\n", info.CertFile)
	for _, m := range info.Merchants {
		fmt.Fprintf(w, "  %-10s %-5s %s  PIAID %s  demo token %s\n", m.ID, m.Envelope, m.BaseURL, m.PIAID, m.DemoToken)
	}
	fmt.Fprintf(w, "\nLogin page (account linking), demo account %q, password %q:\n", info.Merchants[0].DemoAccount, "demo-password")
	for _, m := range info.Merchants {
		fmt.Fprintf(w, "  %-10s %s%s\n", m.ID, m.BaseURL, loginPath)
	}
	fmt.Fprintf(w, "\nSimulated Google (receives our notifications): https://%s%s\n", info.Addr, devenv.SimGooglePath)
	if adminAddr != "" {
		fmt.Fprintf(w, "Admin and merchant API: http://%s (merchant tokens in %s; an operator token: otpcgate tokens bootstrap --db-path %s)\n",
			adminAddr, devenv.File, info.DBPath)
	}
	fmt.Fprintf(w, "\nNext, in another terminal:\n")
	fmt.Fprintf(w, "  go run ./host/cmd/otpcgate sim smoke --data-dir %s   # play Google against both merchants\n", info.DataDir)
	fmt.Fprintf(w, "  ./scripts/setup && go test ./... ./sdk/...                # the whole test suite (free ports; runs beside this)\n\n")
}

// devPluginConfig names dev's plugin after its directory and finds its
// configuration: file if given, else the directory's config.json (as
// `plugins new` writes it), else konbini's demo configuration for konbini,
// else an empty object.
func devPluginConfig(dir, file string) (name string, config []byte, err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", nil, err
	}
	name = filepath.Base(abs)
	switch {
	case file != "":
		config, err = os.ReadFile(file)
	case fileExists(filepath.Join(abs, "config.json")):
		config, err = os.ReadFile(filepath.Join(abs, "config.json"))
	case name == "konbini":
		config = devenv.KonbiniConfig
	default:
		config = []byte("{}")
	}
	if err == nil && !json.Valid(config) {
		err = fmt.Errorf("the plugin configuration of %s is not JSON", dir)
	}
	return name, config, err
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}
