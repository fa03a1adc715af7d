package main

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/otpcgate/otpcgate/host/admin"
	"github.com/otpcgate/otpcgate/host/ledger"
)

// newMerchantsCmd: otpcgate merchants list|show|create|update|disable|enable|delete|release-piaid|events.
func newMerchantsCmd(e env) *cobra.Command {
	var f apiFlags
	cmd := &cobra.Command{Use: "merchants", Short: "Manage merchants and their Google integration (admin API)"}
	addAPIFlags(cmd, &f)
	table := func(ms []admin.Merchant) func(*tabwriter.Writer) {
		return func(tw *tabwriter.Writer) {
			fmt.Fprintln(tw, "ID\tSTATUS\tBASE PATH\tENVELOPE\tENV\tPIAIDS\tPLUGIN\tKEYSET")
			for _, m := range ms {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, m.Status, orDash(m.BasePath), orDash(m.Envelope),
					orDash(m.Environment), strings.Join(m.PIAIDs, ","), orDash(m.ActivePlugin), short(m.KeysetID))
			}
		}
	}
	list := &cobra.Command{Use: "list", Short: "List merchants", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ms []admin.Merchant
			if err := f.call(cmd, e, http.MethodGet, "/v1/merchants", nil, &ms); err != nil {
				return err
			}
			return f.print(cmd.OutOrStdout(), ms, table(ms))
		}}
	show := &cobra.Command{Use: "show MERCHANT", Short: "Show one merchant", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var m admin.Merchant
			if err := f.call(cmd, e, http.MethodGet, admin.MerchantPath(args[0]), nil, &m); err != nil {
				return err
			}
			return f.print(cmd.OutOrStdout(), m, func(tw *tabwriter.Writer) {
				table([]admin.Merchant{m})(tw)
				if m.KV != nil {
					src := "the host's quota"
					if m.Quotas != nil {
						src = "its own quota where set"
					}
					fmt.Fprintf(tw, "\nplugin KV: %d of %d keys, %d of %d bytes (%s)\n", m.KV.Keys, m.KV.QuotaKeys, m.KV.Bytes, m.KV.QuotaBytes, src)
				}
				if q := m.Quotas; q != nil {
					fmt.Fprintf(tw, "own quotas: kv keys %s, kv bytes %s, log bytes/min %s, plugin versions %s, plugin bytes %s, plugin memory MiB %s (-: the host's)\n",
						quotaText(q.KVMaxKeys), quotaText(q.KVMaxBytes), quotaText(q.LogBytesPerMinute), quotaText(q.PluginVersions),
						quotaText(q.PluginBytes), quotaText(q.PluginMemoryMiB))
				}
			})
		}}
	var spec admin.MerchantSpec
	var createRules []string
	var createQuotas, updateQuotas admin.Quotas
	create := &cobra.Command{Use: "create", Short: "Create a merchant with its PIAIDs, keyset and integration", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if spec.AmountRules, err = parseAmountRules(createRules); err != nil {
				return err
			}
			if createQuotas != (admin.Quotas{}) {
				spec.Quotas = &createQuotas
			}
			var m admin.Merchant
			if err := f.call(cmd, e, http.MethodPost, "/v1/merchants", spec, &m); err != nil {
				return err
			}
			if err := f.print(cmd.OutOrStdout(), m, table([]admin.Merchant{m})); err != nil {
				return err
			}
			if !f.json {
				fmt.Fprintf(cmd.ErrOrStderr(), "next: generate our key with `otpcgate keys generate --merchant %s`, import Google's with `otpcgate keys import`, then upload a plugin\n", m.ID)
			}
			return nil
		}}
	cf := create.Flags()
	cf.StringVar(&spec.ID, "id", "", "merchant id (required)")
	cf.StringVar(&spec.Name, "name", "", "display name")
	cf.StringVar(&spec.BasePath, "base-path", "", "URL prefix on the Google-facing listener, e.g. /acme")
	cf.StringVar(&spec.Envelope, "envelope", "pgp", "pgp or jose")
	cf.StringSliceVar(&spec.PIAIDs, "piaid", nil, "payment integrator account id (repeatable)")
	cf.StringVar(&spec.KeysetID, "keyset", "", "existing keyset id (default: create one)")
	cf.StringVar(&spec.Environment, "environment", "sandbox", "sandbox or production")
	cf.StringVar(&spec.GoogleEndpoint, "google-endpoint", "", "https base of Google-hosted methods")
	cf.StringArrayVar(&createRules, "amount-rule", nil, amountRuleUsage)
	addQuotaFlags(cf, &createQuotas, "the host's")
	_ = create.MarkFlagRequired("id")

	var basePath, envelope, keyset, endpoint string
	var addPIAIDs, updateRules []string
	update := &cobra.Command{Use: "update MERCHANT", Short: "Change a merchant's integration or add PIAIDs", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var u admin.MerchantUpdate
			fl := cmd.Flags()
			if fl.Changed("base-path") {
				u.BasePath = &basePath
			}
			if fl.Changed("envelope") {
				u.Envelope = &envelope
			}
			if fl.Changed("keyset") {
				u.KeysetID = &keyset
			}
			if fl.Changed("google-endpoint") {
				u.GoogleEndpoint = &endpoint
			}
			quotaFlags := map[string]func(q *admin.Quotas) *int64{
				"kv-max-keys":          func(q *admin.Quotas) *int64 { return &q.KVMaxKeys },
				"kv-max-bytes":         func(q *admin.Quotas) *int64 { return &q.KVMaxBytes },
				"log-bytes-per-minute": func(q *admin.Quotas) *int64 { return &q.LogBytesPerMinute },
				"max-plugin-versions":  func(q *admin.Quotas) *int64 { return &q.PluginVersions },
				"max-plugin-bytes":     func(q *admin.Quotas) *int64 { return &q.PluginBytes },
				"plugin-memory-mib":    func(q *admin.Quotas) *int64 { return &q.PluginMemoryMiB },
			}
			if slices.ContainsFunc(slices.Collect(maps.Keys(quotaFlags)), fl.Changed) {
				// The API replaces the quotas as a whole: keep those not given.
				var cur admin.Merchant
				if err := f.call(cmd, e, http.MethodGet, admin.MerchantPath(args[0]), nil, &cur); err != nil {
					return err
				}
				q := admin.Quotas{}
				if cur.Quotas != nil {
					q = *cur.Quotas
				}
				for name, field := range quotaFlags {
					if fl.Changed(name) {
						*field(&q) = *field(&updateQuotas)
					}
				}
				u.Quotas = &q
			}
			u.AddPIAIDs = addPIAIDs
			var err error
			if u.AmountRules, err = parseAmountRules(updateRules); err != nil {
				return err
			}
			var m admin.Merchant
			if err := f.call(cmd, e, http.MethodPatch, admin.MerchantPath(args[0]), u, &m); err != nil {
				return err
			}
			return f.print(cmd.OutOrStdout(), m, table([]admin.Merchant{m}))
		}}
	uf := update.Flags()
	uf.StringVar(&basePath, "base-path", "", "new base path")
	uf.StringVar(&envelope, "envelope", "", "pgp or jose")
	uf.StringVar(&keyset, "keyset", "", "keyset id")
	uf.StringVar(&endpoint, "google-endpoint", "", "https base of Google-hosted methods")
	uf.StringSliceVar(&addPIAIDs, "add-piaid", nil, "PIAID to add (repeatable)")
	uf.StringArrayVar(&updateRules, "amount-rule", nil, amountRuleUsage+"; PIAID: alone clears its rules")
	addQuotaFlags(uf, &updateQuotas, "back to the host's")

	status := func(use, action string) *cobra.Command {
		return &cobra.Command{Use: use + " MERCHANT", Short: strings.ToUpper(use[:1]) + use[1:] + " a merchant", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				var m admin.Merchant
				if err := f.call(cmd, e, http.MethodPost, admin.MerchantPath(args[0], action), nil, &m); err != nil {
					return err
				}
				return f.print(cmd.OutOrStdout(), m, table([]admin.Merchant{m}))
			}}
	}
	events := &cobra.Command{Use: "events MERCHANT", Short: "Show a merchant's audit events", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var es []admin.AuditEntry
			if err := f.call(cmd, e, http.MethodGet, admin.MerchantPath(args[0], "events"), nil, &es); err != nil {
				return err
			}
			return f.print(cmd.OutOrStdout(), es, auditTable(es))
		}}
	del := &cobra.Command{Use: "delete MERCHANT",
		Short: "Delete a disabled merchant that never held a record (a mistake, a test)",
		Long: "Deletes a disabled merchant that never answered Google, holds no code and no plugin KV: its " +
			"PIAIDs, amount rules, integration and plugin versions go, its tokens are revoked and its own " +
			"keys are disabled and destroyed (unless another merchant shares the keyset), in one audited " +
			"step. A merchant with records is refused: they stay with their PIAIDs for good.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var m admin.Merchant
			if err := f.call(cmd, e, http.MethodDelete, admin.MerchantPath(args[0]), nil, &m); err != nil {
				return err
			}
			if f.json {
				return f.print(cmd.OutOrStdout(), m, nil)
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "deleted merchant %s (PIAIDs %s now free)\n", m.ID, strings.Join(m.PIAIDs, ", "))
			return err
		}}
	release := &cobra.Command{Use: "release-piaid MERCHANT PIAID",
		Short: "Take a never-used PIAID away from a disabled merchant, so another can be given it",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var m admin.Merchant
			if err := f.call(cmd, e, http.MethodDelete, admin.MerchantPath(args[0], "piaids", args[1]), nil, &m); err != nil {
				return err
			}
			return f.print(cmd.OutOrStdout(), m, table([]admin.Merchant{m}))
		}}
	cmd.AddCommand(list, show, create, update, status("disable", "disable"), status("enable", "enable"), del, release, events)
	return cmd
}

