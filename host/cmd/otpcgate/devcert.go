package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/otpcgate/otpcgate/internal/tlsutil"
)

func newDevCertCmd(e env) *cobra.Command {
	var certFile, keyFile string
	var hosts []string
	var validFor time.Duration
	var force bool
	cmd := &cobra.Command{
		Use:   "dev-cert",
		Short: "Write a self-signed ECDSA P-256 certificate for local development",
		Long: "Writes a self-signed certificate and its key (mode 0600) for localhost, " +
			"127.0.0.1 and ::1 by default. For development and tests only: Google " +
			"trusts a self-signed certificate only by explicit arrangement.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !force {
				for _, f := range []string{certFile, keyFile} {
					if _, err := os.Stat(f); err == nil {
						return fmt.Errorf("%s exists (use --force to replace it)", f)
					} else if !errors.Is(err, fs.ErrNotExist) {
						return err
					}
				}
			}
			if err := tlsutil.WriteSelfSigned(certFile, keyFile, hosts, validFor); err != nil {
				return err
			}
			_, err := fmt.Fprintf(e.stdout, "wrote %s and %s for %v, valid %s\n", certFile, keyFile, hosts, validFor)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&certFile, "cert", "dev-cert.pem", "certificate file to write")
	f.StringVar(&keyFile, "key", "dev-key.pem", "private key file to write (mode 0600)")
	f.StringSliceVar(&hosts, "host", tlsutil.DevHosts(), "DNS names and IP addresses to cover")
	f.DurationVar(&validFor, "valid-for", 30*24*time.Hour, "validity period")
	f.BoolVar(&force, "force", false, "replace existing files")
	return cmd
}
