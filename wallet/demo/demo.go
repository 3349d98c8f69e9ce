// Package demo tells the medwallet story end to end on one machine: it
// starts a local network of peers, creates a patient, a clinician and an
// insurer, and runs every use case through the same wallet functions the
// CLI calls, checking that each step behaved as it should.
//
// The narration is written for a patient reading it top to bottom: people
// and records go by name, purposes of use are explained the first time
// they appear, and every time of day is printed the same way.
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

	"github.com/medwallet/medwallet/consent"
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

// DefaultPeers is the size of the demo's network when Options.Peers is 0.
const DefaultPeers = 6

// ErrStep reports a step that did not behave as it should.
var ErrStep = errors.New("demo step failed")

// clockFormat is the one way the demo prints a time of day (local time;
// the first line names the date and the zone).
const clockFormat = "15:04:05"

func clock(t time.Time) string { return t.Local().Format(clockFormat) }

// runner holds the story's cast and what each step leaves for the next.
type runner struct {
	opts Options
	dir  string
	n    int
	d    *devnet.Devnet

	alice, bob, ivy, mercy, erin *wallet.Wallet

	recs      []wallet.RecordInfo // Alice's records, in the order added
	originals map[string][]byte   // record ID -> the bytes Alice added
	names     map[string]string   // record ID -> how the narration names it
	order     map[string]int      // record ID -> when the story met it
	billed    wallet.RecordInfo   // the record holding claims, for Ivy

	gBob, gIvy, policy wallet.GrantInfo

	explained map[string]bool // purpose codes already explained
}

func (r *runner) step(title string) {
	r.n++
	fmt.Fprintf(r.opts.Out, "\n%d. %s\n", r.n, title)
}

func (r *runner) say(format string, args ...any) {
	fmt.Fprintf(r.opts.Out, "   "+format+"\n", args...)
}

// ok says a checked outcome, wrapped like a paragraph.
func (r *runner) ok(format string, args ...any) {
	r.wrap("ok: ", "    ", fmt.Sprintf(format, args...))
}

func (r *runner) fail(format string, args ...any) error {
	return fmt.Errorf("%w: step %d: %s", ErrStep, r.n, fmt.Sprintf(format, args...))
}

func (r *runner) table() *tabwriter.Writer {
	return tabwriter.NewWriter(r.opts.Out, 0, 4, 2, ' ', 0)
}

func (r *runner) cfg(name string) wallet.Config {
	return wallet.Config{Home: filepath.Join(r.dir, name), Keystore: keystore.NewMemory(), Network: r.d.NetworkPath()}
}

// purpose names a purpose-of-use code, explained the first time the story
// meets it: "HPAYMT (healthcare payment)", then "HPAYMT".
func (r *runner) purpose(code string) string {
	if r.explained[code] {
		return code
	}
	r.explained[code] = true
	p, err := consent.LookupPurpose(code)
	if err != nil {
		return code
	}
	return fmt.Sprintf("%s (%s)", code, strings.ToLower(p.Display))
}

// name gives a record the name the narration calls it by.
func (r *runner) name(id, name string) {
	r.names[id] = name
	r.order[id] = len(r.order)
}

// record names a record as the narration does.
func (r *runner) record(id string) string {
	if n, ok := r.names[id]; ok {
		return n
	}
	return "record " + id[:12]
}

// verdict words a decision as the access log shows it.
func verdict(allow bool) string {
	if allow {
		return "allowed"
	}
	return "DENIED"
}

// who names a party: Alice's contact name, else a short ID.
func who(name string, id consent.ID) string {
	if name != "" {
		return name
	}
	return id.Short()
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
		opts.Peers = DefaultPeers
	}
	r := &runner{opts: opts, dir: opts.Dir, originals: map[string][]byte{}, names: map[string]string{}, order: map[string]int{}, explained: map[string]bool{}}
	if r.dir == "" {
		r.dir, err = os.MkdirTemp("", "medwallet-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(r.dir)
	}
	now := time.Now()
	fmt.Fprintf(opts.Out, "medwallet demo, %s, times of day in %s\n", now.Format("2006-01-02"), now.Format("MST"))
	fmt.Fprintf(opts.Out, "files in %s; every key in memory only\n", r.dir)

	defer func() {
		if r.d != nil {
			r.d.Close()
		}
	}()
	for _, s := range []func(context.Context) error{
		r.network, r.identities, r.cards, r.addRecords, r.grant, r.bobImports, r.ivyImports,
		r.emergency, r.revoke, r.peersDown, r.accessLog, r.accounting, r.audit, r.restore,
	} {
		if err := s(ctx); err != nil {
			return err
		}
	}
	fmt.Fprintf(opts.Out, "\nevery step behaved as it should\n")
	return nil
}

