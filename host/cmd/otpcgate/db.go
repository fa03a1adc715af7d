package main

import (
	"errors"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/otpcgate/otpcgate/host/gateway"
	"github.com/otpcgate/otpcgate/internal/config"
	"github.com/otpcgate/otpcgate/internal/db"
)

// newDBCmd: otpcgate db migrate.
func newDBCmd(e env) *cobra.Command {
	cmd := &cobra.Command{Use: "db", Short: "Move the gateway's database"}
	var to string
	migrate := &cobra.Command{Use: "migrate --to postgres://…", Short: "Copy a SQLite installation into an empty PostgreSQL database, once, verified",
		Long: "migrate copies every table of the SQLite file named by the configuration (db_path) into the\n" +
			"PostgreSQL database --to names, in one transaction, and compares each table's row count and\n" +
			"digest before it commits. It refuses a target that holds anything, so it never runs twice.\n" +
			"Stop the gateway first; the SQLite file is only read (keep it as the backup). Afterwards set\n" +
			"db_url to the same URL on every host. The password comes from PGPASSWORD or ~/.pgpass.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd, e)
			if err != nil {
				return err
			}
			if err := config.CheckDBURL(to); err != nil {
				return fmt.Errorf("--to %w\n  next: otpcgate db migrate --to postgres://USER@HOST:5432/DB (password in PGPASSWORD or ~/.pgpass)", err)
			}
			if _, err := os.Stat(cfg.DBPath); err != nil {
				return fmt.Errorf("the SQLite database %s: %w\n  next: pass --config (or --db-path) of the installation to move", cfg.DBPath, err)
			}
			ctx := cmd.Context()
			src, err := db.Open(ctx, cfg.DBPath)
			if err != nil {
				return err
			}
			defer src.Close()
			dst, err := db.Open(ctx, to)
			if err != nil {
				return err
			}
			defer dst.Close()
			report, err := gateway.CopyToPostgres(ctx, src, dst)
			if errors.Is(err, db.ErrNotEmpty) {
				return fmt.Errorf("%w\n  next: migrate into a new, empty database (createdb), or use this one as it is", err)
			}
			if err != nil {
				return fmt.Errorf("nothing was copied: %w", err)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TABLE\tROWS\tDIGEST (equal in both)")
			var rows int64
			for _, t := range report {
				fmt.Fprintf(tw, "%s\t%d\t%s\n", t.Table, t.Rows, t.Hash[:16])
				rows += t.Rows
			}
			tw.Flush()
			fmt.Fprintf(cmd.ErrOrStderr(), "copied %d tables, %d rows; counts and digests match\n"+
				"  next: set db_url on every host and start them; keep %s as the backup\n", len(report), rows, cfg.DBPath)
			return nil
		}}
	migrate.Flags().StringVar(&to, "to", "", "the PostgreSQL database to fill (postgres://…, no password)")
	addSettingFlags(migrate.Flags(), "data_dir", "db_path")
	cmd.AddCommand(migrate)
	return cmd
}
