package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/otpcgate/otpcgate/host/admin"
	"github.com/otpcgate/otpcgate/keystore"
)

// newKeysCmd: otpcgate keys list|export|generate|import|activate|promote|
// retire|disable|destroy|verify|rotate.
func newKeysCmd(e env) *cobra.Command {
	var f apiFlags
	var merchant string
	cmd := &cobra.Command{Use: "keys", Short: "Manage a merchant's keys: ours and Google's (admin API)"}
	addAPIFlags(cmd, &f)
	cmd.PersistentFlags().StringVar(&merchant, "merchant", "", "merchant id (default: the merchant of a merchant token)")
	list := &cobra.Command{Use: "list", Short: "List keys with state and days to expiry (warns at 30 and 7 days)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.resolveMerchant(cmd, e, &merchant); err != nil {
				return err
			}
			var ks []admin.KeyView
			if err := f.call(cmd, e, http.MethodGet, admin.MerchantPath(merchant, "keys"), nil, &ks); err != nil {
				return err
			}
			if err := f.print(cmd.OutOrStdout(), ks, keyTable(ks)); err != nil {
				return err
			}
			warnExpiry(cmd.ErrOrStderr(), merchant, ks)
			return nil
		}}
	var keyIDs []string
	var out string
	export := &cobra.Command{Use: "export", Short: "Export public keys: armored PGP or a JWKS (default: ours in service, what Google needs)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.resolveMerchant(cmd, e, &merchant); err != nil {
				return err
			}
			b, err := exportPublic(cmd, e, &f, merchant, keyIDs)
			if err != nil {
				return err
			}
			if out == "" {
				_, err = cmd.OutOrStdout().Write(b)
				return err
			}
			return os.WriteFile(out, b, 0o644)
		}}
	export.Flags().StringSliceVar(&keyIDs, "key", nil, "key id (repeatable)")
	export.Flags().StringVar(&out, "out", "", "write to this file instead of stdout")

	var gen admin.GenerateRequest
	// --quiet (generate, import) makes new key ids scriptable:
	// KEY=$(otpcgate keys generate ... -q).
	var quiet bool
	generate := &cobra.Command{Use: "generate", Short: "Generate one of our keys (state pending)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.resolveMerchant(cmd, e, &merchant); err != nil {
				return err
			}
			var k admin.KeyView
			if err := f.call(cmd, e, http.MethodPost, admin.MerchantPath(merchant, "keys"), gen, &k); err != nil {
				return err
			}
			if quiet {
				return printKeyIDs(cmd.OutOrStdout(), k)
			}
			if err := f.print(cmd.OutOrStdout(), k, keyTable([]admin.KeyView{k})); err != nil {
				return err
			}
			if !f.json {
				fmt.Fprintf(cmd.ErrOrStderr(), "next: `otpcgate keys rotate` does export, verify, promote and retire as one guided sequence\n")
			}
			return nil
		}}
	addGenerateFlags(generate, &gen)
	generate.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the new key's id")

	var imp admin.ImportRequest
	var file, passEnv, expires string
	importCmd := &cobra.Command{Use: "import", Short: "Import keys as gpg exports them (armored or binary) or a JWK/JWKS", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.resolveMerchant(cmd, e, &merchant); err != nil {
				return err
			}
			data, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			imp.DataBase64 = data
			if passEnv != "" && e.lookup != nil {
				v, _ := e.lookup(passEnv)
				imp.Passphrase = v
			}
			if expires != "" {
				t, err := time.Parse(time.RFC3339, expires)
				if err != nil {
					return fmt.Errorf("--expires: %w", err)
				}
				imp.Expires = t
			}
			var ks []admin.KeyView
			if err := f.call(cmd, e, http.MethodPost, admin.MerchantPath(merchant, "keys", "import"), imp, &ks); err != nil {
				return err
			}
			if quiet {
				return printKeyIDs(cmd.OutOrStdout(), ks...)
			}
			if err := f.print(cmd.OutOrStdout(), ks, keyTable(ks)); err != nil {
				return err
			}
			if !f.json {
				fmt.Fprintln(cmd.ErrOrStderr(), "next: imported keys are pending; `otpcgate keys activate` then `promote` to use them")
			}
			return nil
		}}
	importCmd.Flags().StringVar(&file, "file", "", "key file (required)")
	importCmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the imported keys' ids, one per line")
	importCmd.Flags().StringVar(&imp.Owner, "owner", "peer", "peer (Google's public keys) or self (our secret keys)")
	importCmd.Flags().StringVar(&passEnv, "passphrase-env", "", "environment variable holding the secret key's passphrase")
	importCmd.Flags().StringVar(&expires, "expires", "", "expiry of imported JWKs (RFC 3339); PGP keys carry their own")
	importCmd.Flags().BoolVar(&imp.AllowExpired, "allow-expired", false, "import expired keys as disabled, for the record")
	_ = importCmd.MarkFlagRequired("file")

	state := func(use string, st keystore.State, short string) *cobra.Command {
		return &cobra.Command{Use: use + " KEY_ID", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				if err := f.resolveMerchant(cmd, e, &merchant); err != nil {
					return err
				}
				k, err := setState(cmd, e, &f, merchant, args[0], st)
				if err != nil {
					return err
				}
				return f.print(cmd.OutOrStdout(), k, keyTable([]admin.KeyView{k}))
			}}
	}
	verify := &cobra.Command{Use: "verify KEY_ID", Short: "Prove one of our keys works through the envelope (self round trip)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.resolveMerchant(cmd, e, &merchant); err != nil {
				return err
			}
			var r admin.VerifyResult
			if err := f.call(cmd, e, http.MethodPost, admin.MerchantPath(merchant, "keys", args[0], "verify"), nil, &r); err != nil {
				return err
			}
			return f.print(cmd.OutOrStdout(), r, func(tw *tabwriter.Writer) {
				fmt.Fprintf(tw, "key %s: inbound %v, outbound %v (other side played by %s)\n", r.Key, r.Inbound, r.Outbound, r.With)
			})
		}}
	cmd.AddCommand(list, export, generate, importCmd,
		state("activate", keystore.StateActive, "Trust a pending key for inbound traffic"),
		state("promote", keystore.StatePrimary, "Make a key primary: we sign with it (ours) or encrypt to it (Google's)"),
		state("retire", keystore.StateRetiring, "Keep a key for inbound traffic only, during a grace period"),
		state("disable", keystore.StateDisabled, "Refuse a key for all traffic"),
		state("destroy", keystore.StateDestroyed, "Erase a disabled key's private material for good"),
		verify, newRotateCmd(e, &f, &merchant))
	return cmd
}

