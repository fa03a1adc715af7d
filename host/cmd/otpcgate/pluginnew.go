package main

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"

	"github.com/spf13/cobra"
)

// pluginTemplate is the project `plugins new` writes: one file per
// template, named without its .tmpl suffix.
//
//go:embed pluginnew/*.tmpl
var pluginTemplate embed.FS

// sdkModule is the sdk's module path, as plugins require it.
const sdkModule = "github.com/otpcgate/otpcgate/sdk"

var pluginNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,40}$`)

// newPluginNewCmd: otpcgate plugins new NAME — a plugin module of its own
// that builds and tests out of the box.
func newPluginNewCmd() *cobra.Command {
	var dir, module, sdkDir string
	cmd := &cobra.Command{
		Use:   "new NAME",
		Short: "Write a new plugin module (code, tests, config, Taskfile) that builds and passes its tests as written",
		Long: "Writes a plugin as a Go module of its own in DIR (default ./NAME): main.go with the handlers of a\n" +
			"payment-code plugin, native tests, config.json and a Taskfile (build, test, check, upload).\n" +
			"It depends on the sdk module only, never on the gateway's dependencies; the sdk comes from a\n" +
			"local otpcgate checkout (--sdk, default: found above the working directory or this binary).",
		Example: "  otpcgate plugins new acme && cd acme && go test ./... && task check",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if !pluginNameRE.MatchString(name) {
				return fmt.Errorf("plugin name %q: use lower-case letters, digits and '-', starting with a letter", name)
			}
			if dir == "" {
				dir = name
			}
			if module == "" {
				module = "example.com/" + name
			}
			sdk, err := findSDK(sdkDir)
			if err != nil {
				return err
			}
			if _, err := os.Stat(dir); err == nil {
				return fmt.Errorf("%s already exists; nothing written\n  next: choose another --dir", dir)
			}
			if err := writePluginProject(dir, name, module, sdk); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote plugin %s (module %s) in %s, with the sdk from %s\n"+
				"next:\n  cd %s && go test ./...      # native tests\n  task check                    # build and run it in the real runtime\n",
				name, module, dir, sdk, dir)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "", "directory to create (default: ./NAME)")
	f.StringVar(&module, "module", "", "the module path (default: example.com/NAME)")
	f.StringVar(&sdkDir, "sdk", "", "the sdk directory of an otpcgate checkout (default: found above the working directory or this binary)")
	return cmd
}

// findSDK returns the absolute sdk directory: dir if given, else the first
// sdk/ holding the sdk module above the working directory or the binary.
func findSDK(dir string) (string, error) {
	isSDK := func(d string) bool {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		return err == nil && bytes.HasPrefix(bytes.TrimSpace(b), []byte("module "+sdkModule+"\n"))
	}
	if dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return "", err
		}
		if !isSDK(abs) {
			return "", fmt.Errorf("--sdk %s: no go.mod of module %s there", dir, sdkModule)
		}
		return abs, nil
	}
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, d := range starts {
		for {
			if c := filepath.Join(d, "sdk"); isSDK(c) {
				return c, nil
			}
			up := filepath.Dir(d)
			if up == d {
				break
			}
			d = up
		}
	}
	return "", errors.New("the otpcgate sdk was not found above the working directory or this binary\n" +
		"  next: pass --sdk DIR, the sdk directory of an otpcgate checkout")
}

// writePluginProject writes the template into dir (created; removed again
// if a file cannot be written).
func writePluginProject(dir, name, module, sdk string) (err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	data := struct{ Name, Module, SDK string }{name, module, filepath.ToSlash(sdk)}
	return fs.WalkDir(pluginTemplate, "pluginnew", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := pluginTemplate.ReadFile(p)
		if err != nil {
			return err
		}
		t, err := template.New(p).Option("missingkey=error").Parse(string(raw))
		if err != nil {
			return err
		}
		var b bytes.Buffer
		if err := t.Execute(&b, data); err != nil {
			return err
		}
		out := filepath.Join(dir, strings.TrimSuffix(filepath.Base(p), ".tmpl"))
		return os.WriteFile(out, b.Bytes(), 0o644)
	})
}
