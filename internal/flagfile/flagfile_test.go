package flagfile

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

type opts struct {
	listen []string
	data   string
	mdns   bool
	conns  int
	mib    int64
	rate   float64
	skew   time.Duration
	tags   []string
}

func newSet() (*pflag.FlagSet, *opts) {
	var o opts
	fs := pflag.NewFlagSet("peer", pflag.ContinueOnError)
	fs.StringArrayVar(&o.listen, "listen", []string{"/ip4/0.0.0.0/tcp/0"}, "")
	fs.StringVar(&o.data, "data", "", "")
	fs.BoolVar(&o.mdns, "mdns", true, "")
	fs.IntVar(&o.conns, "max-conns", 0, "")
	fs.Int64Var(&o.mib, "owner-quota-mib", 64, "")
	fs.Float64Var(&o.rate, "owner-put-rate", 2, "")
	fs.DurationVar(&o.skew, "max-clock-skew", 5*time.Minute, "")
	fs.StringSliceVar(&o.tags, "tags", nil, "")
	fs.String("config", "", "")
	fs.String("secret", "", "")
	_ = fs.MarkHidden("secret")
	return fs, &o
}

func TestApply(t *testing.T) {
	fs, o := newSet()
	file := `# a peer
listen = ["/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"]
data = "/var/lib/medwallet"
mdns = false
max-conns = 1_000
owner-quota-mib = 512
owner-put-rate = 0.5
max-clock-skew = "90s"
tags = "one"
`
	if err := ApplyBytes(fs, "peer.toml", []byte(file), "config"); err != nil {
		t.Fatal(err)
	}
	want := opts{listen: []string{"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"}, data: "/var/lib/medwallet",
		conns: 1000, mib: 512, rate: 0.5, skew: 90 * time.Second, tags: []string{"one"}}
	if !slices.Equal(o.listen, want.listen) || o.data != want.data || o.mdns || o.conns != want.conns ||
		o.mib != want.mib || o.rate != want.rate || o.skew != want.skew || !slices.Equal(o.tags, want.tags) {
		t.Fatalf("got %+v, want %+v", *o, want)
	}
}

// A flag given on the command line wins over the file, a repeatable one
// included (the file's list does not add to it).
func TestCommandLineWins(t *testing.T) {
	fs, o := newSet()
	if err := fs.Parse([]string{"--data", "/cli", "--listen", "/ip4/127.0.0.1/tcp/1"}); err != nil {
		t.Fatal(err)
	}
	file := "data = \"/file\"\nlisten = [\"/ip4/0.0.0.0/tcp/4001\"]\nmax-conns = 7\n"
	if err := ApplyBytes(fs, "peer.toml", []byte(file)); err != nil {
		t.Fatal(err)
	}
	if o.data != "/cli" || !slices.Equal(o.listen, []string{"/ip4/127.0.0.1/tcp/1"}) || o.conns != 7 {
		t.Fatalf("got %+v", *o)
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		line       int
		key, want  string
		is         error
	}{
		{"unknown key", "data = \"x\"\n\nlisen = [\"a\"]\n", 3, "lisen", "unknown key", ErrUnknownKey},
		{"skipped key", "config = \"other.toml\"\n", 1, "config", "unknown key", ErrUnknownKey},
		{"hidden flag", "secret = \"x\"\n", 1, "secret", "unknown key", ErrUnknownKey},
		{"bad int", "# c\nmax-conns = \"many\"\n", 2, "max-conns", "want a whole number", nil},
		{"float for int", "max-conns = 1.5\n", 1, "max-conns", "want a whole number", nil},
		{"bad bool", "mdns = \"maybe\"\n", 1, "mdns", "want a boolean", nil},
		{"bad duration", "max-clock-skew = 300\n", 1, "max-clock-skew", "duration", nil},
		{"list for one value", "data = [\"a\", \"b\"]\n", 1, "data", "one value, not a list", nil},
		{"table value", "data = {x = 1}\n", 1, "data", "table is not a flag value", nil},
		{"date", "data = 2026-01-01\n", 1, "data", "as strings", nil},
		{"table", "data = \"x\"\n[peer]\nmdns = true\n", 2, "", "tables are not used", nil},
		{"dotted", "peer.mdns = true\n", 1, "peer.mdns", "dotted keys", nil},
		{"twice", "data = \"a\"\ndata = \"b\"\n", 2, "", "not valid TOML", ErrSyntax},
		{"syntax", "data = \"a\"\nmdns = \n", 2, "", "not valid TOML", ErrSyntax},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs, _ := newSet()
			err := ApplyBytes(fs, "peer.toml", []byte(tc.file), "config")
			var fe *Error
			if !errors.As(err, &fe) {
				t.Fatalf("got %v, want an *Error", err)
			}
			if fe.Line != tc.line || fe.Key != tc.key || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %q (line %d, key %q), want line %d key %q and %q", err, fe.Line, fe.Key, tc.line, tc.key, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("%v is not %v", err, tc.is)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
			if !strings.HasPrefix(err.Error(), "peer.toml:") {
				t.Fatalf("error does not name the file and line: %q", err)
			}
		})
	}
}

func TestApplyFile(t *testing.T) {
	fs, o := newSet()
	path := filepath.Join(t.TempDir(), "peer.toml")
	if err := os.WriteFile(path, []byte("max-conns = 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Apply(fs, path); err != nil || o.conns != 3 {
		t.Fatalf("err %v, max-conns %d", err, o.conns)
	}
	if err := Apply(fs, filepath.Join(t.TempDir(), "missing.toml")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}
