package recordview

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/medwallet/medwallet/vault"
)

// A PDF summary is its title and page count. They are read with a small
// bounded scan rather than a PDF library: the page tree's root (/Type
// /Pages without /Parent) gives the count, the document information
// dictionary (else the XMP dc:title) the title, both looked for in the
// file and in its compressed object streams (/ObjStm), which is where
// PDF 1.5 writers put them.

// PDF scan bounds: the file read, each object stream inflated, and all of
// them together.
const (
	maxPDF          = 64 << 20
	maxObjStm       = 4 << 20
	maxObjStmsTotal = 32 << 20
)

var (
	pdfStream  = regexp.MustCompile(`(?s)<<((?:[^<>]|<<(?:[^<>]|<<[^<>]*>>|<[^<>]*>)*>>|<[^<>]*>)*)>>\s*stream\r?\n`)
	pdfPages   = regexp.MustCompile(`(?s)<<((?:[^<>]|<<[^<>]*>>|<[^<>]*>)*/Type\s*/Pages\b(?:[^<>]|<<[^<>]*>>|<[^<>]*>)*)>>`)
	pdfCount   = regexp.MustCompile(`/Count\s+(\d+)`)
	pdfPage    = regexp.MustCompile(`/Type\s*/Page\b`)
	pdfTitle   = regexp.MustCompile(`/Title\s*(\((?:[^()\\]|\\.|\((?:[^()\\]|\\.)*\))*\)|<[0-9A-Fa-f\s]*>)`)
	pdfXMPName = regexp.MustCompile(`(?s)<dc:title>.*?<rdf:li[^>]*>(.*?)</rdf:li>`)
)

func summarizePDF(r io.Reader) (*Summary, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxPDF+1))
	if err != nil {
		return nil, err
	}
	s := &Summary{Format: vault.FormatPDF}
	if len(data) > maxPDF {
		data, s.Partial = data[:maxPDF], true
	}
	if !bytes.Contains(data[:min(len(data), 1024)], []byte("%PDF-")) {
		return nil, ErrMalformed
	}
	texts := [][]byte{data}
	total := 0
	for _, m := range pdfStream.FindAllSubmatchIndex(data, -1) {
		dict := data[m[2]:m[3]]
		if !bytes.Contains(dict, []byte("/ObjStm")) || !bytes.Contains(dict, []byte("/FlateDecode")) || total >= maxObjStmsTotal {
			continue
		}
		zr, err := zlib.NewReader(bytes.NewReader(data[m[1]:]))
		if err != nil {
			continue
		}
		plain, _ := io.ReadAll(io.LimitReader(zr, int64(min(maxObjStm, maxObjStmsTotal-total))))
		total += len(plain)
		texts = append(texts, plain)
	}
	pages, root := 0, false
	var title, xmpTitle string
	for _, t := range texts {
		for _, m := range pdfPages.FindAllSubmatch(t, -1) {
			c := pdfCount.FindSubmatch(m[1])
			if c == nil {
				continue
			}
			n, err := strconv.Atoi(string(c[1]))
			if err != nil {
				continue
			}
			isRoot := !bytes.Contains(m[1], []byte("/Parent"))
			if isRoot && !root || (isRoot == root && n > pages) {
				pages, root = n, isRoot
			}
		}
		if title == "" {
			if m := pdfTitle.FindSubmatch(t); m != nil {
				title = pdfString(m[1])
			}
		}
		if xmpTitle == "" {
			if m := pdfXMPName.FindSubmatch(t); m != nil {
				xmpTitle = oneLine(xmlUnescape(string(m[1])))
			}
		}
	}
	if pages == 0 {
		for _, t := range texts {
			pages += len(pdfPage.FindAllIndex(t, -1))
		}
	}
	title = first(title, xmpTitle)
	if len(title) > maxField {
		title = strings.ToValidUTF8(title[:maxField], "")
	}
	s.Title = title
	var f []Field
	f = addField(f, "title", title)
	if pages > 0 {
		f = addField(f, "pages", strconv.Itoa(pages))
	}
	if v := pdfVersion(data); v != "" {
		f = addField(f, "PDF version", v)
	}
	s.Sections = []Section{one("document", "Document", Item{Title: first(title, "(no title)"), Fields: f})}
	return s, nil
}

func pdfVersion(data []byte) string {
	i := bytes.Index(data, []byte("%PDF-"))
	v := data[i+5:]
	n := 0
	for n < len(v) && n < 4 && (v[n] >= '0' && v[n] <= '9' || v[n] == '.') {
		n++
	}
	return string(v[:n])
}

func xmlUnescape(s string) string {
	return strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">", "&quot;", `"`, "&apos;", "'").Replace(s)
}

// pdfString decodes a PDF literal "(...)" or hex "<...>" string: escapes,
// and UTF-16BE with a byte order mark; PDFDocEncoding is taken as Latin-1.
func pdfString(tok []byte) string {
	var raw []byte
	if tok[0] == '<' {
		hex := bytes.Map(func(r rune) rune {
			if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
				return -1
			}
			return r
		}, tok[1:len(tok)-1])
		if len(hex)%2 == 1 {
			hex = append(hex, '0')
		}
		for i := 0; i+1 < len(hex); i += 2 {
			v, _ := strconv.ParseUint(string(hex[i:i+2]), 16, 8)
			raw = append(raw, byte(v))
		}
	} else {
		body := tok[1 : len(tok)-1]
		for i := 0; i < len(body); i++ {
			c := body[i]
			if c != '\\' || i+1 == len(body) {
				raw = append(raw, c)
				continue
			}
			i++
			switch e := body[i]; e {
			case 'n':
				raw = append(raw, '\n')
			case 'r':
				raw = append(raw, '\r')
			case 't':
				raw = append(raw, '\t')
			case 'b', 'f':
			case '\r', '\n':
			default:
				if e >= '0' && e <= '7' {
					j := i
					for j < len(body) && j < i+3 && body[j] >= '0' && body[j] <= '7' {
						j++
					}
					v, _ := strconv.ParseUint(string(body[i:j]), 8, 8)
					raw = append(raw, byte(v))
					i = j - 1
				} else {
					raw = append(raw, e)
				}
			}
		}
	}
	if len(raw) >= 2 && raw[0] == 0xFE && raw[1] == 0xFF {
		u := make([]uint16, 0, len(raw)/2)
		for i := 2; i+1 < len(raw); i += 2 {
			u = append(u, binary.BigEndian.Uint16(raw[i:]))
		}
		return oneLine(string(utf16.Decode(u)))
	}
	rs := make([]rune, len(raw))
	for i, b := range raw {
		rs[i] = rune(b)
	}
	return oneLine(string(rs))
}
