package consent_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/medwallet/medwallet/consent"
	"github.com/medwallet/medwallet/consent/internal/vectors"
)

func loadVectors(t *testing.T, name string) vectors.VectorFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "vectors", name))
	if err != nil {
		t.Fatal(err)
	}
	var f vectors.VectorFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Cases) == 0 {
		t.Fatalf("%s has no cases", name)
	}
	return f
}

func TestVectorKeys(t *testing.T) {
	for _, k := range loadVectors(t, "feeds.json").Keys {
		s, err := consent.NewKeySigner(vectors.TestKey(k.Name))
		if err != nil {
			t.Fatal(err)
		}
		if s.ID() != k.ID || hex.EncodeToString(vectors.TestKey(k.Name).Seed()) != k.Seed {
			t.Errorf("key %s: derived key does not match the vector file", k.Name)
		}
	}
}

func TestFeedVectors(t *testing.T) {
	for _, c := range loadVectors(t, "feeds.json").Cases {
		t.Run(c.Name, func(t *testing.T) {
			var entries []*consent.Entry
			var err error
			for _, h := range c.Entries {
				b, herr := hex.DecodeString(h)
				if herr != nil {
					t.Fatal(herr)
				}
				var e *consent.Entry
				e, err = consent.DecodeEntry(b)
				if err != nil {
					break
				}
				if !bytes.Equal(e.Encode(), b) {
					t.Fatal("re-encoding differs")
				}
				entries = append(entries, e)
			}
			var head consent.Head
			if err == nil {
				head, err = consent.VerifyFeed(c.Feed, entries)
			}
			if c.Valid {
				if err != nil {
					t.Fatalf("valid feed refused: %v", err)
				}
				if head.Seq != c.Head.Seq || head.Hash != c.Head.Hash {
					t.Fatalf("head = %d %s, want %d %s", head.Seq, head.Hash, c.Head.Seq, c.Head.Hash)
				}
				// A replica accepting entry by entry reaches the same head.
				var h consent.Head
				for _, e := range entries {
					if err := consent.CheckNext(c.Feed, h, e); err != nil {
						t.Fatalf("CheckNext: %v", err)
					}
					h = e.Head()
				}
				if h.Hash != head.Hash {
					t.Fatal("CheckNext head differs")
				}
				return
			}
			want := vectors.VectorErrors[c.Error]
			if want == nil {
				t.Fatalf("unknown error name %q", c.Error)
			}
			if !errors.Is(err, want) {
				t.Fatalf("err = %v, want %v", err, want)
			}
			var eq *consent.EquivocationError
			if errors.As(err, &eq) {
				if err := consent.VerifyEquivocation(eq.Proof); err != nil {
					t.Fatalf("proof from error does not verify: %v", err)
				}
				if eq.Proof.Author() != c.Feed {
					t.Fatal("proof accuses the wrong author")
				}
			}
		})
	}
}

// bodyKinds maps kind names to the Go type DecodedBody returns.
var bodyKinds = map[string]func(any) bool{
	"identity":     func(b any) bool { _, ok := b.(*consent.IdentityBody); return ok },
	"anchor":       func(b any) bool { _, ok := b.(*consent.AnchorBody); return ok },
	"grant":        func(b any) bool { _, ok := b.(*consent.Grant); return ok },
	"revoke":       func(b any) bool { _, ok := b.(*consent.RevokeBody); return ok },
	"access":       func(b any) bool { _, ok := b.(*consent.AccessBody); return ok },
	"equivocation": func(b any) bool { _, ok := b.(*consent.EquivocationProof); return ok },
	"credential":   func(b any) bool { _, ok := b.(*consent.CredentialBody); return ok },
	"break-glass":  func(b any) bool { _, ok := b.(*consent.BreakGlassBody); return ok },
	"review":       func(b any) bool { _, ok := b.(*consent.ReviewBody); return ok },
}

func decodeCase(t *testing.T, c vectors.VectorCase) []*consent.Entry {
	t.Helper()
	var out []*consent.Entry
	for _, h := range c.Entries {
		b, err := hex.DecodeString(h)
		if err != nil {
			t.Fatal(err)
		}
		e, err := consent.DecodeEntry(b)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		out = append(out, e)
	}
	return out
}

