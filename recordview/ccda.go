package recordview

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/medwallet/medwallet/vault"
)

const hl7 = "urn:hl7-org:v3"

// maxNodes bounds the elements of one section's narrative kept in memory.
const maxNodes = 50000

// node is an element of a narrative block, or text (name "").
type node struct {
	name     string
	text     string
	children []*node
}

// cdaSection is a section being read.
type cdaSection struct {
	title     strings.Builder
	inTitle   bool
	entries   int
	narrative *node
	depth     int // element depth of the <section>
}

// summarizeCCDA reads a C-CDA document with encoding/xml (no DTDs, no
// external entities: the decoder resolves none) and returns its patient
// and its sections by title, each with its narrative laid out as plain
// text and its number of entries.
func summarizeCCDA(r io.Reader) (*Summary, error) {
	dec := xml.NewDecoder(r)
	dec.Strict = false
	dec.Entity = xml.HTMLEntity
	s := &Summary{Format: vault.FormatCCDA}
	var (
		path     []string // local names from the root
		sections []*cdaSection
		// narrative building: the stack of open narrative nodes
		narr      []*node
		nodes     int
		textBytes int
		patient   Item
		havePat   bool
		name      struct{ given, family []string }
		inName    string // "given" or "family" while inside the patient's first name
		nameDone  bool
		docTitle  strings.Builder
		inDocTit  bool
		b64       int
		b64Media  string
		inNonXML  bool
		keys      = map[string]int{}
		truncated bool
		seenRoot  bool
	)
	under := func(names ...string) bool {
		if len(path) < len(names) {
			return false
		}
		for i, n := range names {
			if path[len(path)-len(names)+i] != n {
				return false
			}
		}
		return true
	}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			if len(path) == 0 && len(s.Sections) == 0 && !havePat {
				return nil, fmt.Errorf("%w: %v", ErrMalformed, errors.Unwrap(err))
			}
			truncated = true
			break
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(path) == 0 && (t.Name.Local != "ClinicalDocument" || t.Name.Space != hl7) {
				return nil, fmt.Errorf("%w: not an HL7 ClinicalDocument", ErrMalformed)
			}
			seenRoot = true
			path = append(path, t.Name.Local)
			if len(narr) > 0 {
				if nodes < maxNodes {
					n := &node{name: t.Name.Local}
					top := narr[len(narr)-1]
					top.children = append(top.children, n)
					narr = append(narr, n)
					nodes++
				} else {
					narr = append(narr, &node{}) // counted, not kept
					truncated = true
				}
				continue
			}
			switch {
			case len(path) == 2 && t.Name.Local == "title":
				inDocTit = true
			case t.Name.Local == "patient" && under("recordTarget", "patientRole", "patient"):
				havePat = true
			case havePat && !nameDone && under("patient", "name"):
			case havePat && !nameDone && (t.Name.Local == "given" || t.Name.Local == "family") && under("patient", "name", t.Name.Local):
				inName = t.Name.Local
			case t.Name.Local == "birthTime" && under("patient", "birthTime"):
				patient.Fields = addField(patient.Fields, "born", hl7Date(attr(t, "value")))
			case t.Name.Local == "administrativeGenderCode" && under("patient", "administrativeGenderCode"):
				patient.Fields = addField(patient.Fields, "sex", first(attr(t, "displayName"), attr(t, "code")))
			case t.Name.Local == "section":
				sections = append(sections, &cdaSection{depth: len(path)})
			case len(sections) > 0 && len(path) == sections[len(sections)-1].depth+1:
				sec := sections[len(sections)-1]
				switch t.Name.Local {
				case "title":
					sec.inTitle = true
				case "entry":
					sec.entries++
				case "text":
					sec.narrative = &node{name: "text"}
					narr = []*node{sec.narrative}
					nodes, textBytes = 0, 0
				}
			case t.Name.Local == "text" && under("nonXMLBody", "text"):
				inNonXML = true
				b64Media = attr(t, "mediaType")
			}
		case xml.EndElement:
			if len(narr) > 0 {
				narr = narr[:len(narr)-1]
				path = path[:len(path)-1]
				continue
			}
			switch {
			case inDocTit && len(path) == 2:
				inDocTit = false
			case inName != "":
				inName = ""
			case havePat && t.Name.Local == "name" && under("patient", "name"):
				nameDone = true
			case len(sections) > 0 && t.Name.Local == "section" && len(path) == sections[len(sections)-1].depth:
				sec := sections[len(sections)-1]
				sections = sections[:len(sections)-1]
				s.Sections = append(s.Sections, finishSection(sec, keys))
			case len(sections) > 0 && len(path) == sections[len(sections)-1].depth+1:
				sections[len(sections)-1].inTitle = false
			case inNonXML:
				inNonXML = false
			}
			path = path[:len(path)-1]
		case xml.CharData:
			switch {
			case len(narr) > 0:
				if textBytes < MaxText {
					top := narr[len(narr)-1]
					top.children = append(top.children, &node{text: string(t)})
					textBytes += len(t)
				} else {
					truncated = true
				}
			case inDocTit:
				if docTitle.Len() < maxField {
					docTitle.Write(t)
				}
			case inName != "":
				if inName == "given" {
					name.given = append(name.given, strings.TrimSpace(string(t)))
				} else {
					name.family = append(name.family, strings.TrimSpace(string(t)))
				}
			case len(sections) > 0 && sections[len(sections)-1].inTitle:
				if sec := sections[len(sections)-1]; sec.title.Len() < maxField {
					sec.title.Write(t)
				}
			case inNonXML:
				for _, c := range t {
					if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' {
						b64++
					}
				}
			}
		}
	}
	if !seenRoot {
		return nil, fmt.Errorf("%w: not an HL7 ClinicalDocument", ErrMalformed)
	}
	s.Title = oneLine(docTitle.String())
	if havePat {
		patient.Title = first(strings.Join(append(name.given, name.family...), " "), "(no name)")
		patient.Detail = detail(patient.Fields)
		s.Sections = append([]Section{{Key: KeyPatient, Title: "Patient", Count: 1, Items: []Item{patient}}}, s.Sections...)
	}
	if b64 > 0 || b64Media != "" {
		s.Sections = append(s.Sections, Section{Key: "document", Title: "Document",
			Text: fmt.Sprintf("An embedded document (%s, about %d bytes): save the record to open it.", first(b64Media, "unknown type"), b64*3/4)})
	}
	s.Partial = truncated || len(path) > 0
	return s, nil
}