func addGenerateFlags(cmd *cobra.Command, g *admin.GenerateRequest) {
	fl := cmd.Flags()
	fl.StringVar(&g.Algorithm, "algorithm", "", "RSA (default) or EC-P256 (JWK signing only)")
	fl.IntVar(&g.Bits, "bits", 0, "RSA size: 2048 (default), 3072 or 4096")
	fl.IntVar(&g.LifetimeDays, "lifetime-days", 0, "days until expiry (default 365, at most 730)")
	fl.StringVar(&g.Name, "name", "", "PGP user id name")
	fl.StringVar(&g.Email, "email", "", "PGP user id email")
}

func setState(cmd *cobra.Command, e env, f *apiFlags, merchant, key string, st keystore.State) (admin.KeyView, error) {
	var k admin.KeyView
	err := f.call(cmd, e, http.MethodPost, admin.MerchantPath(merchant, "keys", key, "state"), admin.StateRequest{State: st}, &k)
	return k, err
}

func exportPublic(cmd *cobra.Command, e env, f *apiFlags, merchant string, keys []string) ([]byte, error) {
	q := url.Values{"key": keys}
	var b []byte
	err := f.call(cmd, e, http.MethodGet, admin.MerchantPath(merchant, "keys", "public")+"?"+q.Encode(), nil, &b)
	return b, err
}

// printKeyIDs writes one key id per line.
func printKeyIDs(w io.Writer, ks ...admin.KeyView) error {
	for _, k := range ks {
		if _, err := fmt.Fprintln(w, k.ID); err != nil {
			return err
		}
	}
	return nil
}

func keyTable(ks []admin.KeyView) func(*tabwriter.Writer) {
	return func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "ID\tOWNER\tSTATE\tALGORITHM\tEXPIRES\tDAYS\tWARNING")
		for _, k := range ks {
			exp, days := "never", "-"
			if !k.Expires.IsZero() {
				exp = k.Expires.Format("2006-01-02")
			}
			if k.DaysToExpiry != nil {
				days = fmt.Sprint(*k.DaysToExpiry)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Owner, k.State, k.Algorithm, exp, days, orDash(strings.ToUpper(k.Warning)))
		}
	}
}

// warnExpiry prints the 30- and 7-day warnings with the step to take.
func warnExpiry(w io.Writer, merchant string, ks []admin.KeyView) {
	for _, k := range ks {
		if k.Warning == "" {
			continue
		}
		who := "our"
		next := "rotate it: `otpcgate keys rotate --merchant " + merchant + "`"
		if k.Owner == keystore.OwnerPeer {
			who, next = "Google's", "ask Google for its new key and `otpcgate keys import` it"
		}
		fmt.Fprintf(w, "WARNING (%s): %s key %s expires in %d days; %s\n", k.Warning, who, k.ID, *k.DaysToExpiry, next)
	}
}