// TestFeedVectorKinds: every entry of a valid feed has the kind the vector
// names and decodes into that kind's body type, and the valid vectors
// cover every kind.
func TestFeedVectorKinds(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range loadVectors(t, "feeds.json").Cases {
		if !c.Valid {
			continue
		}
		es := decodeCase(t, c)
		if len(c.Kinds) != len(es) {
			t.Fatalf("%s: %d kinds for %d entries", c.Name, len(c.Kinds), len(es))
		}
		for i, e := range es {
			if e.Kind.String() != c.Kinds[i] {
				t.Errorf("%s entry %d: kind %s, vector says %s", c.Name, i+1, e.Kind, c.Kinds[i])
			}
			body, err := e.DecodedBody()
			if err != nil {
				t.Fatalf("%s entry %d: %v", c.Name, i+1, err)
			}
			if is := bodyKinds[c.Kinds[i]]; is == nil || !is(body) {
				t.Errorf("%s entry %d: body %T for kind %s", c.Name, i+1, body, c.Kinds[i])
			}
			seen[c.Kinds[i]] = true
		}
	}
	for k := range bodyKinds {
		if !seen[k] {
			t.Errorf("no valid vector holds a %s entry", k)
		}
	}
}

// TestEmergencyVectors: the credential, break-glass and emergency feeds
// audit clean together, and the emergency access in them is what Decide
// gives as of that entry.
func TestEmergencyVectors(t *testing.T) {
	cases := map[string]vectors.VectorCase{}
	for _, c := range loadVectors(t, "feeds.json").Cases {
		cases[c.Name] = c
	}
	var entries []*consent.Entry
	for _, name := range []string{"valid-credential", "valid-break-glass", "valid-emergency"} {
		c, ok := cases[name]
		if !ok {
			t.Fatalf("no %s vector", name)
		}
		entries = append(entries, decodeCase(t, c)...)
	}
	rep := consent.AuditLedger(entries)
	if !rep.OK() || len(rep.Findings) != 0 || rep.Emergency != 1 || rep.Allowed != 2 || rep.Feeds != 3 {
		t.Fatalf("audit = %+v", rep)
	}
	v := consent.NewView()
	for _, e := range entries {
		if _, err := v.Ingest(e); err != nil {
			t.Fatal(err)
		}
	}
	var access *consent.Entry
	for _, e := range entries {
		if e.Kind == consent.KindAccess {
			access = e // the last one: the emergency allow
		}
	}
	body, _ := access.DecodedBody()
	ab := body.(*consent.AccessBody)
	req, err := consent.DecodeRequest(ab.Request)
	if err != nil {
		t.Fatal(err)
	}
	d, err := consent.DecideAsOf(v, access, req)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Allow || d.Reason != consent.ReasonEmergency || d.Grant != ab.Grant || d.Credential != ab.Credential || d.Until != ab.Until {
		t.Fatalf("DecideAsOf = %+v, logged %+v", d, ab)
	}
	bg, ok := v.BreakGlass(req.BreakGlass)
	if !ok || bg.Author != req.Requester {
		t.Fatal("the request's break-glass entry is not the requester's")
	}
	if r, ok := v.Review(req.BreakGlass); !ok || r.Outcome != consent.ReviewOK {
		t.Fatalf("review = %+v", r)
	}
}

func TestRequestVectors(t *testing.T) {
	for _, c := range loadVectors(t, "requests.json").Cases {
		t.Run(c.Name, func(t *testing.T) {
			b, err := hex.DecodeString(c.Request)
			if err != nil {
				t.Fatal(err)
			}
			r, err := consent.DecodeRequest(b)
			if err == nil {
				err = consent.VerifyRequest(r)
			}
			if c.Valid {
				if err != nil {
					t.Fatalf("valid request refused: %v", err)
				}
				return
			}
			if want := vectors.VectorErrors[c.Error]; !errors.Is(err, want) {
				t.Fatalf("err = %v, want %v", err, want)
			}
		})
	}
}

// TestVectorsUpToDate regenerates the vectors and compares them with the
// checked-in files, so that a format change cannot go unnoticed.
func TestVectorsUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the generator")
	}
	dir := t.TempDir()
	cmd := exec.Command("go", "run", "./internal/gentestvectors", "-out", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("generator: %v\n%s", err, out)
	}
	for _, name := range []string{"feeds.json", "requests.json"} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join("testdata", "vectors", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run go run ./consent/internal/gentestvectors -out consent/testdata/vectors", name)
		}
	}
}

// TestVectorsIndependentCheck runs testdata/vectors/verify.py, a checker
// written in Python from docs/format.md alone, when python3 and its
// cryptography package are installed.
func TestVectorsIndependentCheck(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	if err := exec.Command(py, "-c", "import cryptography").Run(); err != nil {
		t.Skip("python3 cryptography package not installed")
	}
	out, err := exec.Command(py, filepath.Join("testdata", "vectors", "verify.py")).CombinedOutput()
	if err != nil {
		t.Fatalf("verify.py: %v\n%s", err, out)
	}
}
