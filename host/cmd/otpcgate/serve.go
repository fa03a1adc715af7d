package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newServeCmd(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve Google's calls on the TLS listener",
		Long: "Loads and validates the configuration, builds the gateway and serves " +
			"until SIGINT or SIGTERM, then shuts down gracefully.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd, e)
			if err != nil {
				return err
			}
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("invalid configuration:\n%w", err)
			}
			log, err := newLogger(cfg.Log, e.stderr)
			if err != nil {
				return err
			}
			return run(cmd.Context(), cfg, e, log, nil)
		},
	}
	addSettingFlags(cmd.Flags())
	return cmd
}