// newRotateCmd runs the rotation of our key as a guided sequence.
func newRotateCmd(e env, f *apiFlags, merchant *string) *cobra.Command {
	var gen admin.GenerateRequest
	var out string
	var yes bool
	var grace time.Duration
	cmd := &cobra.Command{Use: "rotate", Short: "Rotate our key: generate → export for Google → verify → promote → retire the old", Args: cobra.NoArgs,
		Long: `rotate replaces our primary key without breaking traffic:
  1. generate a new key (pending)
  2. export its public half to --out for Google
  3. verify it with a round trip through the envelope (the old key plays Google)
  4. activate it: inbound messages encrypted to it decrypt from now on
  5. wait until you confirm that Google installed the new key (or --yes)
  6. promote it to primary: responses are signed with it (the old key stays active)
  7. after --grace, mark the old key retiring (it still decrypts)
The echo call to Google with the new key is not made by this command: Google's
sandbox must be reachable and configured for this merchant; send an echo with
your Google contact once the key is installed.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.resolveMerchant(cmd, e, merchant); err != nil {
				return err
			}
			w := cmd.ErrOrStderr()
			step := func(n int, msg string, a ...any) { fmt.Fprintf(w, "[%d/7] %s\n", n, fmt.Sprintf(msg, a...)) }
			var ks []admin.KeyView
			if err := f.call(cmd, e, http.MethodGet, admin.MerchantPath(*merchant, "keys"), nil, &ks); err != nil {
				return err
			}
			var old *admin.KeyView
			for i := range ks {
				if ks[i].Owner == keystore.OwnerSelf && ks[i].State == keystore.StatePrimary {
					old = &ks[i]
				}
			}
			var nk admin.KeyView
			if err := f.call(cmd, e, http.MethodPost, admin.MerchantPath(*merchant, "keys"), gen, &nk); err != nil {
				return err
			}
			step(1, "generated %s (%s, expires %s)", nk.ID, nk.Algorithm, nk.Expires.Format("2006-01-02"))
			pub, err := exportPublic(cmd, e, f, *merchant, []string{nk.ID})
			if err != nil {
				return err
			}
			if out == "" {
				ext := ".asc"
				if strings.HasPrefix(strings.TrimSpace(string(pub)), "{") {
					ext = ".jwks.json"
				}
				out = *merchant + "-" + strings.ToLower(nk.ID[max(0, len(nk.ID)-16):]) + ext
			}
			if err := os.WriteFile(out, pub, 0o644); err != nil {
				return err
			}
			step(2, "public key written to %s: send it to Google", out)
			var vr admin.VerifyResult
			if err := f.call(cmd, e, http.MethodPost, admin.MerchantPath(*merchant, "keys", nk.ID, "verify"), nil, &vr); err != nil {
				var ae *admin.APIError
				if old != nil || !errors.As(err, &ae) {
					return fmt.Errorf("%w\n  the new key %s stays pending; disable it with `otpcgate keys disable --merchant %s %s`", err, nk.ID, *merchant, nk.ID)
				}
				step(3, "round trip skipped: %s", ae.Msg)
			} else {
				step(3, "round trip through the envelope passed (inbound and outbound, with %s)", vr.With)
			}
			if _, err := setState(cmd, e, f, *merchant, nk.ID, keystore.StateActive); err != nil {
				return err
			}
			step(4, "%s is active: it decrypts from now on", nk.ID)
			if !yes {
				fmt.Fprintf(w, "[5/7] type 'yes' once Google has installed %s (anything else stops here, the key stays active): ", nk.ID)
				line, _ := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
				if strings.TrimSpace(line) != "yes" {
					return fmt.Errorf("stopped before promotion\n  next: when Google confirms, run `otpcgate keys promote --merchant %s %s`", *merchant, nk.ID)
				}
			} else {
				step(5, "--yes: assuming Google has installed %s", nk.ID)
			}
			if _, err := setState(cmd, e, f, *merchant, nk.ID, keystore.StatePrimary); err != nil {
				return err
			}
			step(6, "%s is primary: responses are signed with it", nk.ID)
			if old == nil {
				step(7, "no previous primary key to retire")
				return nil
			}
			if grace > 0 {
				fmt.Fprintf(w, "[7/7] grace period %s before retiring %s…\n", grace, old.ID)
				select {
				case <-time.After(grace):
				case <-cmd.Context().Done():
					return fmt.Errorf("interrupted\n  next: `otpcgate keys retire --merchant %s %s` later", *merchant, old.ID)
				}
			}
			if _, err := setState(cmd, e, f, *merchant, old.ID, keystore.StateRetiring); err != nil {
				return err
			}
			step(7, "%s is retiring (still decrypts); disable it once Google no longer uses it: `otpcgate keys disable --merchant %s %s`",
				old.ID, *merchant, old.ID)
			if f.json {
				return f.print(cmd.OutOrStdout(), map[string]string{"new": nk.ID, "old": old.ID, "publicKeyFile": out}, nil)
			}
			return nil
		}}
	addGenerateFlags(cmd, &gen)
	cmd.Flags().StringVar(&out, "out", "", "file for the new public key (default MERCHANT-KEYID.asc or .jwks.json)")
	cmd.Flags().BoolVar(&yes, "yes", false, "do not wait for confirmation that Google installed the key")
	cmd.Flags().DurationVar(&grace, "grace", 0, "wait this long after promotion before retiring the old key")
	return cmd
}