func (r *runner) network(ctx context.Context) (err error) {
	r.step(fmt.Sprintf("A local network of %d peers starts on loopback", r.opts.Peers))
	r.d, err = devnet.Start(ctx, devnet.Options{Peers: r.opts.Peers, Dir: filepath.Join(r.dir, "devnet"), SyncInterval: 2 * time.Second})
	if err != nil {
		return err
	}
	r.say("In real life these are clinics, community nodes and Alice's own always-on box.")
	r.say("Each stores encrypted pieces of records and enforces Alice's consent on its own.")
	for _, a := range r.d.Addrs() {
		r.say("%s", a)
	}
	return nil
}

func (r *runner) identities(context.Context) (err error) {
	r.step("A patient, a clinician and an insurer create identities")
	if r.alice, err = wallet.Init(r.cfg("alice"), "Alice Example", "patient"); err != nil {
		return err
	}
	if r.bob, err = wallet.Init(r.cfg("bob"), "Dr Bob Jones", "clinician"); err != nil {
		return err
	}
	if r.ivy, err = wallet.Init(r.cfg("insurer"), "Ivy Insurance", "insurer"); err != nil {
		return err
	}
	for _, w := range []*wallet.Wallet{r.alice, r.bob, r.ivy} {
		r.say("%-14s %-9s %s", w.Card().Name, w.Card().Role, w.ID())
	}
	r.say("Each ID is a public key; the secret half never leaves its owner's machine.")
	return nil
}

func (r *runner) cards(context.Context) error {
	r.step("They exchange signed identity cards")
	for _, c := range []struct {
		w    *wallet.Wallet
		name string
		card string
	}{{r.alice, "Dr Bob", r.bob.Card().String()}, {r.alice, "Ivy", r.ivy.Card().String()},
		{r.bob, "Alice", r.alice.Card().String()}, {r.ivy, "Alice", r.alice.Card().String()}} {
		if _, err := c.w.AddContact(c.name, c.card); err != nil {
			return err
		}
	}
	r.ok("Alice saved Dr Bob and Ivy as contacts; both saved Alice")
	forged := []byte(r.bob.Card().String())
	forged[len(forged)-5] ^= 1
	if _, err := r.alice.AddContact("Mallory", string(forged)); err == nil {
		return r.fail("a tampered card was accepted")
	}
	r.ok("a card with one changed character is refused")
	return nil
}

func (r *runner) addRecords(ctx context.Context) error {
	r.step("Alice adds real FHIR records, encrypted on her own machine")
	samples, err := r.sampleRecords()
	if err != nil {
		return err
	}
	labels := make([]string, 0, len(samples))
	for label := range samples {
		labels = append(labels, label)
	}
	sort.Strings(labels)
	for _, label := range labels {
		b := samples[label]
		info, err := r.alice.AddRecord(ctx, bytes.NewReader(b), wallet.AddRecordOptions{Label: label})
		if err != nil {
			return err
		}
		if len(info.Shares) != info.N || info.N > r.opts.Peers || info.K >= info.N {
			return r.fail("record %s has %d shares, any %d of %d rebuilding it, on %d peers", label, len(info.Shares), info.K, info.N, r.opts.Peers)
		}
		r.recs = append(r.recs, info)
		r.originals[info.ID] = b
		r.name(info.ID, label)
		types := info.Metadata.ResourceTypes()
		r.say("record %s: %s, %.1f KiB, with %d types of FHIR resource:", info.ID[:12], label, float64(len(b))/1024, len(types))
		r.wrap("  ", "  ", strings.Join(types, ", "))
	}
	k, n := r.recs[0].K, r.recs[0].N
	on := fmt.Sprintf("%d different peers", n)
	if n < r.opts.Peers {
		on += fmt.Sprintf(" (of the %d)", r.opts.Peers)
	}
	r.wrap("", "", fmt.Sprintf("Each record is encrypted, then cut into %d shares held by %s. Any %d shares rebuild it; "+
		"fewer than %d, or all %d without Alice's key, reveal nothing.", n, on, k, k, n))
	if err := checkNoPlaintext(r.d, samples); err != nil {
		return r.fail("%v", err)
	}
	r.ok("no peer's disk holds a byte of plaintext (searched every peer's data directory)")
	// Ivy's payment grant goes to the record that holds claims.
	r.billed = r.recs[0]
	for _, rec := range r.recs {
		if slices.Contains(rec.Metadata.ResourceTypes(), "Claim") {
			r.billed = rec
		}
	}
	return nil
}

