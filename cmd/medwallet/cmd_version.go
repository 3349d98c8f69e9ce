package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at release time (goreleaser ldflags: -X main.version=...).
// Without it, the build's own module information names the version.
var version = "dev"

// versionOptions are the flags of version.
type versionOptions struct{}

func newVersionCommand(g *globalOptions) *cobra.Command {
	var opts versionOptions
	return &cobra.Command{
		Use:   "version",
		Short: "Print medwallet's version",
		Long: `Print the version of this medwallet binary, as --version does. A release
build carries its release version; a build from a clone, the module's
version from the Go build information (a pseudo-version with the commit,
"+dirty" when the clone had changes), else the commit it was built from.`,
		Example: "  medwallet version\n  medwallet version --json",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runVersion(cmd.Context(), opts, g) },
	}
}

// versionJSON is the --json shape of version.
type versionJSON struct {
	Version  string `json:"version"`
	Revision string `json:"revision,omitempty"`
	Go       string `json:"go"`
}

func runVersion(_ context.Context, _ versionOptions, g *globalOptions) error {
	bi, _ := debug.ReadBuildInfo()
	j := versionJSON{Version: buildVersion(), Revision: buildSetting(bi, "vcs.revision"), Go: runtime.Version()}
	return g.emit(j, func(out io.Writer) { fmt.Fprintf(out, "medwallet version %s\n", j.Version) })
}

// versionOf names a build's version: the one set at release time (ldflags)
// wins; else the main module's version from the build information (Go
// stamps a clone's build with a pseudo-version naming the commit); else the
// commit alone; else "dev".
func versionOf(ldflags string, bi *debug.BuildInfo) string {
	if ldflags != "" && ldflags != "dev" {
		return ldflags
	}
	if bi == nil {
		return "dev"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	if rev := buildSetting(bi, "vcs.revision"); rev != "" {
		v := "dev-" + rev[:min(12, len(rev))]
		if buildSetting(bi, "vcs.modified") == "true" {
			v += "+dirty"
		}
		return v
	}
	return "dev"
}

// buildSetting returns one setting of the build information, or "".
func buildSetting(bi *debug.BuildInfo, key string) string {
	if bi == nil {
		return ""
	}
	for _, s := range bi.Settings {
		if s.Key == key {
			return s.Value
		}
	}
	return ""
}

// buildVersion is this binary's version (versionOf its build information).
func buildVersion() string {
	bi, _ := debug.ReadBuildInfo()
	return versionOf(version, bi)
}
