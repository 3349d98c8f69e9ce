package smarthealth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medwallet/medwallet/internal/testutil"
)

type payloadJSON struct {
	URL   string `json:"url"`
	Flag  string `json:"flag"`
	Key   string `json:"key"`
	Label string `json:"label"`
}

func readShared(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testutil.SharedData(t), "smart-health-links", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The specification's examples: each -shl.txt is a viewer URL whose payload
// the -shl-details.json file spells out (IPS under "shlinkJsonPayload" with
// the bare and viewer forms beside it, CARIN as the payload itself).
func TestParseLinkSpecExamples(t *testing.T) {
	for _, name := range []string{"IPS_IG-bundle-01", "CARIN_INS_CD-bundle-01"} {
		t.Run(name, func(t *testing.T) {
			var d struct {
				payloadJSON
				Payload *payloadJSON `json:"shlinkJsonPayload"`
				Bare    string       `json:"shlinkBare"`
				Shlink  string       `json:"shlink"`
			}
			if err := json.Unmarshal(readShared(t, name+"-shl-details.json"), &d); err != nil {
				t.Fatal(err)
			}
			want := d.payloadJSON
			texts := []string{string(readShared(t, name+"-shl.txt"))}
			if d.Payload != nil {
				want = *d.Payload
				texts = append(texts, d.Bare, d.Shlink)
			}
			for _, text := range texts {
				l, err := ParseLink(text)
				if err != nil {
					t.Fatalf("ParseLink: %v", err)
				}
				got := payloadJSON{URL: l.URL, Flag: l.Flag, Key: l.Key.Text(), Label: l.Label}
				if got != want {
					t.Fatalf("ParseLink = %+v, want %+v", got, want)
				}
				if !l.Has(FlagDirect) || l.Has(FlagPasscode) {
					t.Fatalf("flags of %q", l.Flag)
				}
			}
		})
	}
	if _, err := ParseLink(encodeRaw(string(readShared(t, "shl-payload-2.json")))); err != nil {
		t.Fatalf("shl-payload-2.json: %v", err)
	}
}

func TestLinkRoundTrip(t *testing.T) {
	key, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	in := Link{
		URL:   "https://peer.example:8443/shl/abc",
		Key:   key,
		Exp:   time.Unix(1893456000, 0).UTC(),
		Flag:  "LP",
		Label: "Allergies for Dr. Ngụyễn & co <x>",
		V:     1,
	}
	text, err := in.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(text, LinkScheme) {
		t.Fatalf("Encode = %q", text)
	}
	out, err := ParseLink("  " + text + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Fatalf("round trip: got %+v, want %+v", out, in)
	}
	viewer, err := in.ViewerURL("https://viewer.example/view")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := ParseLink(viewer); err != nil || out != in {
		t.Fatalf("viewer round trip: %+v, %v", out, err)
	}
	// The spec's field order: url, flag, key, exp, label, v.
	raw, _ := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(text, LinkScheme))
	if !strings.HasPrefix(string(raw), `{"url":"https://peer.example:8443/shl/abc","flag":"LP","key":"`) {
		t.Fatalf("payload JSON = %s", raw)
	}
}

func encodeRaw(json string) string {
	return LinkScheme + base64.RawURLEncoding.EncodeToString([]byte(json))
}