func (r *runner) grant(ctx context.Context) (err error) {
	both := "both records"
	if len(r.recs) == 1 {
		both = "the record"
	}
	r.step(fmt.Sprintf("Alice grants Dr Bob %s for treatment, and Ivy the claims for payment", both))
	var ids []string
	for _, rec := range r.recs {
		ids = append(ids, rec.ID)
	}
	r.gBob, err = r.alice.Grant(ctx, wallet.GrantOptions{To: "Dr Bob", Records: ids,
		Scopes: []string{"patient/*.rs"}, Purpose: "TREAT", Expires: "30d"})
	if err != nil {
		return err
	}
	r.say("grant %s: Dr Bob may read everything in %s (scope patient/*.rs)", r.gBob.ID.String()[:12], both)
	r.say("  for %s, for 30 days", r.purpose("TREAT"))
	ivyTypes := []string{"Claim", "Coverage", "ExplanationOfBenefit"}
	var scopes []string
	for _, t := range ivyTypes {
		scopes = append(scopes, "patient/"+t+".rs")
	}
	r.gIvy, err = r.alice.Grant(ctx, wallet.GrantOptions{To: "Ivy", Records: []string{r.billed.ID},
		Scopes: scopes, Purpose: "HPAYMT", Expires: "7d"})
	if err != nil {
		return err
	}
	r.say("grant %s: Ivy may read only the %s resources", r.gIvy.ID.String()[:12], and(ivyTypes))
	r.say("  of the %s, for %s, for 7 days", r.record(r.billed.ID), r.purpose("HPAYMT"))
	for _, d := range r.gIvy.Derived {
		r.name(d.Derived, "claims copy for Ivy")
		r.wrap("", "  ", fmt.Sprintf("Minimum necessary: Alice's wallet made a copy of the %s that keeps only its %s and leaves out %s. "+
			"Ivy's grant names this copy (record %s), never the full record.", r.record(d.Source), counted(d.Kept), others(d.Dropped), d.Derived[:12]))
	}
	if r.billed.Metadata.FHIR != nil && len(r.billed.Metadata.FHIR.Resources) > len(ivyTypes) && len(r.gIvy.Derived) != 1 {
		return r.fail("Ivy's grant made %d minimum-necessary copies, want 1", len(r.gIvy.Derived))
	}
	r.ok("both grants are signed, on Alice's feed, and held by the network")
	return nil
}

func (r *runner) bobImports(ctx context.Context) error {
	r.step("Dr Bob finds the grant in his inbox and imports the records")
	inbox, err := r.bob.Inbox(ctx)
	if err != nil {
		return err
	}
	if len(inbox) != 1 || inbox[0].ID != r.gBob.ID {
		return r.fail("Dr Bob's inbox holds %d grants, want the one from Alice", len(inbox))
	}
	imported, err := r.bob.Import(ctx, wallet.ImportOptions{Grant: r.gBob.ID.String(), OutDir: filepath.Join(r.dir, "bob-imported")})
	if err != nil {
		return err
	}
	if len(imported) != len(r.recs) {
		return r.fail("Dr Bob imported %d records, want %d", len(imported), len(r.recs))
	}
	sort.Slice(imported, func(i, j int) bool { return r.rank(imported[i].Record) < r.rank(imported[j].Record) })
	for _, im := range imported {
		got, err := os.ReadFile(im.File)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, r.originals[im.Record]) {
			return r.fail("imported record %s differs from the original", im.Record)
		}
		r.ok("%s imported, byte-identical to Alice's (%.1f KiB)", r.record(im.Record), float64(len(got))/1024)
	}
	return nil
}

