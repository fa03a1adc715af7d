package main

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/otpcgate/otpcgate/host/admin"
	"github.com/otpcgate/otpcgate/host/ledger"
	"github.com/otpcgate/otpcgate/internal/db"
)

// newTokensCmd: otpcgate tokens list|issue|revoke|bootstrap.
func newTokensCmd(e env) *cobra.Command {
	var f apiFlags
	cmd := &cobra.Command{Use: "tokens", Short: "Issue and revoke admin API tokens"}
	addAPIFlags(cmd, &f)
	table := func(ts []admin.Token) func(*tabwriter.Writer) {
		return func(tw *tabwriter.Writer) {
			fmt.Fprintln(tw, "ID\tSCOPE\tMERCHANT\tNAME\tCREATED\tREVOKED")
			for _, t := range ts {
				rev := "-"
				if !t.Revoked.IsZero() {
					rev = t.Revoked.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Scope, orDash(t.MerchantID), orDash(t.Name), t.Created.Format(time.RFC3339), rev)
			}
		}
	}
	list := &cobra.Command{Use: "list", Short: "List tokens (never their secrets)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ts []admin.Token
			if err := f.call(cmd, e, http.MethodGet, "/v1/tokens", nil, &ts); err != nil {
				return err
			}
			return f.print(cmd.OutOrStdout(), ts, table(ts))
		}}
	var scope, merchant, name, out string
	issue := &cobra.Command{Use: "issue", Short: "Issue a token; its secret is printed once", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if scope == "" {
				scope = string(admin.ScopeOperator)
				if merchant != "" {
					scope = string(admin.ScopeMerchant)
				}
			}
			var it admin.IssuedToken
			body := map[string]string{"scope": scope, "merchantId": merchant, "name": name}
			if err := f.call(cmd, e, http.MethodPost, "/v1/tokens", body, &it); err != nil {
				return err
			}
			return printIssued(cmd, f.json, it)
		}}
	issue.Flags().StringVar(&scope, "scope", "", "operator or merchant (default: merchant when --merchant is set)")
	issue.Flags().StringVar(&merchant, "merchant", "", "the merchant a merchant token is limited to")
	issue.Flags().StringVar(&name, "name", "", "who or what uses the token")
	revoke := &cobra.Command{Use: "revoke TOKEN_ID", Short: "Revoke a token at once", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var t admin.Token
			if err := f.call(cmd, e, http.MethodDelete, "/v1/tokens/"+url.PathEscape(args[0]), nil, &t); err != nil {
				return err
			}
			return f.print(cmd.OutOrStdout(), t, table([]admin.Token{t}))
		}}
	var force bool
	bootstrap := &cobra.Command{Use: "bootstrap", Short: "Create the first operator token directly in the database file", Args: cobra.NoArgs,
		Long: "bootstrap opens the SQLite file named by the configuration (db_path) and creates an operator token.\n" +
			"It refuses when an operator token exists (use --force to add another, e.g. after losing it).\n" +
			"The secret is printed once on stdout; store it in a secret manager and pass it as " + adminTokenEnv + ".",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd, e)
			if err != nil {
				return err
			}
			if out != "" {
				// Checked before anything is issued: a failure leaves no
				// file behind, and an existing file is never overwritten.
				if _, err := os.Lstat(out); err == nil {
					return fmt.Errorf("--out %s exists\n  next: choose another path or remove it", out)
				}
			}
			d, err := db.Open(cmd.Context(), cfg.Database())
			if err != nil {
				return fmt.Errorf("open the database: %w", err)
			}
			defer d.Close()
			ts, err := admin.OpenTokens(cmd.Context(), d)
			if err != nil {
				return err
			}
			t, secret, err := ts.Bootstrap(cmd.Context(), name, force)
			if errors.Is(err, admin.ErrTokenExists) {
				return fmt.Errorf("%w\n  next: issue more with `otpcgate tokens issue`, or pass --force if every operator token is lost", err)
			}
			if err != nil {
				return err
			}
			// The audit log lives in the ledger's table; write through the
			// ledger so the entry is ordered with every other change.
			l, err := ledger.New(cmd.Context(), d, ledger.Options{})
			if err != nil {
				return err
			}
			defer l.Close()
			if err := l.Audit(cmd.Context(), ledger.AuditEntry{Actor: "otpcgate tokens bootstrap", Action: "token.issue",
				Subject: "token/" + t.ID, After: []byte(fmt.Sprintf(`{"id":%q,"scope":"operator"}`, t.ID))}); err != nil {
				return err
			}
			if out != "" {
				if err := writeSecretFile(out, secret); err != nil {
					return fmt.Errorf("token %s was issued but its secret could not be written: %w\n"+
						"  next: revoke it with `otpcgate tokens revoke %s` and bootstrap again with --force", t.ID, err, t.ID)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "token %s (operator) issued; its secret is in %s (mode 0600)\n", t.ID, out)
				return nil
			}
			return printIssued(cmd, f.json, admin.IssuedToken{Token: t, Secret: secret})
		}}
	bootstrap.Flags().StringVar(&out, "out", "", "write the secret to this new file (mode 0600) instead of stdout")
	bootstrap.Flags().StringVar(&name, "name", "bootstrap", "who or what uses the token")
	bootstrap.Flags().BoolVar(&force, "force", false, "issue even if an operator token exists")
	addSettingFlags(bootstrap.Flags(), "data_dir", "db_path", "db_url")
	cmd.AddCommand(list, issue, revoke, bootstrap)
	return cmd
}

// writeSecretFile writes secret to a new file readable by its owner only.
func writeSecretFile(path, secret string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(secret + "\n"); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

func printIssued(cmd *cobra.Command, asJSON bool, it admin.IssuedToken) error {
	if asJSON {
		return (&apiFlags{json: true}).print(cmd.OutOrStdout(), it, nil)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "token %s (%s%s) issued; the secret below is shown only this once:\n", it.ID, it.Scope,
		map[bool]string{true: " " + it.MerchantID, false: ""}[it.MerchantID != ""])
	fmt.Fprintln(cmd.OutOrStdout(), it.Secret)
	return nil
}
