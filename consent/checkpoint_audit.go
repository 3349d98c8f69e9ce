package consent

// The audit of checkpoints: signatures, cosignatures, roots against the
// entries held, forks and withheld entries.

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// Finding kinds of the checkpoint audit. All three fail an audit.
const (
	// FindingFork: two checkpoints signed by one feed's checkpoint key
	// that cannot both hold (one size, two roots; or a root that differs
	// from the tree of the entries held). The evidence is in
	// AuditReport.Forks.
	FindingFork = "fork"
	// FindingWithheld: a cosigned checkpoint counts more entries than the
	// audit holds of the feed (the exporter dropped entries).
	FindingWithheld = "withheld"
	// FindingCheckpoint: a checkpoint, cosignature or key certificate
	// that does not verify, or a checkpoint no certificate binds to an
	// author.
	FindingCheckpoint = "invalid-checkpoint"
)

// CheckpointReport is one verified checkpoint of an audit.
type CheckpointReport struct {
	Author    ID         `json:"author"`
	Origin    string     `json:"origin"`
	Size      uint64     `json:"size"`
	Root      Hash       `json:"root"`
	Cosigners []Cosigner `json:"cosigners"`
}

// ForkReport is the evidence of one fork: two signed checkpoints of one
// feed that cannot both hold, or one and the tree of the entries held.
type ForkReport struct {
	Author   ID             `json:"author"`
	Origin   string         `json:"origin"`
	Detail   string         `json:"detail"`
	Evidence []ForkEvidence `json:"evidence"`
}

// ForkEvidence is one side of a fork: a signed checkpoint note with its
// verified cosigners, or (Held) the tree of the entries the audit holds.
type ForkEvidence struct {
	Note      string     `json:"note,omitempty"`
	Held      bool       `json:"held,omitempty"`
	Size      uint64     `json:"size"`
	Root      Hash       `json:"root"`
	Cosigners []Cosigner `json:"cosigners,omitempty"`
}

// CheckpointAudit is what AuditCheckpoints found.
type CheckpointAudit struct {
	Findings    []Finding
	Checkpoints []CheckpointReport
	Forks       []ForkReport
}

// AddCheckpoints adds a checkpoint audit to the report.
func (r *AuditReport) AddCheckpoints(a *CheckpointAudit) {
	if a == nil {
		return
	}
	r.Findings = append(r.Findings, a.Findings...)
	r.Checkpoints = append(r.Checkpoints, a.Checkpoints...)
	r.Forks = append(r.Forks, a.Forks...)
}

// AuditExportFile audits an export: its entries (AuditLedger) and its
// checkpoints (AuditCheckpoints).
func AuditExportFile(x *ExportFile) *AuditReport {
	rep := AuditLedger(x.Entries)
	rep.AddCheckpoints(AuditCheckpoints(x.Entries, x.Certs, x.Checkpoints))
	return rep
}

// AuditCheckpoints checks checkpoint notes against the entries held:
// each key certificate; each note's signature by the key a certificate
// binds to an author, and its witnesses' cosignatures; each root against
// the tree of the author's entries held (when the size is at most what is
// held: else, for a cosigned checkpoint, a withheld finding); and every
// two checkpoints of one feed at one size (a fork when their roots
// differ). Notes of one checkpoint are merged, cosigners joined.
func AuditCheckpoints(entries []*Entry, certs []*CheckpointCert, notes [][]byte) *CheckpointAudit {
	var held map[ID][]Hash
	return auditCheckpoints(func(a ID) []Hash {
		if held == nil {
			held = heldFeeds(entries)
		}
		return held[a]
	}, certs, notes)
}

// AuditCheckpointsIn is AuditCheckpoints against the feeds of v, a view
// of entries that hold one entry per author and seq (a store's, as
// AuditStore returns it): the entries held of a feed are then the ones v
// accepted, which are validly signed and chained from seq 1, and nothing
// is read or verified again.
func AuditCheckpointsIn(v *View, certs []*CheckpointCert, notes [][]byte) *CheckpointAudit {
	return auditCheckpoints(func(a ID) []Hash {
		if f := v.feeds[a]; f != nil {
			return v.feedTables(f).hashes
		}
		return nil
	}, certs, notes)
}