func (r *runner) ivyImports(ctx context.Context) error {
	r.step("Ivy imports only what her payment grant names; Dr Bob's grant is not hers")
	ivyRecs, err := r.ivy.Import(ctx, wallet.ImportOptions{Grant: r.gIvy.ID.String(), OutDir: filepath.Join(r.dir, "ivy-imported")})
	if err != nil {
		return err
	}
	if len(ivyRecs) != 1 {
		return r.fail("Ivy imported %d records, want the one her grant names", len(ivyRecs))
	}
	b, err := os.ReadFile(ivyRecs[0].File)
	if err != nil {
		return err
	}
	for _, t := range []string{"Condition", "Observation"} {
		if bytes.Contains(b, []byte(`"resourceType": "`+t+`"`)) || bytes.Contains(b, []byte(`"resourceType":"`+t+`"`)) {
			return r.fail("Ivy received a %s, outside her payment scopes", t)
		}
	}
	r.ok("Ivy imported the copy made for her: no diagnosis (Condition), no lab result (Observation)")
	if _, err := r.ivy.Import(ctx, wallet.ImportOptions{Grant: r.gBob.ID.String(), OutDir: filepath.Join(r.dir, "ivy-x")}); !errors.Is(err, wallet.ErrDenied) {
		return r.fail("Ivy using Dr Bob's grant: got %v, want a denial", err)
	}
	r.ok("Ivy cannot use Dr Bob's grant")
	return nil
}

func (r *runner) emergency(ctx context.Context) (err error) {
	r.step("Emergency: Mercy Hospital credentials Dr Erin; Alice's break-glass policy lets her in")
	if r.mercy, err = wallet.Init(r.cfg("mercy"), "Mercy Hospital", "issuer"); err != nil {
		return err
	}
	if r.erin, err = wallet.Init(r.cfg("erin"), "Dr Erin Diaz", "clinician"); err != nil {
		return err
	}
	if _, err := r.mercy.AddContact("Dr Erin", r.erin.Card().String()); err != nil {
		return err
	}
	if _, err := r.alice.AddContact("Mercy", r.mercy.Card().String()); err != nil {
		return err
	}
	cred, err := r.mercy.IssueCredential(ctx, wallet.CredentialOptions{To: "Dr Erin", Role: wallet.DefaultEmergencyRole,
		Org: "Mercy Hospital", Licence: "ER-2231", Expires: "52w"})
	if err != nil {
		return err
	}
	r.say("credential %s: Mercy vouches that Dr Erin has the role %q;", cred.ID.String()[:12], cred.Role)
	r.say("  her organisation and licence are encrypted to her and Mercy")
	r.policy, err = r.alice.EnableEmergency(ctx, wallet.EmergencyOptions{Issuer: "Mercy", Records: []string{r.recs[0].ID}, Max: 4 * time.Hour})
	if err != nil {
		return err
	}
	r.wrap("", "  ", fmt.Sprintf("policy %s: anyone Mercy credentials as %q may read the %s in an emergency, for %s, for %s from their first access",
		r.policy.ID.String()[:12], r.policy.Role, r.record(r.recs[0].ID), r.purpose(r.policy.Purpose.Code), hours(r.policy.TimeBox)))
	reason := "unconscious after a road accident, allergies unknown"
	er, err := r.erin.Import(ctx, wallet.ImportOptions{Emergency: true, Patient: string(r.alice.ID()), Reason: reason,
		OutDir: filepath.Join(r.dir, "erin-imported")})
	if err != nil {
		return err
	}
	if len(er) != 1 {
		return r.fail("Dr Erin imported %d records, want the policy's one", len(er))
	}
	if got, err := os.ReadFile(er[0].File); err != nil || !bytes.Equal(got, r.originals[er[0].Record]) {
		return r.fail("Dr Erin's emergency copy differs from the original (%v)", err)
	}
	r.ok("Dr Erin declared the emergency on the ledger, then imported the %s, byte-identical", r.record(er[0].Record))
	if _, err := r.ivy.Import(ctx, wallet.ImportOptions{Emergency: true, Patient: string(r.alice.ID()), Reason: "curious",
		OutDir: filepath.Join(r.dir, "ivy-er")}); !errors.Is(err, wallet.ErrDenied) {
		return r.fail("Ivy breaking the glass without a credential: got %v, want a denial", err)
	}
	r.ok("Ivy, holding no credential, cannot break the glass")
	if _, err := r.alice.PullLedger(ctx); err != nil {
		return err
	}
	eas, err := r.alice.EmergencyAccesses(ctx)
	if err != nil {
		return err
	}
	if len(eas) != 1 || eas[0].Reason != reason || eas[0].Review != "" || eas[0].Requester != r.erin.ID() {
		return r.fail("Alice sees %d emergency accesses, want Dr Erin's, unreviewed, with its reason", len(eas))
	}
	ea := eas[0]
	r.ok("Alice sees it at once: someone with a Mercy credential read the %s, stating %q; %d peers each released one share, and the access ends at %s",
		r.record(r.recs[0].ID), ea.Reason, ea.Accesses, clock(time.Unix(ea.Until, 0)))
	if _, err := r.alice.AddContact("Dr Erin", r.erin.Card().String()); err != nil {
		return err
	}
	eas, err = r.alice.EmergencyAccesses(ctx)
	if err != nil {
		return err
	}
	if len(eas) != 1 || eas[0].RequesterName != "Dr Erin" {
		return r.fail("Alice's contacts do not name the emergency physician")
	}
	r.ok("Mercy gives Alice the physician's card; Alice saves it as Dr Erin, whose ID made the request")
	if _, err := r.alice.Review(ctx, ea.BreakGlass.String(), consent.ReviewOK, "I was in the ER that day"); err != nil {
		return err
	}
	r.ok("Alice reviews Dr Erin's emergency access: justified")
	return nil
}

