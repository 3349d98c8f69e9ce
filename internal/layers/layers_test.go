package layers

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/medwallet/medwallet"

// rule says which project packages a group of packages may import directly.
type rule struct {
	pkgs    string   // a package pattern: "vault/..." is vault and everything under it
	allowed []string // patterns of project packages it may import
}

// rules is the layering of DESIGN.md, bottom up. A project package that no
// rule names may import anything below cmd; the tui rule is checked apart.
var rules = []rule{
	{"internal/...", []string{"internal/..."}},
	{"vault/...", []string{"vault/...", "internal/...", "consent"}},
	{"consent/...", []string{"consent/...", "internal/...", "vault"}},
	{"fhirscope/...", []string{"fhirscope/...", "consent", "internal/..."}},
	{"smarthealth/...", []string{"smarthealth/...", "internal/..."}},
	{"p2p/...", []string{"p2p/...", "consent/...", "vault/...", "internal/..."}},
	{"wallet/...", []string{"wallet/...", "p2p/...", "consent/...", "vault/...", "fhirscope/...", "internal/..."}},
	{"tui/...", []string{"tui/...", "wallet/...", "consent/...", "vault/...", "fhirscope/...", "internal/..."}},
}

// lightClients must not link the peer daemon: a CLI that dials peers for one
// command has no use for the DHT, mDNS or the peer's own store.
var lightClients = []string{"p2p/client", "wallet", "tui"}

var daemonOnly = []string{
	module + "/p2p/peer",
	"github.com/libp2p/go-libp2p-kad-dht",
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns",
}

func match(pattern, pkg string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return pkg == base || strings.HasPrefix(pkg, base+"/")
	}
	return pkg == pattern
}

// goList runs go list over the module and returns each package's imports
// (direct, or with -deps every dependency), project paths made relative.
func goList(t *testing.T, args ...string) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-f", "{{.ImportPath}}|{{join .Imports \",\"}}|{{join .Deps \",\"}}"}, args...)...)
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	res := map[string][]string{}
	for line := range strings.Lines(string(out)) {
		f := strings.Split(strings.TrimSpace(line), "|")
		if len(f) != 3 {
			t.Fatalf("go list printed %q", line)
		}
		pkg, _ := strings.CutPrefix(f[0], module+"/")
		res[pkg] = append(strings.Split(f[1], ","), "|")
		res[pkg] = append(res[pkg], strings.Split(f[2], ",")...)
	}
	return res
}

// split returns a package's direct imports and its whole dependency list.
func split(v []string) (imports, deps []string) {
	for i, s := range v {
		if s == "|" {
			return v[:i], v[i+1:]
		}
	}
	return v, nil
}

func TestLayers(t *testing.T) {
	pkgs := goList(t, "./...")
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	checked := 0
	for pkg, v := range pkgs {
		imports, _ := split(v)
		for _, imp := range imports {
			rel, ok := strings.CutPrefix(imp, module+"/")
			if !ok {
				continue
			}
			if match("tui/...", rel) && !match("tui/...", pkg) && !match("cmd/...", pkg) {
				t.Errorf("%s imports %s: only cmd may import the TUI", pkg, rel)
			}
			if match("cmd/...", rel) {
				t.Errorf("%s imports %s: nothing imports a command", pkg, rel)
			}
			for _, r := range rules {
				if !match(r.pkgs, pkg) {
					continue
				}
				checked++
				ok := false
				for _, a := range r.allowed {
					ok = ok || match(a, rel)
				}
				if !ok {
					t.Errorf("%s imports %s: %s may import only %s", pkg, rel, r.pkgs, strings.Join(r.allowed, ", "))
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no import was checked against a rule")
	}
}

func TestLightClientsDoNotLinkTheDaemon(t *testing.T) {
	pkgs := goList(t, "./...")
	for _, lc := range lightClients {
		v, ok := pkgs[lc]
		if !ok {
			t.Fatalf("package %s not found", lc)
		}
		_, deps := split(v)
		for _, bad := range daemonOnly {
			for _, d := range deps {
				if match(bad+"/...", d) {
					t.Errorf("%s depends on %s, which only the peer daemon needs", lc, d)
					break
				}
			}
		}
	}
}

// TestRulesCatchALeak makes sure the checker itself can fail: a vault that
// imported wallet must break the rule.
func TestRulesCatchALeak(t *testing.T) {
	for _, r := range rules {
		if r.pkgs != "vault/..." {
			continue
		}
		for _, a := range r.allowed {
			if match(a, "wallet") {
				t.Fatalf("the vault rule allows wallet")
			}
		}
		return
	}
	t.Fatal("no rule for vault")
}
