// Package demo tells the medwallet story end to end on one machine: it
// starts a local network of peers, creates a patient, a clinician and an
// insurer, and runs every use case through the same wallet functions the
// CLI calls, checking that each step behaved as it should.
//
// The demo's keys live in memory only; nothing touches the user's keyring.
package demo

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/medwallet/medwallet/p2p/devnet"
	"github.com/medwallet/medwallet/wallet"
	"github.com/medwallet/medwallet/wallet/keystore"
)

// sampleBundle is a small synthetic FHIR R4 bundle written for the demo,
// used when the shared sample data is not at hand.
//
//go:embed sample-bundle.json
var sampleBundle []byte

// Options configure a demo run.
type Options struct {
	// Dir is where the demo's wallets and peers live; "" means a temporary
	// directory that is removed afterwards.
	Dir string
	// DataDir holds sample records (../shared/data in a checkout); "" looks
	// for it beside the working directory and falls back to a built-in
	// record; BuiltIn uses the built-in record.
	DataDir string
	// Peers is the size of the local network (default 6).
	Peers int
	// Out receives the narration.
	Out io.Writer
}

// BuiltIn as Options.DataDir makes the demo use its built-in record.
const BuiltIn = "builtin"

// ErrStep reports a step that did not behave as it should.
var ErrStep = errors.New("demo step failed")

type runner struct {
	opts Options
	dir  string
	net  string
	n    int
}

func (r *runner) step(title string) {
	r.n++
	fmt.Fprintf(r.opts.Out, "\n%d. %s\n", r.n, title)
}

func (r *runner) say(format string, args ...any) {
	fmt.Fprintf(r.opts.Out, "   "+format+"\n", args...)
}

func (r *runner) ok(format string, args ...any) {
	fmt.Fprintf(r.opts.Out, "   ok: "+format+"\n", args...)
}

func (r *runner) fail(format string, args ...any) error {
	return fmt.Errorf("%w: step %d: %s", ErrStep, r.n, fmt.Sprintf(format, args...))
}

func (r *runner) cfg(name string) wallet.Config {
	return wallet.Config{Home: filepath.Join(r.dir, name), Keystore: keystore.NewMemory(), Network: r.net}
}

// sampleRecords returns the records Alice adds: real Synthea and US Core
// bundles from the shared data when present, else the built-in bundle.
func (r *runner) sampleRecords() (map[string][]byte, error) {
	dir := r.opts.DataDir
	if dir == "" {
		for _, d := range []string{"../shared/data", "../../shared/data", "../../../shared/data"} {
			if _, err := os.Stat(filepath.Join(d, "SOURCES.md")); err == nil {
				dir = d
				break
			}
		}
	}
	out := map[string][]byte{}
	if dir != "" && dir != BuiltIn {
		for label, rel := range map[string]string{
			"Synthea patient history": "fhir-r4/synthea/Kermit_Trantow_f1a650a5-737e-4fd7-828e-03c3348b9524.json",
			"US Core bundle":          "fhir-r4/us-core/uscore_bundle_patient_355.json",
		} {
			b, err := os.ReadFile(filepath.Join(dir, rel))
			if err != nil {
				return nil, fmt.Errorf("reading sample data: %w", err)
			}
			out[label] = b
		}
		return out, nil
	}
	out["built-in sample bundle"] = sampleBundle
	return out, nil
}