func (r *runner) revoke(ctx context.Context) error {
	r.step("Alice revokes Dr Bob's grant; every peer stops serving him")
	start := time.Now()
	if _, err := r.alice.Revoke(ctx, r.gBob.ID.String()); err != nil {
		return err
	}
	r.say("revoke returned in %v (a peer holds it; gossip carries it on)", time.Since(start).Round(time.Millisecond))
	_, err := r.bob.Import(ctx, wallet.ImportOptions{Grant: r.gBob.ID.String(), OutDir: filepath.Join(r.dir, "bob-late")})
	if !errors.Is(err, wallet.ErrDenied) || !strings.Contains(err.Error(), string(consent.ReasonRevoked)) {
		return r.fail("Dr Bob after the revocation: got %v, want a denial because the grant is revoked", err)
	}
	r.ok("Dr Bob is denied; the peers' reason: %s", consent.ReasonRevoked)
	r.say("What he imported before stays with him: revocation cannot recall copies.")
	// Every peer Bob asked logs its denial on its own sub-feed, and gossip
	// carries it to the other serving peers. The next step stops peers, so
	// wait (bounded) until Alice's ledger holds a denial from each holder:
	// a peer stopped before its entry spread would take it along.
	return r.awaitDenials(ctx, start)
}

// denialWait bounds how long the story waits for the peers' denials to
// reach Alice.
const denialWait = 30 * time.Second