const amountRuleUsage = "what a PIAID takes in generateReferenceNumber, PIAID:CURRENCIES:MIN:MAX with amounts in micros " +
	"and empty parts unrestricted, e.g. ACME:JPY:100000000:300000000000 (repeatable); the host refuses the rest with invalidFieldValue"

// parseAmountRules reads --amount-rule values (PIAID:CUR,CUR:MIN:MAX).
func parseAmountRules(vals []string) (map[string]ledger.AmountRules, error) {
	if len(vals) == 0 {
		return nil, nil
	}
	out := make(map[string]ledger.AmountRules, len(vals))
	for _, v := range vals {
		parts := strings.Split(v, ":")
		if len(parts) > 4 || parts[0] == "" {
			return nil, fmt.Errorf("--amount-rule %q: want PIAID:CURRENCIES:MIN:MAX", v)
		}
		parts = append(parts, "", "", "")[:4]
		var r ledger.AmountRules
		if parts[1] != "" {
			r.Currencies = strings.Split(parts[1], ",")
		}
		for i, dst := range []*int64{&r.MinMicros, &r.MaxMicros} {
			if p := parts[2+i]; p != "" {
				n, err := strconv.ParseInt(p, 10, 64)
				if err != nil {
					return nil, fmt.Errorf("--amount-rule %q: %q is not an amount in micros", v, p)
				}
				*dst = n
			}
		}
		if err := r.Valid(); err != nil {
			return nil, fmt.Errorf("--amount-rule %q: %w", v, err)
		}
		out[parts[0]] = r
	}
	return out, nil
}

// addQuotaFlags registers the flags of a merchant's own quotas.
func addQuotaFlags(fs *pflag.FlagSet, q *admin.Quotas, zero string) {
	fs.Int64Var(&q.KVMaxKeys, "kv-max-keys", 0, "the merchant's own plugin KV quota in keys (0: "+zero+")")
	fs.Int64Var(&q.KVMaxBytes, "kv-max-bytes", 0, "the merchant's own plugin KV quota in bytes (0: "+zero+")")
	fs.Int64Var(&q.LogBytesPerMinute, "log-bytes-per-minute", 0, "the merchant's own plugin log budget (0: "+zero+")")
	fs.Int64Var(&q.PluginVersions, "max-plugin-versions", 0, "plugin versions the merchant may store (0: "+zero+")")
	fs.Int64Var(&q.PluginBytes, "max-plugin-bytes", 0, "largest plugin module the merchant may upload (0: "+zero+")")
	fs.Int64Var(&q.PluginMemoryMiB, "plugin-memory-mib", 0, "linear memory cap of each of its plugin instances, for versions loaded from then on (0: "+zero+")")
}

func quotaText(v int64) string {
	if v == 0 {
		return "-"
	}
	return strconv.FormatInt(v, 10)
}