// Run plays the demo. It returns nil only if every step behaved as it should.
func Run(ctx context.Context, opts Options) (err error) {
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Peers == 0 {
		opts.Peers = 6
	}
	r := &runner{opts: opts, dir: opts.Dir}
	if r.dir == "" {
		r.dir, err = os.MkdirTemp("", "medwallet-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(r.dir)
	}
	fmt.Fprintf(opts.Out, "medwallet demo in %s (keys in memory only)\n", r.dir)

	r.step(fmt.Sprintf("A local network of %d peers starts on loopback", opts.Peers))
	d, err := devnet.Start(ctx, devnet.Options{Peers: opts.Peers, Dir: filepath.Join(r.dir, "devnet"), SyncInterval: 2 * time.Second})
	if err != nil {
		return err
	}
	defer d.Close()
	r.net = d.NetworkPath()
	for _, a := range d.Addrs() {
		r.say("%s", a)
	}

	r.step("A patient, a clinician and an insurer create identities")
	alice, err := wallet.Init(r.cfg("alice"), "Alice Example", "patient")
	if err != nil {
		return err
	}
	bob, err := wallet.Init(r.cfg("bob"), "Dr Bob Jones", "clinician")
	if err != nil {
		return err
	}
	ivy, err := wallet.Init(r.cfg("insurer"), "Ivy Insurance", "insurer")
	if err != nil {
		return err
	}
	for _, w := range []*wallet.Wallet{alice, bob, ivy} {
		r.say("%-14s %-9s %s", w.Card().Name, w.Card().Role, w.ID())
	}

	r.step("They exchange signed identity cards")
	for _, c := range []struct {
		w    *wallet.Wallet
		name string
		card string
	}{{alice, "Dr Bob", bob.Card().String()}, {alice, "Ivy", ivy.Card().String()},
		{bob, "Alice", alice.Card().String()}, {ivy, "Alice", alice.Card().String()}} {
		if _, err := c.w.AddContact(c.name, c.card); err != nil {
			return err
		}
	}
	r.ok("Alice saved Dr Bob and Ivy; both saved Alice")
	forged := []byte(bob.Card().String())
	forged[len(forged)-5] ^= 1
	if _, err := alice.AddContact("Mallory", string(forged)); err == nil {
		return r.fail("a tampered card was accepted")
	}
	r.ok("a card with one changed character is refused")

	r.step("Alice adds real FHIR records: encrypted, erasure-coded, one share per peer")
	samples, err := r.sampleRecords()
	if err != nil {
		return err
	}
	var recs []wallet.RecordInfo
	originals := map[string][]byte{}
	labels := make([]string, 0, len(samples))
	for label := range samples {
		labels = append(labels, label)
	}
	sort.Strings(labels)
	for _, label := range labels {
		b := samples[label]
		info, err := alice.AddRecord(ctx, bytes.NewReader(b), wallet.AddRecordOptions{Label: label})
		if err != nil {
			return err
		}
		recs = append(recs, info)
		originals[info.ID] = b
		r.say("%s  %-24s %6.1f KiB  any %d of %d shares  %s", info.ID[:12], label, float64(len(b))/1024, info.K, info.N,
			strings.Join(info.Metadata.ResourceTypes(), ","))
	}
	if err := checkNoPlaintext(d, samples); err != nil {
		return r.fail("%v", err)
	}
	r.ok("no peer's disk holds a byte of plaintext (searched every peer's data directory)")

	// Ivy's payment grant goes to the record that holds claims.
	billed := recs[0]
	for _, rec := range recs {
		if slices.Contains(rec.Metadata.ResourceTypes(), "Claim") {
			billed = rec
		}
	}

	r.step("Alice grants Dr Bob both records for treatment, Ivy the claims for payment")
	gBob, err := alice.Grant(ctx, wallet.GrantOptions{To: "Dr Bob", Records: []string{recs[0].ID, recs[1%len(recs)].ID},
		Scopes: []string{"patient/*.rs"}, Purpose: "TREAT", Expires: "30d"})
	if err != nil {
		return err
	}
	r.say("grant %s: Dr Bob, patient/*.rs, TREAT, 30 days", gBob.ID.String()[:12])
	gIvy, err := alice.Grant(ctx, wallet.GrantOptions{To: "Ivy", Records: []string{billed.ID},
		Scopes: []string{"patient/Claim.rs", "patient/Coverage.rs", "patient/ExplanationOfBenefit.rs"}, Purpose: "HPAYMT", Expires: "7d"})
	if err != nil {
		return err
	}
	r.say("grant %s: Ivy, Claim/Coverage/ExplanationOfBenefit, HPAYMT, 7 days", gIvy.ID.String()[:12])
	for _, d := range gIvy.Derived {
		r.say("minimum necessary: Ivy's grant names derived record %s, holding only %v of record %s", d.Derived[:12], d.Kept, d.Source[:12])
	}
	r.ok("both grants are signed, on Alice's feed, and held by the network")

	r.step("Dr Bob finds the grant in his inbox and imports the records")
	inbox, err := bob.Inbox(ctx)
	if err != nil {
		return err
	}
	if len(inbox) != 1 || inbox[0].ID != gBob.ID {
		return r.fail("Dr Bob's inbox holds %d grants, want the one from Alice", len(inbox))
	}
	imported, err := bob.Import(ctx, wallet.ImportOptions{Grant: gBob.ID.String(), OutDir: filepath.Join(r.dir, "bob-imported")})
	if err != nil {
		return err
	}
	for _, im := range imported {
		got, err := os.ReadFile(im.File)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, originals[im.Record]) {
			return r.fail("imported record %s differs from the original", im.Record)
		}
		r.ok("%s imported byte-identical (%d bytes)", filepath.Base(im.File), len(got))
	}

	r.step("Ivy imports only what her payment grant names; Dr Bob's grant is not hers")
	ivyRecs, err := ivy.Import(ctx, wallet.ImportOptions{Grant: gIvy.ID.String(), OutDir: filepath.Join(r.dir, "ivy-imported")})
	if err != nil {
		return err
	}
	for _, im := range ivyRecs {
		b, err := os.ReadFile(im.File)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(`"resourceType": "Condition"`)) || bytes.Contains(b, []byte(`"resourceType":"Condition"`)) {
			return r.fail("Ivy received a Condition, outside her payment scopes")
		}
	}
	r.ok("Ivy imported the claims copy (%d record): no diagnosis, no lab result left the patient's wallet for her", len(ivyRecs))
	if _, err := ivy.Import(ctx, wallet.ImportOptions{Grant: gBob.ID.String(), OutDir: filepath.Join(r.dir, "ivy-x")}); !errors.Is(err, wallet.ErrDenied) {
		return r.fail("Ivy using Dr Bob's grant: got %v, want a denial", err)
	}
	r.ok("Ivy cannot use Dr Bob's grant")

	r.step("Emergency: Mercy Hospital credentials Dr Erin; Alice's break-glass policy lets her in")
	mercy, err := wallet.Init(r.cfg("mercy"), "Mercy Hospital", "issuer")
	if err != nil {
		return err
	}
	erin, err := wallet.Init(r.cfg("erin"), "Dr Erin Diaz", "clinician")
	if err != nil {
		return err
	}
	if _, err := mercy.AddContact("Dr Erin", erin.Card().String()); err != nil {
		return err
	}
	if _, err := alice.AddContact("Mercy", mercy.Card().String()); err != nil {
		return err
	}
	cred, err := mercy.IssueCredential(ctx, wallet.CredentialOptions{To: "Dr Erin", Role: wallet.DefaultEmergencyRole,
		Org: "Mercy Hospital", Licence: "ER-2231", Expires: "52w"})
	if err != nil {
		return err
	}
	r.say("credential %s: Dr Erin is an %s (organisation and licence encrypted to her and Mercy)", cred.ID.String()[:12], cred.Role)
	policy, err := alice.EnableEmergency(ctx, wallet.EmergencyOptions{Issuer: "Mercy", Records: []string{recs[0].ID}, Max: 4 * time.Hour})
	if err != nil {
		return err
	}
	r.say("policy %s: any %s credentialed by Mercy, record %s, 4 h time box", policy.ID.String()[:12], policy.Role, recs[0].ID[:12])
	reason := "unconscious after a road accident, allergies unknown"
	er, err := erin.Import(ctx, wallet.ImportOptions{Emergency: true, Patient: string(alice.ID()), Reason: reason,
		OutDir: filepath.Join(r.dir, "erin-imported")})
	if err != nil {
		return err
	}
	if len(er) != 1 {
		return r.fail("Dr Erin imported %d records, want the policy's one", len(er))
	}
	if got, err := os.ReadFile(er[0].File); err != nil || !bytes.Equal(got, originals[er[0].Record]) {
		return r.fail("Dr Erin's emergency copy differs from the original (%v)", err)
	}
	r.ok("Dr Erin declared the emergency on the ledger, then imported record %s byte-identical", er[0].Record[:12])
	if _, err := ivy.Import(ctx, wallet.ImportOptions{Emergency: true, Patient: string(alice.ID()), Reason: "curious",
		OutDir: filepath.Join(r.dir, "ivy-er")}); !errors.Is(err, wallet.ErrDenied) {
		return r.fail("Ivy breaking the glass without a credential: got %v, want a denial", err)
	}
	r.ok("Ivy, holding no credential, cannot break the glass")
	if _, err := alice.PullLedger(ctx); err != nil {
		return err
	}
	eas, err := alice.EmergencyAccesses(ctx)
	if err != nil {
		return err
	}
	if len(eas) != 1 || eas[0].Reason != reason || eas[0].Review != "" {
		return r.fail("Alice sees %d emergency accesses, want Dr Erin's, unreviewed, with its reason", len(eas))
	}
	r.ok("Alice sees it at once: %q, %d share(s) released, time box until %s", eas[0].Reason, eas[0].Accesses,
		time.Unix(eas[0].Until, 0).UTC().Format(time.Kitchen))
	if _, err := alice.Review(ctx, eas[0].BreakGlass.String(), "ok", "I was in the ER that day"); err != nil {
		return err
	}
	r.ok("Alice reviews it: justified")

	r.step("Alice revokes Dr Bob's grant; every peer stops serving him")
	start := time.Now()
	if _, err := alice.Revoke(ctx, gBob.ID.String()); err != nil {
		return err
	}
	r.say("revoke returned in %v (a peer holds it; gossip carries it on)", time.Since(start).Round(time.Millisecond))
	_, err = bob.Import(ctx, wallet.ImportOptions{Grant: gBob.ID.String(), OutDir: filepath.Join(r.dir, "bob-late")})
	if !errors.Is(err, wallet.ErrDenied) {
		return r.fail("Dr Bob after the revocation: got %v, want a denial", err)
	}
	r.ok("Dr Bob is denied: %v", err)
	r.say("what he imported before stays with him: revocation cannot recall copies")

	r.step("A peer goes down; Alice still reads her record")
	d.Peers[0].Close()
	var buf bytes.Buffer
	if _, err := alice.GetRecord(ctx, recs[0].ID, &buf, wallet.RecordOptions{}); err != nil {
		return err
	}
	if !bytes.Equal(buf.Bytes(), originals[recs[0].ID]) {
		return r.fail("Alice's record differs with a peer down")
	}
	r.ok("rebuilt from the remaining shares, byte-identical")

	r.step("Alice's access log: every decision any peer made on her records")
	if _, err := alice.PullLedger(ctx); err != nil {
		return err
	}
	log, err := alice.AccessLog(ctx)
	if err != nil {
		return err
	}
	var allowed, denied int
	tw := tabwriter.NewWriter(opts.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "   TIME\tDECISION\tWHO\tPURPOSE\tREASON\tPEER")
	for _, a := range log {
		verdict := "allowed"
		if a.Allow {
			allowed++
		} else {
			verdict = "DENIED"
			denied++
		}
		who := a.RequesterName
		if who == "" {
			who = a.Requester.Short()
		}
		fmt.Fprintf(tw, "   %s\t%s\t%s\t%s\t%s\t%s\n", a.Time.Format("15:04:05"), verdict, who, a.Purpose, a.Reason, a.Decider.Short())
	}
	tw.Flush()
	if allowed == 0 || denied == 0 {
		return r.fail("the log shows %d allowed and %d denied accesses, want both", allowed, denied)
	}
	r.ok("%d allowed and %d denied accesses, each signed by the peer that decided", allowed, denied)

	r.step("The accounting of disclosures (45 CFR 164.528)")
	ds, err := alice.Disclosures(ctx, time.Time{})
	if err != nil {
		return err
	}
	tw = tabwriter.NewWriter(opts.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "   DATE\tRECIPIENT\tPURPOSE\tDESCRIPTION")
	seen := map[string]bool{}
	for _, di := range ds {
		fmt.Fprintf(tw, "   %s\t%s\t%s\t%s\n", time.Unix(di.Time, 0).UTC().Format("2006-01-02 15:04"), di.RecipientName, di.PurposeDisplay, di.Description)
		seen[di.RecipientName] = true
	}
	tw.Flush()
	if !seen["Dr Bob"] || !seen["Ivy"] {
		return r.fail("the accounting does not name both recipients")
	}
	r.ok("Dr Bob and Ivy are accounted for; Alice's own reads are not disclosures")

	r.step("An auditor verifies the whole ledger offline")
	rep, err := alice.AuditLedger(ctx)
	if err != nil {
		return err
	}
	if err := wallet.AuditFailure(rep); err != nil {
		return r.fail("audit: %v", err)
	}
	r.ok("every signature, chain and access decision checks out (%d entries)", rep.Entries)

	r.step("Alice loses her laptop: key backup, new home, sync")
	var backup bytes.Buffer
	if err := alice.ExportKey(&backup, "correct horse battery staple"); err != nil {
		return err
	}
	restored, err := wallet.ImportKey(r.cfg("alice-new"), backup.Bytes(), "correct horse battery staple")
	if err != nil {
		return err
	}
	res, err := restored.Sync(ctx)
	if err != nil {
		return err
	}
	for _, rec := range recs {
		buf.Reset()
		if _, err := restored.GetRecord(ctx, rec.ID, &buf, wallet.RecordOptions{}); err != nil {
			return err
		}
		if !bytes.Equal(buf.Bytes(), originals[rec.ID]) {
			return r.fail("restored record %s differs", rec.ID)
		}
	}
	r.ok("same ID %s; %d records restored from the network, byte-identical; %d grants back", restored.ID().Short(), res.Restored, res.Grants)

	fmt.Fprintf(opts.Out, "\nevery step behaved as it should\n")
	return nil
}

// checkNoPlaintext searches every peer's data directory for a distinctive
// slice of each sample.
func checkNoPlaintext(d *devnet.Devnet, samples map[string][]byte) error {
	var needles [][]byte
	for _, b := range samples {
		if len(b) > 200 {
			needles = append(needles, b[100:164])
		}
	}
	return filepath.Walk(d.Dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, n := range needles {
			if bytes.Contains(b, n) {
				return fmt.Errorf("%s holds plaintext", path)
			}
		}
		return nil
	})
}
