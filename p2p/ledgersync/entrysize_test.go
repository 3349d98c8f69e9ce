package ledgersync

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"filippo.io/age"

	"github.com/medwallet/medwallet/consent"
)

// wrapTestKey wraps a fresh record key to r as the wallet does.
func wrapTestKey(tb testing.TB, r *age.X25519Recipient) []byte {
	tb.Helper()
	k, err := age.GenerateX25519Identity()
	if err != nil {
		tb.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, r)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := w.Write([]byte(k.String())); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// bigGrant returns a signed grant of n records to one grantee, each
// record named by an ID of idLen characters and carrying its wrapped key,
// under nScopes scopes.
func bigGrant(tb testing.TB, n, idLen, nScopes int) *consent.Entry {
	tb.Helper()
	grantee, err := age.GenerateX25519Identity()
	if err != nil {
		tb.Fatal(err)
	}
	s := testSigner(tb, "owner")
	g := consent.Grant{Grantee: testSigner(tb, "grantee").ID(), Purpose: "TREAT", NotBefore: t0.Unix()}
	for i := range n {
		id := fmt.Sprintf("%0*x", idLen, i)
		g.Records = append(g.Records, id)
		g.Keys = append(g.Keys, consent.WrappedKey{Record: id, Key: wrapTestKey(tb, grantee.Recipient())})
	}
	types := []string{"AllergyIntolerance", "Condition", "DiagnosticReport", "DocumentReference", "Encounter",
		"Immunization", "MedicationRequest", "Observation", "Procedure", "Patient"}
	for i := range nScopes {
		g.Scopes = append(g.Scopes, "patient/"+types[i%len(types)]+".rs")
	}
	g.Scopes = g.Scopes[:min(nScopes, len(types))]
	slices.Sort(g.Scopes)
	e, err := consent.NewEntry(s, consent.Head{}, t0, consent.KindGrant, &g)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

// TestLargestEntry measures the largest entries a wallet writes, which
// consent.MaxEntrySize is set from (docs/format.md).
func TestLargestEntry(t *testing.T) {
	cases := []struct {
		name   string
		e      *consent.Entry
		within int
	}{
		// The largest grant that names records: MaxGrantRecords wallet
		// record IDs (32 hex characters), each with its wrapped key.
		{"grant of 1024 records", bigGrant(t, consent.MaxGrantRecords, 32, 10), consent.MaxEntrySize / 2},
		// The same with the longest record IDs consent allows.
		{"grant of 1024 records, 128-character IDs", bigGrant(t, consent.MaxGrantRecords, consent.MaxRecordIDLen, 10), consent.MaxEntrySize},
	}
	for _, c := range cases {
		n := len(c.e.Encode())
		t.Logf("%s: %d bytes (cap %d)", c.name, n, consent.MaxEntrySize)
		if n > c.within {
			t.Errorf("%s: %d bytes, want at most %d", c.name, n, c.within)
		}
	}
}
