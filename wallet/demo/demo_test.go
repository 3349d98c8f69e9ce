package demo

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/medwallet/medwallet/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite testdata/demo.golden from this run")

const golden = "testdata/demo.golden"

// The demo's story, as `medwallet demo` tells it (6 peers, the shared
// records), compared with testdata/demo.golden after masking what changes
// from run to run. After a deliberate change of the story, rewrite it:
//
//	go test ./wallet/demo -run TestRunGolden -update
func TestRunGolden(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := Run(context.Background(), Options{Dir: dir, DataDir: testutil.SharedData(t), Out: &out}); err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out.String())
	}
	got := mask(out.String(), dir)
	if *update {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (write it with -update)", err)
	}
	if got != string(want) {
		t.Errorf("the demo's story differs from %s (after a deliberate change, rerun with -update):\n%s", golden, diff(string(want), got))
	}
}

// With no shared data at hand the demo uses its built-in bundle, and the
// story adapts to a smaller network.
func TestRunBuiltIn(t *testing.T) {
	var out bytes.Buffer
	if err := Run(context.Background(), Options{Dir: t.TempDir(), DataDir: BuiltIn, Peers: 4, Out: &out}); err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"A local network of 4 peers", "built-in sample bundle", "cut into 4 shares held by 4 different peers.",
		"A peer goes down", "every step behaved as it should",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("narration lacks %q:\n%s", want, out.String())
		}
	}
}

// masks replace, in order, what differs from one run of the demo to the
// next.
// A mask with pad replaces only its first group, padded to the group's
// width so that a table's columns stay where they were.
var masks = []struct {
	re   *regexp.Regexp
	with string
	pad  bool
}{
	{regexp.MustCompile(`(?m)^(medwallet demo, )\d{4}-\d{2}-\d{2}, (times of day in )\S+$`), "${1}YYYY-MM-DD, ${2}ZONE", false},
	{regexp.MustCompile(`/tcp/\d+/`), "/tcp/PORT/", false},
	{regexp.MustCompile(`12D3KooW[1-9A-HJ-NP-Za-km-z]{44}`), "PEER-ID", false},
	{regexp.MustCompile(`12D3KooW…[1-9A-HJ-NP-Za-km-z]{6}`), "PEER…", false},
	{regexp.MustCompile(`\b[0-9a-f]{12,64}\b`), "<hex>", false},
	{regexp.MustCompile(`\b\d{2}:\d{2}:\d{2}\b`), "hh:mm:ss", false},
	{regexp.MustCompile(`\b\d+(\.\d+)?(ns|µs|ms|s|m|h)\b`), "<duration>", false},
	// A grant lists its records in the order of their random IDs, and Dr
	// Bob's import after the revocation stops at the first refusal: which
	// of his two records the peers refused varies from run to run.
	{regexp.MustCompile(`(?m)^.*Dr Bob +(Synthea patient history|US Core bundle) +TREAT +DENIED .*$`), "RECORD", true},
	// Each peer logs its decisions about Alice in a sub-feed of its own,
	// opened by a link entry at its first decision: how many of the six
	// peers decided (which ones a read reached first) varies, and so does
	// the count of entries by one or two.
	{regexp.MustCompile(`checks out \(\d+ ledger entries\)`), "checks out (N ledger entries)", false},
}

// mask makes a demo's narration comparable across runs: dir, dates,
// ports, peer IDs, hex IDs and hashes, times of day and durations.
func mask(s, dir string) string {
	s = strings.ReplaceAll(s, dir, "DIR")
	for _, m := range masks {
		if !m.pad {
			s = m.re.ReplaceAllString(s, m.with)
			continue
		}
		s = m.re.ReplaceAllStringFunc(s, func(match string) string {
			group := m.re.FindStringSubmatch(match)[1]
			return strings.Replace(match, group, m.with+strings.Repeat(" ", max(0, len(group)-len(m.with))), 1)
		})
	}
	return s
}

func TestMask(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"medwallet demo, 2026-12-01, times of day in CET\n", "medwallet demo, YYYY-MM-DD, times of day in ZONE\n"},
		{"files in /tmp/x/y; every key", "files in DIR; every key"},
		{"/ip4/127.0.0.1/tcp/45173/p2p/12D3KooWB3KjtPYxbMLQvFBXhu3rYx1ov9b8rpE86uMGBjZ2Y8mb", "/ip4/127.0.0.1/tcp/PORT/p2p/PEER-ID"},
		{"same ID 12D3KooW…YcBnqR;", "same ID PEER…;"},
		{"record b3317c3204d3: and b3317c3204d3b4e4c8a32551c45c3d9f", "record <hex>: and <hex>"},
		{"14:37:12  Dr Bob", "hh:mm:ss  Dr Bob"},
		{"returned in 283ms (a peer", "returned in <duration> (a peer"},
		{"returned in 1.2s.", "returned in <duration>."},
		{"   hh:mm:ss  Dr Bob   US Core bundle           TREAT    DENIED    revoked    5",
			"   hh:mm:ss  Dr Bob   RECORD                   TREAT    DENIED    revoked    5"},
		{"   hh:mm:ss  Dr Bob   US Core bundle           TREAT    allowed   granted    3",
			"   hh:mm:ss  Dr Bob   US Core bundle           TREAT    allowed   granted    3"},
		{"432.4 KiB, 3 shares, 4 hours, 30 days, 45 CFR 164.528", "432.4 KiB, 3 shares, 4 hours, 30 days, 45 CFR 164.528"},
		{"decision checks out (54 ledger entries)", "decision checks out (N ledger entries)"},
	} {
		if got := mask(c.in, "/tmp/x/y"); got != c.want {
			t.Errorf("mask(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// diff shows the lines where want and got first part, with a little
// context, which is enough to read a changed story.
func diff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	i := 0
	for i < len(w) && i < len(g) && w[i] == g[i] {
		i++
	}
	var b strings.Builder
	for j := max(0, i-2); j < i; j++ {
		b.WriteString("  " + w[j] + "\n")
	}
	for j := i; j < min(len(w), i+6); j++ {
		b.WriteString("- " + w[j] + "\n")
	}
	for j := i; j < min(len(g), i+6); j++ {
		b.WriteString("+ " + g[j] + "\n")
	}
	return b.String()
}