// auditCheckpoints is AuditCheckpoints; held gives the hashes of the
// entries held of a feed (see heldFeeds).
func auditCheckpoints(held func(ID) []Hash, certs []*CheckpointCert, notes [][]byte) *CheckpointAudit {
	a := &CheckpointAudit{}
	add := func(f Finding) { a.Findings = append(a.Findings, f) }

	byOrigin := map[string]*CheckpointCert{}
	for _, c := range certs {
		if err := c.Verify(); err != nil {
			add(Finding{Kind: FindingCheckpoint, Author: c.Author, Detail: err.Error()})
			continue
		}
		if o, ok := byOrigin[c.Origin()]; ok && o.Author != c.Author {
			add(Finding{Kind: FindingCheckpoint, Author: c.Author,
				Detail: fmt.Sprintf("%v: key also certified by %s", ErrCheckpointCert, o.Author.Short())})
			continue
		}
		byOrigin[c.Origin()] = c
	}

	// The checkpoints, verified and merged, per author.
	type ckpt struct {
		*SignedCheckpoint
		author ID
	}
	merged := map[string]*ckpt{} // by body text
	var order []string
	for _, msg := range notes {
		text, err := checkpointText(msg)
		if err != nil {
			add(Finding{Kind: FindingCheckpoint, Detail: err.Error()})
			continue
		}
		c, err := ParseCheckpoint(text)
		if err != nil {
			add(Finding{Kind: FindingCheckpoint, Detail: err.Error()})
			continue
		}
		cert := byOrigin[c.Origin]
		if cert == nil {
			add(Finding{Kind: FindingCheckpoint, Detail: fmt.Sprintf("%v: no certificate binds %s to an author", ErrCheckpoint, c.Origin)})
			continue
		}
		sc, err := OpenCheckpoint(msg, cert.Key)
		if err != nil {
			add(Finding{Kind: FindingCheckpoint, Author: cert.Author, Seq: c.Size, Detail: err.Error()})
			continue
		}
		if m, ok := merged[text]; ok {
			m.Note = AddCosignatures(m.Note, signatureLines(sc.Note)...)
			m.Cosigners = joinCosigners(m.Cosigners, sc.Cosigners)
			continue
		}
		merged[text] = &ckpt{SignedCheckpoint: sc, author: cert.Author}
		order = append(order, text)
	}
	byAuthor := map[ID][]*ckpt{}
	var authors []ID
	for _, text := range order {
		c := merged[text]
		if byAuthor[c.author] == nil {
			authors = append(authors, c.author)
		}
		byAuthor[c.author] = append(byAuthor[c.author], c)
		a.Checkpoints = append(a.Checkpoints, CheckpointReport{Author: c.author, Origin: c.Origin, Size: c.Size,
			Root: c.Root, Cosigners: nonNil(c.Cosigners)})
	}
	sort.Slice(authors, func(i, j int) bool { return authors[i] < authors[j] })

	evidence := func(c *ckpt) ForkEvidence {
		return ForkEvidence{Note: string(c.Note), Size: c.Size, Root: c.Root, Cosigners: nonNil(c.Cosigners)}
	}
	for _, author := range authors {
		cs := byAuthor[author]
		sort.SliceStable(cs, func(i, j int) bool { return cs[i].Size < cs[j].Size })
		tree := NewTree(held(author))
		forked := map[*ckpt]bool{}
		for i, x := range cs {
			for _, y := range cs[i+1:] {
				if y.Size != x.Size || y.Root == x.Root {
					continue
				}
				forked[x], forked[y] = true, true
				d := fmt.Sprintf("feed %s: two checkpoints of size %d signed by its checkpoint key have different roots (cosigned by %s; and by %s)",
					author.Short(), x.Size, cosignerList(x.Cosigners), cosignerList(y.Cosigners))
				a.Forks = append(a.Forks, ForkReport{Author: author, Origin: x.Origin, Detail: d,
					Evidence: []ForkEvidence{evidence(x), evidence(y)}})
				add(Finding{Kind: FindingFork, Author: author, Seq: x.Size, Detail: d})
			}
		}
		for _, c := range cs {
			if c.Size > tree.Size() {
				if len(c.Cosigners) > 0 {
					add(Finding{Kind: FindingWithheld, Author: author, Seq: c.Size,
						Detail: fmt.Sprintf("feed %s: a checkpoint cosigned by %s counts %d entries, %d held",
							author.Short(), cosignerList(c.Cosigners), c.Size, tree.Size())})
				}
				continue
			}
			root, err := tree.Root(c.Size)
			if err != nil || root == c.Root || forked[c] {
				continue
			}
			d := fmt.Sprintf("feed %s: the checkpoint of size %d (cosigned by %s) does not match the entries held",
				author.Short(), c.Size, cosignerList(c.Cosigners))
			a.Forks = append(a.Forks, ForkReport{Author: author, Origin: c.Origin, Detail: d,
				Evidence: []ForkEvidence{evidence(c), {Held: true, Size: c.Size, Root: root}}})
			add(Finding{Kind: FindingFork, Author: author, Seq: c.Size, Detail: d})
		}
	}
	return a
}