// awaitDenials polls Alice's ledger until one of the records of Bob's
// grant shows a revoked-denial from each of its n holders since start.
func (r *runner) awaitDenials(ctx context.Context, since time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, denialWait)
	defer cancel()
	want := map[string]int{}
	for _, rec := range r.recs {
		want[rec.ID] = rec.N
	}
	best := 0
	for {
		if _, err := r.alice.PullLedger(ctx); err != nil && ctx.Err() == nil {
			return err
		}
		log, err := r.alice.AccessLog(ctx)
		if err != nil && ctx.Err() == nil {
			return err
		}
		deciders := map[string]map[consent.ID]bool{}
		for _, a := range log {
			if a.Requester != r.bob.ID() || a.Allow || a.Reason != consent.ReasonRevoked || a.Time.Before(since.Truncate(time.Second)) {
				continue
			}
			if deciders[a.Record] == nil {
				deciders[a.Record] = map[consent.ID]bool{}
			}
			deciders[a.Record][a.Decider] = true
			if n := len(deciders[a.Record]); n > best {
				best = n
			}
			if n, ok := want[a.Record]; ok && len(deciders[a.Record]) >= n {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return r.fail("Alice's ledger shows %d peers' denials of Dr Bob after %v, want one from each holder", best, denialWait)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// peersDown stops as many peers holding shares of Alice's first record as
// its coding allows to lose (n-k), and has Alice read it from the rest.
func (r *runner) peersDown(ctx context.Context) error {
	rec := r.recs[0]
	lose := rec.N - rec.K
	peers := numberWord(lose) + " peers go down"
	if lose == 1 {
		peers = "A peer goes down"
	}
	r.step(peers + "; Alice still reads her record")
	c, err := r.alice.Dial(ctx)
	if err != nil {
		return err
	}
	holders := map[consent.ID]bool{}
	for _, s := range rec.Shares {
		for _, p := range c.Holders(ctx, s) {
			holders[consent.ID(p.String())] = true
		}
	}
	c.Close()
	var stopped int
	for _, p := range r.d.Peers {
		if stopped < lose && holders[p.ID()] {
			if err := p.Close(); err != nil {
				return err
			}
			stopped++
		}
	}
	if stopped != lose {
		return r.fail("found %d peers holding shares of the %s, want at least %d", len(holders), r.record(rec.ID), lose)
	}
	r.say("%d of the %d peers holding shares of the %s stop; %d shares are left", lose, rec.N, r.record(rec.ID), rec.N-lose)
	var buf bytes.Buffer
	if _, err := r.alice.GetRecord(ctx, rec.ID, &buf, wallet.RecordOptions{}); err != nil {
		return err
	}
	if !bytes.Equal(buf.Bytes(), r.originals[rec.ID]) {
		return r.fail("Alice's record differs with peers down")
	}
	r.ok("rebuilt from the %d remaining shares, byte-identical", rec.N-lose)
	return nil
}

// logGroup is one request in the access log: the decisions of the peers
// asked for one record's shares, for the same requester, purpose and
// outcome.
type logGroup struct {
	first    wallet.AccessInfo
	deciders map[consent.ID]bool
	last     time.Time
}

// requestGap separates two requests with the same key in the access log.
const requestGap = 30 * time.Second

// groupAccesses folds the decisions of the peers asked in one request into
// one group: same requester, record, purpose, grant and outcome, close in
// time, and no peer twice.
func groupAccesses(log []wallet.AccessInfo) []*logGroup {
	var out []*logGroup
	open := map[string]*logGroup{}
	for _, a := range log {
		key := fmt.Sprint(a.Requester, "\x00", a.Record, "\x00", a.Purpose, "\x00", a.Allow, "\x00", a.Reason, "\x00", a.Grant, "\x00", a.BreakGlass)
		g, ok := open[key]
		if !ok || g.deciders[a.Decider] || a.Time.Sub(g.last) > requestGap {
			g = &logGroup{first: a, deciders: map[consent.ID]bool{}}
			open[key] = g
			out = append(out, g)
		}
		g.deciders[a.Decider] = true
		g.last = a.Time
	}
	return out
}

func (r *runner) accessLog(ctx context.Context) error {
	r.step("Alice's access log: every decision any peer made on her records")
	if _, err := r.alice.PullLedger(ctx); err != nil {
		return err
	}
	log, err := r.alice.AccessLog(ctx)
	if err != nil {
		return err
	}
	r.say("A peer asked for a share decides alone, then signs and logs its decision;")
	r.say("one read asks several peers, so each row below is one request and PEERS")
	r.say("counts the peers that decided on it.")
	var allowed, denied, own, ownOther int
	var others []wallet.AccessInfo
	for _, a := range log {
		if a.Allow {
			allowed++
		} else {
			denied++
		}
		if a.Requester == r.alice.ID() {
			own++
			if !a.Allow || a.Reason != consent.ReasonOwner {
				ownOther++
			}
			continue
		}
		others = append(others, a)
	}
	tw := r.table()
	fmt.Fprintln(tw, "   TIME\tWHO\tRECORD\tPURPOSE\tDECISION\tREASON\tPEERS")
	// Rows in the story's order: by the step that made them, then by the
	// order the story met their records (one import reads records in an
	// order of their random IDs), then by time.
	story := []string{"Dr Bob allowed", "Ivy allowed", "Dr Erin allowed", "Dr Bob DENIED"}
	row := func(a wallet.AccessInfo) string { return who(a.RequesterName, a.Requester) + " " + verdict(a.Allow) }
	groups := groupAccesses(others)
	sort.SliceStable(groups, func(i, j int) bool {
		a, b := groups[i].first, groups[j].first
		if ra, rb := rank(story, row(a)), rank(story, row(b)); ra != rb {
			return ra < rb
		}
		if ra, rb := r.rank(a.Record), r.rank(b.Record); ra != rb {
			return ra < rb
		}
		return a.Time.Before(b.Time)
	})
	seen := map[string]bool{}
	for _, g := range groups {
		a := g.first
		seen[row(a)] = true
		fmt.Fprintf(tw, "   %s\t%s\t%s\t%s\t%s\t%s\t%d\n", clock(a.Time), who(a.RequesterName, a.Requester), r.record(a.Record),
			a.Purpose, verdict(a.Allow), a.Reason, len(g.deciders))
	}
	tw.Flush()
	for _, want := range story {
		if !seen[want] {
			return r.fail("the access log lacks a row for %q", want)
		}
	}
	if own == 0 || ownOther != 0 {
		return r.fail("the log shows %d reads by Alice, %d of them not allowed as owner", own, ownOther)
	}
	r.wrap("", "  ", fmt.Sprintf("Not listed: Alice's own reads, %d decisions, all allowed because she is the owner, for %s. "+
		"Her wallet reads a record before granting it, to keep only what the grant's scopes allow, "+
		"and she read one herself with peers down.", own, r.purpose("PATRQT")))
	r.ok("%d allowed and %d denied decisions, each signed by the peer that decided", allowed, denied)
	return nil
}

func (r *runner) accounting(ctx context.Context) error {
	r.step("The accounting of disclosures (45 CFR 164.528): what left Alice's hands, to whom, why")
	ds, err := r.alice.Disclosures(ctx, time.Time{})
	if err != nil {
		return err
	}
	recipients := []string{"Dr Bob", "Ivy", "Dr Erin"}
	// In the story's order, as the access log above.
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i], ds[j]
		if ra, rb := rank(recipients, a.RecipientName), rank(recipients, b.RecipientName); ra != rb {
			return ra < rb
		}
		if ra, rb := r.rank(a.Record), r.rank(b.Record); ra != rb {
			return ra < rb
		}
		return a.Time < b.Time
	})
	// Each row is followed by the wallet's description of what was
	// disclosed, under the columns after TIME.
	rows := [][]string{{"TIME", "RECIPIENT", "PURPOSE", "RECORD"}}
	var descs []string
	seen := map[string]bool{}
	for _, di := range ds {
		if di.RecipientName == "" {
			return r.fail("a disclosure to %s names no contact", di.Recipient.Short())
		}
		rows = append(rows, []string{clock(time.Unix(di.Time, 0)), di.RecipientName, di.Purpose, r.record(di.Record)})
		descs = append(descs, di.Description)
		seen[di.RecipientName] = true
	}
	widths := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, c := range row {
			widths[i] = max(widths[i], len(c))
		}
	}
	under := strings.Repeat(" ", widths[0]+2)
	for i, row := range rows {
		line := ""
		for j, c := range row {
			if j < len(row)-1 {
				c += strings.Repeat(" ", widths[j]+2-len(c))
			}
			line += c
		}
		r.say("%s", line)
		if i > 0 {
			for _, l := range wrapLines(under, under, descs[i-1], wrapWidth) {
				r.say("%s", l)
			}
		}
	}
	if !seen["Dr Bob"] || !seen["Ivy"] || !seen["Dr Erin"] || seen[r.alice.Card().Name] {
		return r.fail("the accounting does not name exactly Dr Bob, Ivy and Dr Erin")
	}
	r.ok("Dr Bob, Ivy and Dr Erin are accounted for; Alice's own reads are not disclosures")
	return nil
}

