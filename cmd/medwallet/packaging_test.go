package main

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// The files of packaging/ must stay true to the peer command: the example
// configuration loads, documents every flag, and the systemd unit and the
// container image start the peer with flags it has.

const packaging = "../../packaging"

func peerCommandFlags(t *testing.T) (*pflag.FlagSet, func(args []string) error) {
	t.Helper()
	cmd := newPeerCommand(newGlobals(strings.NewReader(""), io.Discard, io.Discard))
	return cmd.LocalFlags(), cmd.ParseFlags
}

// packaging/peer.toml loads without error, and names every flag of the
// peer command (set, or commented with its default or an example).
func TestPackagedPeerConfig(t *testing.T) {
	path := filepath.Join(packaging, "peer.toml")
	cmd := newPeerCommand(newGlobals(strings.NewReader(""), io.Discard, io.Discard))
	if err := loadPeerConfig(cmd, path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	key := regexp.MustCompile(`(?m)^(?:# )?([a-z][a-z0-9-]*) = `)
	var keys []string
	for _, m := range key.FindAllStringSubmatch(string(b), -1) {
		keys = append(keys, m[1])
	}
	cmd.LocalFlags().VisitAll(func(f *pflag.Flag) {
		if f.Name == "help" || f.Name == "config" {
			return
		}
		if !slices.Contains(keys, f.Name) {
			t.Errorf("packaging/peer.toml does not show the key %q (--%s): add it, commented with its default", f.Name, f.Name)
		}
	})
}

// unit is a parsed systemd unit: section, then key, then every value.
type unit map[string]map[string][]string

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" || strings.HasSuffix(line, `\`) {
				t.Fatalf("%s:%d: not a key=value line in a section: %q", path, n, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

func TestSystemdUnit(t *testing.T) {
	path := filepath.Join(packaging, "medwallet-peer.service")
	u := parseUnit(t, path)
	svc := u["Service"]
	if svc == nil || u["Unit"] == nil || u["Install"] == nil {
		t.Fatalf("the unit lacks a [Unit], [Service] or [Install] section")
	}
	one := func(k string) string {
		if len(svc[k]) != 1 {
			t.Errorf("[Service] %s is set %d times, want once", k, len(svc[k]))
			return ""
		}
		return svc[k][0]
	}
	// The hardening the docs promise.
	for k, want := range map[string]string{
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
		"PrivateDevices": "yes", "DynamicUser": "yes", "CapabilityBoundingSet": "", "AmbientCapabilities": "",
		"StateDirectory": "medwallet-peer", "StateDirectoryMode": "0700", "UMask": "0077",
		"RestrictSUIDSGID": "yes", "LockPersonality": "yes", "SystemCallArchitectures": "native",
	} {
		if got := one(k); got != want {
			t.Errorf("[Service] %s=%q, want %q", k, got, want)
		}
	}
	if !slices.Contains(svc["SystemCallFilter"], "@system-service") {
		t.Errorf("[Service] SystemCallFilter does not allow only @system-service: %q", svc["SystemCallFilter"])
	}
	if fams := strings.Fields(one("RestrictAddressFamilies")); !slices.Contains(fams, "AF_INET") || !slices.Contains(fams, "AF_INET6") || slices.Contains(fams, "AF_PACKET") {
		t.Errorf("[Service] RestrictAddressFamilies=%q", fams)
	}
	if one("MemoryMax") == "" {
		t.Error("[Service] MemoryMax is not set")
	}

	// ExecStart runs `medwallet peer` with the packaged configuration and
	// the state directory, and every flag it gives is one the peer has.
	args := strings.Fields(one("ExecStart"))
	if len(args) < 2 || !filepath.IsAbs(args[0]) || filepath.Base(args[0]) != "medwallet" || args[1] != "peer" {
		t.Fatalf("ExecStart=%q does not run /.../medwallet peer", args)
	}
	flags, parse := peerCommandFlags(t)
	if err := parse(args[2:]); err != nil {
		t.Fatalf("ExecStart's flags: %v", err)
	}
	if got, _ := flags.GetString("config"); got != "/etc/medwallet/peer.toml" {
		t.Errorf("ExecStart's --config is %q", got)
	}
	if got, _ := flags.GetString("data"); got != "/var/lib/"+one("StateDirectory") {
		t.Errorf("ExecStart's --data %q is not the StateDirectory", got)
	}

	// systemd's own check, where systemd is installed: the binary must
	// exist for it, so the copy runs this test's executable instead.
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze is not installed: the unit was checked by this test alone")
		return
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(t.TempDir(), "medwallet-peer.service")
	if err := os.WriteFile(cp, []byte(strings.Replace(string(b), "ExecStart="+args[0], "ExecStart="+self, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", cp).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// The container image runs the peer as an unprivileged user with a /data
// volume, built with the Go of go.mod, and its default command's flags are
// the peer's.
func TestContainerfile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(packaging, "Containerfile"))
	if err != nil {
		t.Fatal(err)
	}
	inst := map[string][]string{}
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, " "); ok && strings.ToUpper(k) == k {
			inst[k] = append(inst[k], strings.TrimSpace(v))
		}
	}
	jsonArray := func(k string) []string {
		if len(inst[k]) != 1 {
			t.Fatalf("%s appears %d times, want once", k, len(inst[k]))
		}
		var a []string
		if err := json.Unmarshal([]byte(inst[k][0]), &a); err != nil {
			t.Fatalf("%s is not a JSON array (exec form): %v", k, err)
		}
		return a
	}
	entry, cmdArgs := jsonArray("ENTRYPOINT"), jsonArray("CMD")
	if len(entry) != 2 || filepath.Base(entry[0]) != "medwallet" || entry[1] != "peer" {
		t.Errorf("ENTRYPOINT %q does not run medwallet peer", entry)
	}
	flags, parse := peerCommandFlags(t)
	if err := parse(cmdArgs); err != nil {
		t.Fatalf("CMD's flags: %v", err)
	}
	if got, _ := flags.GetString("data"); got != "/data" {
		t.Errorf("CMD's --data is %q, want the /data volume", got)
	}
	if v := jsonArray("VOLUME"); !slices.Equal(v, []string{"/data"}) {
		t.Errorf("VOLUME %q", v)
	}
	if u := inst["USER"]; len(u) != 1 || strings.HasPrefix(u[0], "root") || strings.HasPrefix(u[0], "0") {
		t.Errorf("USER %q: the peer must not run as root", u)
	}
	if e := strings.Fields(strings.Join(inst["EXPOSE"], " ")); !slices.Contains(e, "4001/tcp") || !slices.Contains(e, "4001/udp") {
		t.Errorf("EXPOSE %q lacks the libp2p ports", e)
	}
	if len(inst["FROM"]) < 2 {
		t.Fatalf("FROM %q: want a build stage and a runtime stage", inst["FROM"])
	}
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goVer := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(mod)
	if goVer == nil || !strings.Contains(inst["FROM"][0], "golang:"+string(goVer[1])) {
		t.Errorf("the build stage %q is not Go %s of go.mod", inst["FROM"][0], goVer[1])
	}
	if !strings.Contains(strings.Join(inst["RUN"], " "), "CGO_ENABLED=0") {
		t.Error("the binary is not built static (CGO_ENABLED=0)")
	}
}
