package vault_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/medwallet/medwallet/internal/testutil"
	"math/bits"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medwallet/medwallet/vault"
	"github.com/medwallet/medwallet/vault/dirstore"
	"github.com/medwallet/medwallet/vault/memstore"
)

// expected metadata for a few files of ../shared/data; every other file is
// checked for its format only.
var wantMeta = map[string]func(t *testing.T, m vault.Metadata){
	"fhir-r4/hl7-examples/Observation-example.json": func(t *testing.T, m vault.Metadata) {
		wantFHIR(t, m, "Observation", map[string]int{"Observation": 1}, "Patient/example")
	},
	"fhir-r4/hl7-examples/Patient-example.json": func(t *testing.T, m vault.Metadata) {
		wantFHIR(t, m, "Patient", map[string]int{"Patient": 1}, "Patient/example")
	},
	"fhir-r4/consent/Consent-consent-example-basic.json": func(t *testing.T, m vault.Metadata) {
		wantFHIR(t, m, "Consent", map[string]int{"Consent": 1}, "Patient/f001")
	},
	"fhir-r4/hl7-examples/DiagnosticReport-gingival-mass.json": func(t *testing.T, m vault.Metadata) {
		wantFHIR(t, m, "DiagnosticReport", map[string]int{"DiagnosticReport": 1}, "") // subject has a display only
	},
	"fhir-r4/synthea/Lawerence6_Baumbach677_ea8d2576-4a23-4906-c353-bfed5adb23bd.json": func(t *testing.T, m vault.Metadata) {
		if m.FHIR.ResourceType != "Bundle" || m.FHIR.Resources["Observation"] != 846 || m.FHIR.Resources["Patient"] != 1 {
			t.Errorf("bundle summary %+v", m.FHIR)
		}
		if !strings.HasPrefix(m.FHIR.Patient, "Patient/") && !strings.HasPrefix(m.FHIR.Patient, "urn:uuid:") {
			t.Errorf("patient reference %q", m.FHIR.Patient)
		}
	},
	"fhir-r4/hl7-examples/package.json": func(t *testing.T, m vault.Metadata) {
		if m.Format != vault.FormatBinary || m.MediaType != "application/json" {
			t.Errorf("package.json: %s %s", m.Format, m.MediaType)
		}
	},
	"ccda/CCD.xml": func(t *testing.T, m vault.Metadata) {
		wantCDA(t, m, "Continuity of Care Document", "34133-9")
	},
	"ccda/Discharge_Summary.xml": func(t *testing.T, m vault.Metadata) {
		wantCDA(t, m, "Discharge Summary", "18842-5")
	},
	"ccda/Referral_Note.xml": func(t *testing.T, m vault.Metadata) {
		wantCDA(t, m, "Referral Note", "57113-1") // as coded in the file
	},
	"ccda/Unstructured_Document_embed.xml": func(t *testing.T, m vault.Metadata) {
		wantCDA(t, m, "Unstructured Document", "")
	},
	"dicom/CT_small.dcm":         func(t *testing.T, m vault.Metadata) { wantModality(t, m, "CT") },
	"dicom/MR_small.dcm":         func(t *testing.T, m vault.Metadata) { wantModality(t, m, "MR") },
	"dicom/test-SR.dcm":          func(t *testing.T, m vault.Metadata) { wantModality(t, m, "SR") },
	"dicom/dicom3tools-0051.dcm": func(t *testing.T, m vault.Metadata) { wantModality(t, m, "") },
	"pdf/ccda-McBee-advance-directive.pdf": func(t *testing.T, m vault.Metadata) {
		if m.PDF == nil || m.PDF.Version == "" {
			t.Errorf("pdf info %+v", m.PDF)
		}
	},
}

func wantFHIR(t *testing.T, m vault.Metadata, rt string, counts map[string]int, patient string) {
	t.Helper()
	f := m.FHIR
	if f == nil || f.ResourceType != rt || f.Patient != patient || f.Partial || fmt.Sprint(f.Resources) != fmt.Sprint(counts) {
		t.Errorf("fhir info %+v, want %s %v %s", f, rt, counts, patient)
	}
}

func wantCDA(t *testing.T, m vault.Metadata, docType, code string) {
	t.Helper()
	if m.CDA == nil || m.CDA.DocumentType != docType || (code != "" && m.CDA.Code != code) {
		t.Errorf("cda info %+v, want %q %q", m.CDA, docType, code)
	}
}

func wantModality(t *testing.T, m vault.Metadata, modality string) {
	t.Helper()
	if m.DICOM == nil || (modality != "" && m.DICOM.Modality != modality) {
		t.Errorf("dicom info %+v, want modality %q", m.DICOM, modality)
	}
}

func formatFor(rel string) string {
	switch {
	case strings.HasPrefix(rel, "fhir-r4/") && strings.HasSuffix(rel, ".json") && !strings.HasSuffix(rel, "package.json"):
		return vault.FormatFHIR
	case strings.HasPrefix(rel, "ccda/") && strings.HasSuffix(rel, ".xml"):
		return vault.FormatCCDA
	case strings.HasPrefix(rel, "dicom/") && strings.HasSuffix(rel, ".dcm"):
		return vault.FormatDICOM
	case strings.HasSuffix(rel, ".pdf"):
		return vault.FormatPDF
	}
	return vault.FormatBinary
}