func (r *runner) audit(ctx context.Context) error {
	r.step("An auditor verifies the whole ledger offline")
	rep, err := r.alice.AuditLedger(ctx)
	if err != nil {
		return err
	}
	if err := wallet.AuditFailure(rep); err != nil {
		return r.fail("audit: %v", err)
	}
	r.ok("every signature, chain and access decision checks out (%d ledger entries)", rep.Entries)
	return nil
}

func (r *runner) restore(ctx context.Context) error {
	r.step("Alice loses her laptop: key backup, new home, sync")
	const passphrase = "correct horse battery staple"
	var backup bytes.Buffer
	if err := r.alice.ExportKey(&backup, passphrase); err != nil {
		return err
	}
	restored, err := wallet.ImportKey(r.cfg("alice-new"), backup.Bytes(), passphrase)
	if err != nil {
		return err
	}
	if restored.ID() != r.alice.ID() {
		return r.fail("the restored wallet has ID %s, want %s", restored.ID().Short(), r.alice.ID().Short())
	}
	r.ok("her passphrase-protected key backup opens on a new machine: same ID %s", restored.ID().Short())
	res, err := restored.Sync(ctx)
	if err != nil {
		return err
	}
	// Alice's wallet holds her records and the minimum-necessary copies
	// made for grants; the network brings every one back.
	var want []string
	for _, rec := range r.recs {
		want = append(want, rec.ID)
	}
	for _, d := range r.gIvy.Derived {
		want = append(want, d.Derived)
	}
	if res.Restored != len(want) {
		return r.fail("%d records restored, want %d", res.Restored, len(want))
	}
	var names []string
	for _, id := range want {
		var buf bytes.Buffer
		if _, err := restored.GetRecord(ctx, id, &buf, wallet.RecordOptions{}); err != nil {
			return err
		}
		if b, ok := r.originals[id]; ok && !bytes.Equal(buf.Bytes(), b) {
			return r.fail("restored record %s differs", id)
		}
		names = append(names, r.record(id))
	}
	r.ok("%d records back from the network, each readable: %s", res.Restored, and(names))
	gs, err := restored.Grants(ctx)
	if err != nil {
		return err
	}
	byID := map[consent.Hash]wallet.GrantInfo{}
	for _, g := range gs {
		byID[g.ID] = g
	}
	var grants []string
	for _, w := range []struct {
		id     consent.Hash
		what   string
		status string
	}{{r.gBob.ID, "Dr Bob's", wallet.GrantRevoked}, {r.gIvy.ID, "Ivy's", wallet.GrantActive}, {r.policy.ID, "the emergency policy", wallet.GrantActive}} {
		g, ok := byID[w.id]
		if !ok || g.Status != w.status {
			return r.fail("%s grant is %q after the restore, want %s", w.what, g.Status, w.status)
		}
		grants = append(grants, fmt.Sprintf("%s (%s)", w.what, g.Status))
	}
	if res.Grants != len(grants) {
		return r.fail("%d grants back, want %d", res.Grants, len(grants))
	}
	r.ok("%d grants back, each with its status: %s", res.Grants, and(grants))
	return nil
}

