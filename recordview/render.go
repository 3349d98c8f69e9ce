package recordview

import (
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// RenderOptions shape the text of a summary.
type RenderOptions struct {
	// Width is the line width (80 when 0).
	Width int
	// Sections, when set, keeps only these sections (by key), in the
	// summary's order.
	Sections []string
	// Limit is the most items shown a section (all when 0); the rest are
	// counted in a last line.
	Limit int
}

// Render writes the summary as plain text, no colour, lines at most
// o.Width columns (a longer word is cut).
func Render(w io.Writer, s *Summary, o RenderOptions) error {
	width := o.Width
	if width <= 0 {
		width = 80
	}
	var b strings.Builder
	head := formatName(s.Format) + " record"
	if s.Title != "" {
		head += ": " + s.Title
	}
	writeWrapped(&b, head, "", "", width)
	if s.Partial {
		writeWrapped(&b, "(partial: the record is larger than a summary reads, or ends early; what was read is shown)", "", "", width)
	}
	for _, sec := range s.Sections {
		if !keep(o.Sections, sec.Key) || (sec.Key == KeyOther && sec.Count == 0) {
			continue
		}
		b.WriteByte('\n')
		shown := len(sec.Items)
		if o.Limit > 0 && shown > o.Limit {
			shown = o.Limit
		}
		title := fmt.Sprintf("%s (%d)", strings.ToUpper(sec.Title), sec.Count)
		if sec.Key == KeyOther || (len(sec.Items) == 0 && sec.Text != "") {
			title = strings.ToUpper(sec.Title)
			switch {
			case sec.Key == KeyOther:
			case sec.Count == 1:
				title += " (1 entry)"
			case sec.Count > 1:
				title += fmt.Sprintf(" (%d entries)", sec.Count)
			}
		}
		if shown < sec.Count && shown > 0 {
			title = fmt.Sprintf("%s (%d, newest %d shown)", strings.ToUpper(sec.Title), sec.Count, shown)
		}
		writeWrapped(&b, title, "", "", width)
		if sec.Count == 0 && sec.Text == "" && len(sec.Items) == 0 {
			b.WriteString("  none recorded\n")
			continue
		}
		for _, it := range sec.Items[:shown] {
			renderItem(&b, it, width)
		}
		if more := sec.Count - shown; more > 0 && len(sec.Items) > 0 {
			fmt.Fprintf(&b, "  ... %d more\n", more)
		}
		if sec.Text != "" {
			// Narrative is laid out for TextWidth already.
			// Narrative is laid out for TextWidth already; longer lines
			// (prose) are wrapped.
			for line := range strings.Lines(sec.Text) {
				line = strings.TrimRight(line, "\n ")
				if utf8.RuneCountInString(line)+2 <= width {
					b.WriteString(strings.TrimRight("  "+line, " "))
					b.WriteByte('\n')
					continue
				}
				writeWrapped(&b, line, "  ", "  ", width)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func keep(sections []string, key string) bool {
	if len(sections) == 0 {
		return true
	}
	for _, s := range sections {
		if s == key {
			return true
		}
	}
	return false
}

const dateCol = 10

func renderItem(b *strings.Builder, it Item, width int) {
	title := it.Title
	if it.Sensitive {
		title = "[sensitive: " + strings.Join(it.Labels, ", ") + "] " + title
	}
	date := displayDate(it.Date)
	indent := strings.Repeat(" ", 2+dateCol+2)
	if date == "" && it.Date == "" {
		// Undated items (the patient) use the whole line.
		writeWrapped(b, title, "  ", "    ", width)
		if it.Detail != "" {
			writeWrapped(b, it.Detail, "    ", "    ", width)
		}
		return
	}
	first := "  " + date + strings.Repeat(" ", dateCol-utf8.RuneCountInString(date)+2)
	writeWrapped(b, title, first, indent, width)
	if it.Detail != "" {
		writeWrapped(b, it.Detail, indent, indent, width)
	}
}

// displayDate is the date part of an ISO 8601 date or date-time.
func displayDate(d string) string {
	if len(d) > dateCol {
		d = d[:dateCol]
	}
	return d
}

// parseDate reads the ISO 8601 forms FHIR uses: YYYY, YYYY-MM,
// YYYY-MM-DD, and date-times with a zone.
func parseDate(d string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02", "2006-01", "2006"} {
		if t, err := time.Parse(layout, d); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// ParseDate is parseDate for callers (trends).
func ParseDate(d string) (time.Time, bool) { return parseDate(d) }

func formatName(f string) string {
	switch f {
	case "fhir-r4":
		return "FHIR R4"
	case "ccda":
		return "C-CDA"
	case "dicom":
		return "DICOM"
	case "pdf":
		return "PDF"
	}
	return f
}

// writeWrapped writes text word-wrapped to width: the first line after
// prefix, the next ones after indent.
func writeWrapped(b *strings.Builder, text, prefix, indent string, width int) {
	line := prefix
	col := utf8.RuneCountInString(prefix)
	start := col
	words := strings.Fields(text)
	if len(words) == 0 {
		b.WriteString(strings.TrimRight(prefix, " "))
		b.WriteByte('\n')
		return
	}
	for _, w := range words {
		wl := utf8.RuneCountInString(w)
		if col > start && col+1+wl > width {
			b.WriteString(line)
			b.WriteByte('\n')
			line, col = indent, utf8.RuneCountInString(indent)
			start = col
		}
		if col > start {
			line += " "
			col++
		}
		for col+wl > width && width-col > 0 {
			// A word longer than the line is cut.
			room := width - col
			cut := string([]rune(w)[:room])
			b.WriteString(line + cut)
			b.WriteByte('\n')
			w = string([]rune(w)[room:])
			wl = utf8.RuneCountInString(w)
			line, col = indent, utf8.RuneCountInString(indent)
			start = col
		}
		line += w
		col += wl
	}
	b.WriteString(line)
	b.WriteByte('\n')
}