// maxField bounds a title or a name.
const maxField = 1024

func attr(e xml.StartElement, name string) string {
	for _, a := range e.Attr {
		if a.Name.Local == name {
			return strings.TrimSpace(a.Value)
		}
	}
	return ""
}

// hl7Date turns an HL7 TS (YYYYMMDDhhmmss+zzzz) into YYYY-MM-DD (or a
// shorter date when the TS is).
func hl7Date(ts string) string {
	var d string
	for i, c := range ts {
		if c < '0' || c > '9' || i >= 8 {
			break
		}
		d += string(c)
	}
	switch len(d) {
	case 8:
		return d[:4] + "-" + d[4:6] + "-" + d[6:]
	case 6:
		return d[:4] + "-" + d[4:]
	case 4:
		return d
	}
	return ts
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func finishSection(sec *cdaSection, keys map[string]int) Section {
	title := first(oneLine(sec.title.String()), "Untitled section")
	key := slug(title)
	keys[key]++
	if n := keys[key]; n > 1 {
		key = fmt.Sprintf("%s-%d", key, n)
	}
	out := Section{Key: key, Title: title, Count: sec.entries}
	if sec.narrative != nil {
		out.Text = layoutNarrative(sec.narrative, TextWidth-2)
	}
	return out
}

// slug is a section key made of a title: lower-case words joined by "-".
func slug(title string) string {
	var b strings.Builder
	dash := false
	for _, c := range strings.ToLower(title) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(c)
			dash = false
		} else {
			dash = true
		}
	}
	if b.Len() == 0 {
		return "section"
	}
	return b.String()
}

// layoutNarrative renders a CDA narrative block as plain text: paragraphs
// and list items wrapped to width, tables as aligned columns.
func layoutNarrative(n *node, width int) string {
	var l narrativeLayout
	l.width = width
	l.block(n)
	l.flush()
	out := strings.Join(l.lines, "\n")
	return strings.Trim(out, "\n")
}

type narrativeLayout struct {
	width  int
	lines  []string
	inline strings.Builder
	prefix string
}

func (l *narrativeLayout) flush() {
	text := oneLine(l.inline.String())
	l.inline.Reset()
	if text == "" {
		return
	}
	var b strings.Builder
	indent := strings.Repeat(" ", utf8.RuneCountInString(l.prefix))
	writeWrapped(&b, text, l.prefix, indent, l.width)
	l.lines = append(l.lines, strings.Split(strings.TrimRight(b.String(), "\n"), "\n")...)
	l.prefix = ""
}