// rank is the place of s in order, or after all of them.
func rank(order []string, s string) int {
	if i := slices.Index(order, s); i >= 0 {
		return i
	}
	return len(order)
}

// rank is the place of a record in the story, or after all of them.
func (r *runner) rank(id string) int {
	if i, ok := r.order[id]; ok {
		return i
	}
	return len(r.order)
}

// wrapWidth is the width the narration's paragraphs wrap at.
const wrapWidth = 88

// wrap says text as a paragraph wrapped at wrapWidth, its first line
// indented by first and the others by rest.
func (r *runner) wrap(first, rest, text string) {
	for _, l := range wrapLines(first, rest, text, wrapWidth) {
		r.say("%s", l)
	}
}

// wrapLines cuts text into lines of at most width bytes where its words
// allow, the first prefixed by first and the others by rest.
func wrapLines(first, rest, text string, width int) []string {
	var out []string
	line := ""
	for _, w := range strings.Fields(text) {
		switch {
		case line == "":
			line = first + w
		case len(line)+1+len(w) > width:
			out = append(out, line)
			line = rest + w
		default:
			line += " " + w
		}
	}
	if line != "" {
		out = append(out, line)
	}
	return out
}

// numberWord spells small numbers, as at the start of a sentence.
func numberWord(n int) string {
	if n >= 0 && n < 10 {
		return []string{"No", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine"}[n]
	}
	return fmt.Sprint(n)
}

// others says what a minimum-necessary copy left out: "the other 87
// resources (12 types, among them Observation, Encounter and Immunization)".
func others(m map[string]int) string {
	types := byCount(m)
	total := 0
	for _, n := range m {
		total += n
	}
	switch {
	case len(types) == 0:
		return "nothing"
	case len(types) <= 3:
		return "the other " + counted(m)
	}
	return fmt.Sprintf("the other %d resources (%d types, among them %s)", total, len(types), and(types[:3]))
}

// byCount lists a map's types, most resources first.
func byCount(m map[string]int) []string {
	types := make([]string, 0, len(m))
	for t := range m {
		types = append(types, t)
	}
	sort.Slice(types, func(i, j int) bool {
		if m[types[i]] != m[types[j]] {
			return m[types[i]] > m[types[j]]
		}
		return types[i] < types[j]
	})
	return types
}

// and joins words as a sentence does: "a", "a and b", "a, b and c".
func and(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}

// counted says how many resources of each type a map holds, most first:
// "18 Claim and 12 ExplanationOfBenefit resources".
func counted(m map[string]int) string {
	types := byCount(m)
	parts := make([]string, len(types))
	total := 0
	for i, t := range types {
		parts[i] = fmt.Sprintf("%d %s", m[t], t)
		total += m[t]
	}
	if total == 1 {
		return and(parts) + " resource"
	}
	return and(parts) + " resources"
}

// hours says a time box the way a person would: "4 hours".
func hours(d time.Duration) string {
	if d%time.Hour == 0 {
		if d == time.Hour {
			return "1 hour"
		}
		return fmt.Sprintf("%d hours", d/time.Hour)
	}
	return d.String()
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
