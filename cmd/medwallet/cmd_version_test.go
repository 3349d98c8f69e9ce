package main

import (
	"runtime/debug"
	"testing"
)

func TestVersionOf(t *testing.T) {
	clone := &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261201151826-520f1ecdd934+dirty"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "520f1ecdd934d87f80560c16f1f483016976eeb9"}}}
	noVersion := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "520f1ecdd934d87f80560c16f1f483016976eeb9"}, {Key: "vcs.modified", Value: "true"}}}
	for _, tc := range []struct {
		name, ldflags string
		bi            *debug.BuildInfo
		want          string
	}{
		{"release: ldflags win", "1.4.0", clone, "1.4.0"},
		{"go install module@version", "dev", &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}}, "v1.4.0"},
		{"build from a clone", "dev", clone, "v0.0.0-20261201151826-520f1ecdd934+dirty"},
		{"no module version, a commit", "dev", noVersion, "dev-520f1ecdd934+dirty"},
		{"nothing known", "dev", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "dev"},
		{"no build information", "dev", nil, "dev"},
	} {
		if got := versionOf(tc.ldflags, tc.bi); got != tc.want {
			t.Errorf("%s: versionOf = %q, want %q", tc.name, got, tc.want)
		}
	}
}
