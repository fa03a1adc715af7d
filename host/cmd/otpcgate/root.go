package main

import (
	"fmt"
	"slices"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/otpcgate/otpcgate/internal/config"
)

// configEnv names the config file when --config is not given.
const configEnv = "OTPCGATE_CONFIG"

// newRootCmd builds the command tree. Every config setting is a persistent
// flag, so serve, dev and later commands share them.
func newRootCmd(e env) *cobra.Command {
	root := &cobra.Command{
		Use:           "otpcgate",
		Short:         "Gateway for Google Standard Payments Refundable One Time Payment Code v2",
		SilenceUsage:  true,
		SilenceErrors: true, // execute prints the error once
	}
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.PersistentFlags().String("config", "", "JSON config file (or "+configEnv+")")
	root.AddCommand(newServeCmd(e), newDevCmd(e), newSimCmd(e), newVersionCmd(e), newDevCertCmd(e),
		newMerchantsCmd(e), newPluginsCmd(e), newKeysCmd(e), newTokensCmd(e), newAuditCmd(e), newDBCmd(e))
	refuseUnknownSubcommands(root)
	return root
}

// refuseUnknownSubcommands makes every group below root (keys, plugins,
// sim, ...) fail on a subcommand it does not have instead of printing its
// help and exiting 0, so a typo in a script is an error; the group alone
// still prints its help. (cobra already does this for root itself.)
func refuseUnknownSubcommands(root *cobra.Command) {
	for _, c := range root.Commands() {
		if c.HasSubCommands() && c.Run == nil && c.RunE == nil {
			c.Args = cobra.ArbitraryArgs
			c.RunE = func(cmd *cobra.Command, args []string) error {
				if len(args) > 0 {
					return fmt.Errorf("unknown command %q for %q\n  next: `%s --help` lists its commands", args[0], cmd.CommandPath(), cmd.CommandPath())
				}
				return cmd.Help()
			}
		}
		refuseUnknownSubcommands(c)
	}
}

// addSettingFlags adds the configuration settings named by keys (every
// setting when none is named) to fs as flags, so each command offers only
// the settings it uses: serve and dev all of them, the API commands the
// admin address, bootstrap and db migrate where the database is. A name the
// command already defines for itself is left to it.
func addSettingFlags(fs *pflag.FlagSet, keys ...string) {
	for _, s := range config.Settings() {
		if len(keys) > 0 && !slices.Contains(keys, s.Key) || fs.Lookup(s.Flag) != nil {
			continue
		}
		fs.Var(&settingFlag{typ: s.Type, val: s.Default}, s.Flag, s.Usage+" (env "+s.Env+")")
		if s.Type == "bool" {
			fs.Lookup(s.Flag).NoOptDefVal = "true"
		}
	}
}

// settingFlag records a flag's text; config.Load parses it later, after
// the file and environment, so flags take precedence.
type settingFlag struct{ typ, val string }

func (f *settingFlag) String() string     { return f.val }
func (f *settingFlag) Set(v string) error { f.val = v; return nil }
func (f *settingFlag) Type() string       { return f.typ }

// loadConfig layers the config file, environment and the flags given on
// cmd's command line. It does not validate.
func loadConfig(cmd *cobra.Command, e env) (*config.Config, error) {
	file, err := cmd.Flags().GetString("config")
	if err != nil {
		return nil, err
	}
	if file == "" && e.lookup != nil {
		file, _ = e.lookup(configEnv)
	}
	flags := map[string]string{}
	for _, s := range config.Settings() {
		if f := cmd.Flags().Lookup(s.Flag); f != nil && f.Changed {
			flags[s.Key] = f.Value.String()
		}
	}
	cfg, err := config.Load(config.Sources{File: file, LookupEnv: e.lookup, Flags: flags})
	if err != nil {
		return nil, fmt.Errorf("load configuration: %w", err)
	}
	return cfg, nil
}