// TestRoundTripSharedData seals every file of the shared test data, checks
// its metadata, and opens it again byte for byte, through the directory
// store, with small stripes so that large files span many stripes.
func TestRoundTripSharedData(t *testing.T) {
	data := testutil.SharedData(t)
	store, err := dirstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	o := newOwner(t)
	seen := 0
	for _, dir := range []string{"fhir-r4", "ccda", "dicom", "pdf"} {
		err := filepath.WalkDir(filepath.Join(data, dir), func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(data, path)
			rel = filepath.ToSlash(rel)
			seen++
			t.Run(rel, func(t *testing.T) {
				plain, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				f, err := os.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				m, err := vault.Seal(context.Background(), f, store, vault.SealOptions{
					Params: vault.Params{StripeSize: 64 << 10}, Owner: o.pub, Label: "round trip",
				})
				if err != nil {
					t.Fatal(err)
				}
				env, err := m.Encrypt(o.priv, o.age.Recipient())
				if err != nil {
					t.Fatal(err)
				}
				m2, err := vault.DecryptManifest(env, o.pub, o.age)
				if err != nil {
					t.Fatal(err)
				}
				md := m2.Metadata
				if md.Format != formatFor(rel) || md.Size != int64(len(plain)) || md.Label != "round trip" {
					t.Errorf("metadata %s/%s size %d label %q, want %s size %d", md.Format, md.MediaType, md.Size, md.Label, formatFor(rel), len(plain))
				}
				if check, ok := wantMeta[rel]; ok {
					check(t, md)
				}
				got, err := open(t, m2, store)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, plain) {
					t.Fatalf("round trip changed the file (%d bytes in, %d out)", len(plain), len(got))
				}
				for _, h := range vault.Verify(context.Background(), m2, store) {
					if h.Status != vault.StatusOK {
						t.Errorf("share %d: %s %s", h.Index, h.Status, h.Detail)
					}
				}
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if seen < 30 {
		t.Fatalf("only %d files found under %s", seen, data)
	}
}

// subsets returns every subset of {0..n-1} of size k, as bit masks.
func subsets(n, k int) []uint {
	var out []uint
	for mask := uint(0); mask < 1<<n; mask++ {
		if bits.OnesCount(mask) == k {
			out = append(out, mask)
		}
	}
	return out
}

func TestEveryLossPattern(t *testing.T) {
	for _, p := range []vault.Params{
		{K: 3, N: 5, StripeSize: 4096},
		{K: 4, N: 6, StripeSize: 4096},
		{K: 1, N: 3, StripeSize: 4096},
		{K: 2, N: 3, StripeSize: 4096},
		{K: 5, N: 8, StripeSize: 4096},
	} {
		t.Run(fmt.Sprintf("k%d_n%d", p.K, p.N), func(t *testing.T) {
			plain := randomData(t, 3*4096+1234) // three full stripes and a short one
			store, m, _ := sealMem(t, plain, p)
			for lost := 0; lost <= p.N-p.K+1; lost++ {
				for _, mask := range subsets(p.N, lost) {
					view := memstore.New()
					for i, s := range m.Shares {
						if mask&(1<<i) == 0 {
							view.Replace(s.ID, store.Bytes(s.ID))
						}
					}
					got, err := open(t, m, view)
					if lost <= p.N-p.K {
						if err != nil {
							t.Fatalf("lost %b: %v", mask, err)
						}
						if !bytes.Equal(got, plain) {
							t.Fatalf("lost %b: wrong output", mask)
						}
						continue
					}
					var nes *vault.NotEnoughSharesError
					if !errors.As(err, &nes) || !errors.Is(err, vault.ErrNotEnoughShares) {
						t.Fatalf("lost %b: got %v, want NotEnoughSharesError", mask, err)
					}
					if len(got) != 0 {
						t.Fatalf("lost %b: %d bytes written before failing", mask, len(got))
					}
					if !strings.Contains(err.Error(), "missing") {
						t.Errorf("error does not name the missing shares: %v", err)
					}
				}
			}
		})
	}
}

// damage applies f to a copy of share i and stores it under the original ID.
func damage(t *testing.T, src *memstore.Store, m *vault.Manifest, f map[int]func([]byte) []byte) *memstore.Store {
	t.Helper()
	view := memstore.New()
	for i, s := range m.Shares {
		b := src.Bytes(s.ID)
		if fn, ok := f[i]; ok {
			b = fn(b)
		}
		if b != nil {
			view.Replace(s.ID, b)
		}
	}
	return view
}

func flip(off int, bit uint) func([]byte) []byte {
	return func(b []byte) []byte {
		b[off] ^= 1 << bit
		return b
	}
}

// TestShareDamage corrupts shares in every way we can think of: Open must
// still produce the exact plaintext from the others, Verify must name the
// bad share, and with too many bad shares Open must fail, never return
// wrong bytes.
func TestShareDamage(t *testing.T) {
	p := vault.Params{K: 3, N: 5, StripeSize: 4096}
	plain := randomData(t, 5*4096+100)
	store, m, _ := sealMem(t, plain, p)
	other, otherM, _ := sealMem(t, randomData(t, len(plain)), p)
	shareLen := len(store.Bytes(m.Shares[0].ID))

	cases := map[string]func(i int) func([]byte) []byte{
		"truncated":        func(int) func([]byte) []byte { return func(b []byte) []byte { return b[:len(b)-1] } },
		"truncated header": func(int) func([]byte) []byte { return func(b []byte) []byte { return b[:10] } },
		"empty":            func(int) func([]byte) []byte { return func([]byte) []byte { return []byte{} } },
		"trailing bytes":   func(int) func([]byte) []byte { return func(b []byte) []byte { return append(b, 0) } },
		"swapped": func(i int) func([]byte) []byte {
			return func([]byte) []byte { return store.Bytes(m.Shares[(i+1)%p.N].ID) }
		},
		"foreign": func(i int) func([]byte) []byte {
			return func([]byte) []byte { return other.Bytes(otherM.Shares[i].ID) }
		},
		"first block bit":  func(int) func([]byte) []byte { return flip(vault.ShareHeaderSize, 0) },
		"middle block bit": func(int) func([]byte) []byte { return flip(shareLen/2, 3) },
		"last byte bit":    func(int) func([]byte) []byte { return flip(shareLen-1, 7) },
	}
	for bit := 0; bit < vault.ShareHeaderSize*8; bit++ {
		cases[fmt.Sprintf("header bit %d", bit)] = func(int) func([]byte) []byte { return flip(bit/8, uint(bit%8)) }
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			for i := range p.N {
				view := damage(t, store, m, map[int]func([]byte) []byte{i: mk(i)})
				got, err := open(t, m, view)
				if err != nil || !bytes.Equal(got, plain) {
					t.Fatalf("share %d damaged: open err=%v, equal=%v", i, err, bytes.Equal(got, plain))
				}
				health := vault.Verify(context.Background(), m, view)
				for _, h := range health {
					bad := h.Status != vault.StatusOK
					if bad != (h.Index == i) {
						t.Fatalf("share %d damaged: verify says share %d is %s (%s)", i, h.Index, h.Status, h.Detail)
					}
				}
			}
			// Too many damaged shares: an error, never wrong bytes.
			fs := map[int]func([]byte) []byte{}
			for i := 0; i <= p.N-p.K; i++ {
				fs[i] = mk(i)
			}
			view := damage(t, store, m, fs)
			got, err := open(t, m, view)
			if name == "trailing bytes" {
				// Trailing bytes do not touch any block: Open can still use them.
				if err != nil || !bytes.Equal(got, plain) {
					t.Fatalf("trailing bytes: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("open succeeded with too many damaged shares")
			}
			if !errors.Is(err, vault.ErrNotEnoughShares) {
				t.Fatalf("error %v, want ErrNotEnoughShares", err)
			}
			if !bytes.Equal(got, plain[:len(got)]) {
				t.Fatal("wrong bytes written before the error")
			}
		})
	}
}

// TestAgeInterop reassembles the ciphertext from k shares and decrypts it
// with the stock age CLI given the record key.
func TestAgeInterop(t *testing.T) {
	agePath, err := exec.LookPath("age")
	if err != nil {
		t.Fatal("the age CLI is required for this test (Debian package age, /usr/bin/age): ", err)
	}
	plain, err := os.ReadFile(filepath.Join(testutil.SharedData(t), "fhir-r4/synthea/Kermit_Trantow_f1a650a5-737e-4fd7-828e-03c3348b9524.json"))
	if err != nil {
		t.Fatal(err)
	}
	store, m, _ := sealMem(t, plain, vault.Params{StripeSize: 64 << 10})
	// Lose two shares (one data, one parity) so decoding is exercised too.
	view := damage(t, store, m, map[int]func([]byte) []byte{0: func([]byte) []byte { return nil }, 4: func([]byte) []byte { return nil }})
	dir := t.TempDir()
	var ct bytes.Buffer
	if err := vault.Reassemble(context.Background(), m, view, &ct); err != nil {
		t.Fatal(err)
	}
	if int64(ct.Len()) != m.CipherSize {
		t.Fatalf("ciphertext %d bytes, manifest says %d", ct.Len(), m.CipherSize)
	}
	ctPath, keyPath := filepath.Join(dir, "record.age"), filepath.Join(dir, "record.key")
	if err := os.WriteFile(ctPath, ct.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, []byte(m.Key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(agePath, "-d", "-i", keyPath, ctPath).Output()
	if err != nil {
		t.Fatalf("age -d: %v", err)
	}
	if !bytes.Equal(out, plain) {
		t.Fatal("age CLI output differs from the original")
	}
}
