package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/otpcgate/otpcgate/host/admin"
)

// newAuditCmd: otpcgate audit [--subject S] [--after ID] [--limit N].
func newAuditCmd(e env) *cobra.Command {
	var f apiFlags
	var subject string
	var after int64
	var limit int
	cmd := &cobra.Command{Use: "audit", Short: "Show the audit log (admin API, operator token)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			if subject != "" {
				q.Set("subject", subject)
			}
			if after > 0 {
				q.Set("after", strconv.FormatInt(after, 10))
			}
			q.Set("limit", strconv.Itoa(limit))
			var es []admin.AuditEntry
			if err := f.call(cmd, e, http.MethodGet, "/v1/audit?"+q.Encode(), nil, &es); err != nil {
				return err
			}
			return f.print(cmd.OutOrStdout(), es, auditTable(es))
		}}
	addAPIFlags(cmd, &f)
	cmd.Flags().StringVar(&subject, "subject", "", "only entries about this subject, e.g. merchant/acme")
	cmd.Flags().Int64Var(&after, "after", 0, "only entries after this id (paging)")
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many entries (1..1000)")
	return cmd
}

func auditTable(es []admin.AuditEntry) func(*tabwriter.Writer) {
	return func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "ID\tAT\tACTOR\tACTION\tSUBJECT\tAFTER")
		for _, a := range es {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.At, a.Actor, a.Action, a.Subject, orDash(string(a.After)))
		}
	}
}