// heldFeeds returns, per author, the hashes of the longest prefix seq 1,
// 2, ... of validly signed, chained entries with one entry per seq.
func heldFeeds(entries []*Entry) map[ID][]Hash {
	bySeq := map[ID]map[uint64][]*Entry{}
	for _, e := range entries {
		if VerifyEntry(e) != nil {
			continue
		}
		m := bySeq[e.Author]
		if m == nil {
			m = map[uint64][]*Entry{}
			bySeq[e.Author] = m
		}
		dup := false
		for _, o := range m[e.Seq] {
			dup = dup || bytes.Equal(o.Encode(), e.Encode())
		}
		if !dup {
			m[e.Seq] = append(m[e.Seq], e)
		}
	}
	out := map[ID][]Hash{}
	for author, m := range bySeq {
		var head Head
		var hs []Hash
		for seq := uint64(1); len(m[seq]) == 1; seq++ {
			e := m[seq][0]
			if checkLink(head, e) != nil {
				break
			}
			head = e.Head()
			hs = append(hs, head.Hash)
		}
		out[author] = hs
	}
	return out
}

// checkpointText returns the body of a note without checking signatures.
func checkpointText(msg []byte) (string, error) {
	if len(msg) > MaxCheckpointNote {
		return "", fmt.Errorf("%w: note is %d bytes", ErrCheckpoint, len(msg))
	}
	_, err := note.Open(msg, note.VerifierList())
	var unv *note.UnverifiedNoteError
	if !errors.As(err, &unv) {
		return "", fmt.Errorf("%w: %v", ErrCheckpoint, err)
	}
	return unv.Note.Text, nil
}

// signatureLines returns the signature lines of a note, each with its
// newline.
func signatureLines(msg []byte) [][]byte {
	i := bytes.LastIndex(msg, []byte("\n\n"))
	if i < 0 {
		return nil
	}
	var out [][]byte
	for _, l := range strings.SplitAfter(string(msg[i+2:]), "\n") {
		if l != "" {
			out = append(out, []byte(l))
		}
	}
	return out
}

func joinCosigners(a, b []Cosigner) []Cosigner {
	seen := map[ID]bool{}
	for _, c := range a {
		seen[c.Witness] = true
	}
	for _, c := range b {
		if !seen[c.Witness] {
			seen[c.Witness] = true
			a = append(a, c)
		}
	}
	return a
}

func cosignerList(cs []Cosigner) string {
	if len(cs) == 0 {
		return "no witness"
	}
	var s []string
	for _, c := range cs {
		s = append(s, c.Witness.Short())
	}
	return strings.Join(s, ", ")
}

func nonNil(cs []Cosigner) []Cosigner {
	if cs == nil {
		return []Cosigner{}
	}
	return cs
}