func (l *narrativeLayout) block(n *node) {
	for _, c := range n.children {
		switch c.name {
		case "":
			l.inline.WriteString(c.text)
		case "br":
			l.flush()
		case "paragraph", "caption":
			l.flush()
			l.block(c)
			l.flush()
		case "list":
			l.flush()
			for _, it := range c.children {
				if it.name == "item" {
					l.prefix = "- "
					l.block(it)
					l.flush()
				} else if it.name == "caption" {
					l.block(it)
					l.flush()
				}
			}
		case "table":
			l.flush()
			l.table(c)
		case "renderMultiMedia":
		default:
			l.block(c)
		}
	}
}

// cellText is the text of a table cell: its words on one line, list
// items and line breaks joined with "; ".
func cellText(n *node) string {
	var parts []string
	var cur strings.Builder
	var walk func(*node)
	walk = func(n *node) {
		for _, c := range n.children {
			switch c.name {
			case "":
				cur.WriteString(c.text)
			case "br", "item", "paragraph":
				if t := oneLine(cur.String()); t != "" {
					parts = append(parts, t)
				}
				cur.Reset()
				walk(c)
				if t := oneLine(cur.String()); t != "" {
					parts = append(parts, t)
				}
				cur.Reset()
			default:
				walk(c)
			}
		}
	}
	walk(n)
	if t := oneLine(cur.String()); t != "" {
		parts = append(parts, t)
	}
	return strings.Join(parts, "; ")
}

func (l *narrativeLayout) table(t *node) {
	var rows [][]string
	header := -1
	var collect func(n *node, head bool)
	collect = func(n *node, head bool) {
		for _, c := range n.children {
			switch c.name {
			case "caption":
				l.inline.WriteString(cellText(c))
				l.flush()
			case "thead":
				collect(c, true)
			case "tbody", "tfoot":
				collect(c, false)
			case "tr":
				var row []string
				allTH := true
				for _, cell := range c.children {
					if cell.name == "td" || cell.name == "th" {
						row = append(row, cellText(cell))
						allTH = allTH && cell.name == "th"
					}
				}
				if len(row) > 0 {
					if (head || allTH) && header == len(rows)-1 {
						header = len(rows)
					}
					rows = append(rows, row)
				}
			}
		}
	}
	collect(t, false)
	if len(rows) == 0 {
		return
	}
	cols := 0
	for _, r := range rows {
		cols = max(cols, len(r))
	}
	natural := make([]int, cols)
	for _, r := range rows {
		for i, c := range r {
			natural[i] = max(natural[i], utf8.RuneCountInString(c))
		}
	}
	widths := fitColumns(natural, l.width-2*(cols-1))
	for ri, r := range rows {
		wrapped := make([][]string, cols)
		height := 1
		for i := range cols {
			var c string
			if i < len(r) {
				c = r[i]
			}
			wrapped[i] = wrapCell(c, widths[i])
			height = max(height, len(wrapped[i]))
		}
		for h := range height {
			var b strings.Builder
			for i := range cols {
				var c string
				if h < len(wrapped[i]) {
					c = wrapped[i][h]
				}
				b.WriteString(c)
				if i < cols-1 {
					b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)+2))
				}
			}
			l.lines = append(l.lines, strings.TrimRight(b.String(), " "))
		}
		if ri == header {
			var b strings.Builder
			for i := range cols {
				b.WriteString(strings.Repeat("-", widths[i]))
				if i < cols-1 {
					b.WriteString("  ")
				}
			}
			l.lines = append(l.lines, b.String())
		}
	}
	l.lines = append(l.lines, "")
}

// fitColumns shrinks natural column widths to fit total: columns narrower
// than a fair share keep their width, the others share the rest.
func fitColumns(natural []int, total int) []int {
	widths := make([]int, len(natural))
	copy(widths, natural)
	for i := range widths {
		widths[i] = max(widths[i], 1)
	}
	sum := 0
	for _, w := range widths {
		sum += w
	}
	if sum <= total {
		return widths
	}
	fixed := make([]bool, len(widths))
	for {
		left, open := total, 0
		for i, w := range widths {
			if fixed[i] {
				left -= w
			} else {
				open++
			}
		}
		if open == 0 {
			break
		}
		share := max(left/open, 4)
		changed := false
		for i := range widths {
			if !fixed[i] && natural[i] <= share {
				widths[i] = max(natural[i], 1)
				fixed[i] = true
				changed = true
			}
		}
		if !changed {
			extra := left - share*open
			for i := range widths {
				if !fixed[i] {
					widths[i] = share
					if extra > 0 {
						widths[i]++
						extra--
					}
				}
			}
			break
		}
	}
	return widths
}

func wrapCell(text string, width int) []string {
	if text == "" {
		return []string{""}
	}
	var b strings.Builder
	writeWrapped(&b, text, "", "", width)
	return strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
}
