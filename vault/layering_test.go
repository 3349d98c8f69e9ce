package vault_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestLayering keeps the vault pure: no project package outside vault/
// except the shared canonical CBOR codec (internal/canon, below vault), and
// no network, process or keyring access anywhere in it; the core package
// does not touch the file system either (dirstore does, by design).
func TestLayering(t *testing.T) {
	const module = "github.com/medwallet/medwallet/"
	allowed := map[string]bool{module + "internal/canon": true}
	forbidden := []string{"net", "net/http", "os/exec", "github.com/99designs/keyring", "github.com/libp2p/"}
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(p, module) && !strings.HasPrefix(p, module+"vault") && !allowed[p] {
				t.Errorf("%s imports %s: vault may import no other project package but internal/canon", path, p)
			}
			for _, bad := range forbidden {
				if p == bad || strings.HasPrefix(p, bad+"/") || (strings.HasSuffix(bad, "/") && strings.HasPrefix(p, bad)) {
					t.Errorf("%s imports %s", path, p)
				}
			}
			if filepath.Dir(path) == "." && (p == "os" || p == "io/fs") {
				t.Errorf("%s imports %s: the core vault package reads and writes streams only", path, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