func TestParseLinkRefusals(t *testing.T) {
	const key = `"rxTgYlOaKJPFtcEd0qcceN8wEU4p94SqAwIWQe6uX7Q"`
	payload1, err := os.ReadFile(filepath.Join(testutil.SharedData(t), "smart-health-links", "shl-payload-1.json"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, text, field string
	}{
		{"no scheme", "https://example.org/x", ""},
		{"not base64", "shlink:/***", ""},
		{"padded base64", encodeRaw(`{"url":"https://a.example/m","key":`+key+`}`) + "=", ""},
		{"not JSON", encodeRaw(`hello`), ""},
		{"array", encodeRaw(`[1]`), ""},
		{"trailing data", encodeRaw(`{"url":"https://a.example/m","key":` + key + `} {}`), ""},
		{"no url", encodeRaw(`{"key":` + key + `}`), "url"},
		{"url number", encodeRaw(`{"url":5,"key":` + key + `}`), "url"},
		{"http url", encodeRaw(`{"url":"http://a.example/m","key":` + key + `}`), "url"},
		{"url fragment", encodeRaw(`{"url":"https://a.example/m#x","key":` + key + `}`), "url"},
		{"url user", encodeRaw(`{"url":"https://u@a.example/m","key":` + key + `}`), "url"},
		{"url too long", encodeRaw(`{"url":"https://a.example/` + strings.Repeat("m", 120) + `","key":` + key + `}`), "url"},
		{"no key", encodeRaw(`{"url":"https://a.example/m"}`), "key"},
		{"short key", encodeRaw(`{"url":"https://a.example/m","key":"abc"}`), "key"},
		{"key not base64url", encodeRaw(`{"url":"https://a.example/m","key":"rxTgYlOaKJPFtcEd0qcceN8wEU4p94SqAwIWQe6uX7+"}`), "key"},
		{"bad flag", encodeRaw(`{"url":"https://a.example/m","key":` + key + `,"flag":"X"}`), "flag"},
		{"flag order", encodeRaw(`{"url":"https://a.example/m","key":` + key + `,"flag":"PL"}`), "flag"},
		{"flag repeat", encodeRaw(`{"url":"https://a.example/m","key":` + key + `,"flag":"LL"}`), "flag"},
		{"flag U with P", encodeRaw(`{"url":"https://a.example/m","key":` + key + `,"flag":"PU"}`), "flag"},
		{"exp string (shl-payload-1.json)", encodeRaw(string(payload1)), "exp"},
		{"exp negative", encodeRaw(`{"url":"https://a.example/m","key":` + key + `,"exp":-1}`), "exp"},
		{"exp huge", encodeRaw(`{"url":"https://a.example/m","key":` + key + `,"exp":1e300}`), "exp"},
		{"label long", encodeRaw(`{"url":"https://a.example/m","key":` + key + `,"label":"` + strings.Repeat("é", 81) + `"}`), "label"},
		{"label control", encodeRaw(`{"url":"https://a.example/m","key":` + key + `,"label":"a\u0007b"}`), "label"},
		{"v 2", encodeRaw(`{"url":"https://a.example/m","key":` + key + `,"v":2}`), "v"},
		{"v string", encodeRaw(`{"url":"https://a.example/m","key":` + key + `,"v":"1"}`), "v"},
		{"too long", LinkScheme + strings.Repeat("A", MaxLinkText), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseLink(c.text)
			if !errors.Is(err, ErrInvalidLink) {
				t.Fatalf("ParseLink = %v, want ErrInvalidLink", err)
			}
			var le *LinkError
			if !errors.As(err, &le) || le.Field != c.field {
				t.Fatalf("ParseLink = %v, want field %q", err, c.field)
			}
			if strings.Contains(err.Error(), "rxTgYlOa") {
				t.Fatalf("error %q holds the key", err)
			}
		})
	}
}

func TestParseLinkAccepts(t *testing.T) {
	const key = `"rxTgYlOaKJPFtcEd0qcceN8wEU4p94SqAwIWQe6uX7Q"`
	for _, js := range []string{
		`{"url":"https://a.example/m","key":` + key + `,"unknown":{"x":[1,2]}}`,
		`{"url":"https://a.example/m","key":` + key + `,"exp":1767225600.5,"v":1,"flag":"LP"}`,
		`{"url":"https://a.example/m","key":` + key + `,"flag":"LU","label":null}`,
	} {
		if _, err := ParseLink(encodeRaw(js)); err != nil {
			t.Errorf("ParseLink(%s) = %v", js, err)
		}
	}
}

func FuzzParseLink(f *testing.F) {
	f.Add("shlink:/eyJ1cmwiOiJodHRwczovL2EuZXhhbXBsZS9tIiwia2V5IjoicnhUZ1lsT2FLSlBGdGNFZDBxY2NlTjh3RVU0cDk0U3FBd0lXUWU2dVg3USJ9")
	f.Add("https://viewer.example/#shlink:/eyJ1cmwiOiJodHRwczovL2EuZXhhbXBsZS9tIn0")
	f.Fuzz(func(t *testing.T, text string) {
		l, err := ParseLink(text)
		if err != nil {
			if !errors.Is(err, ErrInvalidLink) {
				t.Fatalf("error %v does not wrap ErrInvalidLink", err)
			}
			return
		}
		again, err := l.Encode()
		if err != nil {
			t.Fatalf("Encode of a parsed link: %v", err)
		}
		l2, err := ParseLink(again)
		if err != nil {
			t.Fatalf("ParseLink(Encode(l)): %v", err)
		}
		if l2 != l {
			t.Fatalf("round trip: %+v != %+v", l2, l)
		}
	})
}
