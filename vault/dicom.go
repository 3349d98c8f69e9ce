package vault

import (
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
	"github.com/suyashkumar/dicom/pkg/uid"
)

// DICOM is read with github.com/suyashkumar/dicom. This file brings to
// the library the files it does not take as they are: a data set without
// the 128-byte preamble (with or without "DICM" or a file meta group),
// and the deflated transfer syntax (which the library reads as plain
// explicit little-endian), so that every DICOM file reaches it as a
// Part 10 stream. Reads stop after a given group (0008 for detection,
// 0028 for a summary): pixel data are never read. The library gets whole
// elements only (wholeElements checks every declared length first), as
// it allocates a length before reading it and logs what it cannot read.

// ErrNotDICOM reports data that is not a DICOM file.
var ErrNotDICOM = errors.New("not a DICOM file")

// DICOM transfer syntaxes named here.
const (
	dicomImplicitLE = "1.2.840.10008.1.2"
	dicomExplicitLE = "1.2.840.10008.1.2.1"
	dicomDeflated   = "1.2.840.10008.1.2.1.99"
)

// maxDICOMElements bounds the top-level elements ReadDICOM keeps.
const maxDICOMElements = 4096

// DICOMSummaryGroup is the last group a summary reads (0028: the image
// pixel description); detection reads up to group 0008 (SOP class,
// modality), so that it never reaches past the sniffed prefix.
const (
	DICOMSummaryGroup = 0x0028
	dicomDetectGroup  = 0x0008
)

// DICOMHeader is the start of a DICOM data set.
type DICOMHeader struct {
	// TransferSyntax is the UID from the file meta group, or the one
	// assumed for a file without it.
	TransferSyntax string
	// Elements are the top-level elements read, file meta first.
	Elements []*dicom.Element
	// Partial says the data ended (or failed to parse) before group 0028
	// was done.
	Partial bool
}

// Value returns the first string value of the top-level element with the
// tag ("" when absent), trimmed, valid UTF-8, at most 256 bytes.
func (h *DICOMHeader) Value(t tag.Tag) string {
	for _, e := range h.Elements {
		if e.Tag != t || e.Value == nil {
			continue
		}
		switch v := e.Value.GetValue().(type) {
		case []string:
			if len(v) > 0 {
				return clean(strings.TrimRight(strings.TrimSpace(v[0]), "\x00"))
			}
		case []int:
			if len(v) > 0 {
				return fmt.Sprint(v[0])
			}
		}
		return ""
	}
	return ""
}

// ReadDICOM reads the header of a DICOM file from r with the library, up
// to the last element of group lastGroup, after at most limit bytes of
// data set (counted after inflating a deflated one; never more than
// MaxDICOMHeader). It understands Part 10 files (preamble, "DICM", file
// meta group) in every transfer syntax the library knows (implicit and
// explicit VR little-endian, explicit VR big-endian) plus deflated ones,
// and data sets without the preamble. It returns an error wrapping
// ErrNotDICOM when r is none of those. A file cut short gives what was
// read, with Partial set.
//
// The library is handed whole elements only (wholeElements): it allocates
// an element's declared length before reading it, and logs the elements
// it fails to read, so a length past the end of the data (a cut file, or
// a forged one) must never reach it.
func ReadDICOM(r io.Reader, limit int64, lastGroup uint16) (h *DICOMHeader, err error) {
	defer func() {
		// A malformed file must not take the wallet down with it.
		if p := recover(); p != nil {
			h, err = nil, fmt.Errorf("%w: the DICOM reader failed", ErrNotDICOM)
		}
	}()
	br := bufio.NewReaderSize(r, 4096)
	head, _ := br.Peek(132)
	var pre []byte
	bare := false
	switch {
	case len(head) >= 132 && string(head[128:132]) == "DICM":
	case len(head) >= 8 && string(head[:4]) == "DICM" && binary.LittleEndian.Uint16(head[4:6]) == 0x0002:
		pre = make([]byte, 128)
	case len(head) >= 8 && binary.LittleEndian.Uint16(head[0:2]) == 0x0002 && isVR(head[4:6]):
		pre = append(make([]byte, 128), "DICM"...)
	case len(head) >= 8 && binary.LittleEndian.Uint16(head[0:2]) == 0x0008 && binary.LittleEndian.Uint16(head[2:4]) < 0x0100:
		// A bare data set: say which VR form it uses in a file meta
		// group of our own.
		ts := dicomImplicitLE
		if isVR(head[4:6]) {
			ts = dicomExplicitLE
		}
		pre = syntheticMeta(ts)
		bare = true
	default:
		return nil, ErrNotDICOM
	}
	stream, err := inflateIfDeflated(io.MultiReader(bytes.NewReader(pre), br))
	if err != nil {
		return nil, err
	}
	buf, err := io.ReadAll(io.LimitReader(stream, min(limit+int64(len(pre)), MaxDICOMHeader)))
	if err != nil && len(buf) == 0 {
		return nil, fmt.Errorf("%w: %v", ErrNotDICOM, err)
	}
	cut, complete := wholeElements(buf, lastGroup)
	p, err := dicom.NewParser(bytes.NewReader(buf[:cut]), int64(cut), nil,
		dicom.SkipPixelData(), dicom.AllowMissingMetaElementGroupLength())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotDICOM, err)
	}
	h = &DICOMHeader{Partial: !complete}
	meta := p.GetMetadata()
	h.Elements = append(h.Elements, meta.Elements...)
	h.TransferSyntax = h.Value(tag.TransferSyntaxUID)
	if h.TransferSyntax == "" {
		h.TransferSyntax = dicomImplicitLE
	}
	for len(h.Elements) < maxDICOMElements {
		e, err := p.Next()
		if err != nil {
			h.Partial = h.Partial || !errors.Is(err, io.EOF) && !errors.Is(err, dicom.ErrorEndOfDICOM)
			break
		}
		if e.Tag.Group > lastGroup {
			break
		}
		h.Elements = append(h.Elements, e)
	}
	if bare {
		h.Elements = h.Elements[len(meta.Elements):]
		if h.Value(tag.SOPClassUID) == "" && h.Value(tag.Modality) == "" {
			return nil, ErrNotDICOM
		}
	}
	return h, nil
}

// MaxDICOMHeader bounds the bytes of a DICOM file ReadDICOM keeps in
// memory: the header up to group 0028 fits many times over.
const MaxDICOMHeader = 16 << 20

// maxDICOMDepth bounds the nesting of sequences wholeElements follows.
const maxDICOMDepth = 16

// Element tags of sequence items and their delimiters.
const (
	dicomItem       = 0xFFFEE000
	dicomItemEnd    = 0xFFFEE00D
	dicomSeqEnd     = 0xFFFEE0DD
	undefinedLength = 0xFFFFFFFF
)

// dicomSyntax is how a data set's elements are encoded.
type dicomSyntax struct {
	bo       binary.ByteOrder
	implicit bool
}

// wholeElements walks a Part 10 file in b (preamble, "DICM", file meta
// group, data set) and returns the length of its prefix made of whole
// top-level elements of groups up to lastGroup, each nested element's
// length checked too, and whether the walk ended at the end of b or at a
// later group (not at a length past the end of b or a malformed element).
func wholeElements(b []byte, lastGroup uint16) (int, bool) {
	if len(b) < 132 {
		return len(b), false
	}
	off, ts, haveTS, ok := walkMeta(b)
	if !ok {
		return off, false
	}
	data := dicomSyntax{binary.LittleEndian, true} // the library's default
	if haveTS {
		bo, implicit, _ := uid.ParseTransferSyntaxUID(ts) // on error, explicit big-endian, as the library
		data = dicomSyntax{bo, implicit}
	}
	for off < len(b) {
		if off+4 > len(b) {
			return off, false
		}
		if data.bo.Uint16(b[off:]) > lastGroup {
			return off, true
		}
		end, ok := dicomElement(b, off, len(b), data, 0)
		if !ok {
			return off, false
		}
		off = end
	}
	return off, true
}

// walkMeta walks the file meta group of a Part 10 file in b as the
// library reads it (the length its first element gives, else every group
// 0002 element) and returns where the data set starts and the transfer
// syntax, if named; ok is false at an element that does not fit.
func walkMeta(b []byte) (off int, ts string, haveTS, ok bool) {
	off = 132
	meta := dicomSyntax{binary.LittleEndian, false}
	metaEnd := -1
	if off+12 <= len(b) && binary.LittleEndian.Uint32(b[off:]) == 0x00000002 && string(b[off+4:off+6]) == "UL" &&
		binary.LittleEndian.Uint16(b[off+6:]) == 4 {
		metaEnd = off + 12 + int(binary.LittleEndian.Uint32(b[off+8:]))
		if metaEnd > len(b) || metaEnd < off {
			return off, "", false, false
		}
		off += 12
	}
	for off < len(b) {
		if metaEnd >= 0 && off >= metaEnd || metaEnd < 0 && (off+2 > len(b) || binary.LittleEndian.Uint16(b[off:]) != 0x0002) {
			break
		}
		end, ok := dicomElement(b, off, len(b), meta, 0)
		if !ok || metaEnd >= 0 && end > metaEnd {
			return off, "", false, false
		}
		if binary.LittleEndian.Uint32(b[off:]) == 0x00100002 && string(b[off+4:off+6]) != "UI" {
			return off, "", false, false // the library would panic on it
		}
		if !haveTS && binary.LittleEndian.Uint32(b[off:]) == 0x00100002 {
			ts, haveTS = dicomString(b[off+8:end]), true
		}
		off = end
	}
	return off, ts, haveTS, true
}

// dicomString is a string value as the library reads it: trimmed of
// spaces and NULs (unless all spaces), its first value.
func dicomString(v []byte) string {
	str := string(v)
	if strings.TrimSpace(str) != "" {
		str = strings.Trim(str, " \x00")
	}
	first, _, _ := strings.Cut(str, "\\")
	return first
}

// dicomElement checks the element at off (before end) and returns where
// the next one starts.
func dicomElement(b []byte, off, end int, sx dicomSyntax, depth int) (int, bool) {
	if depth > maxDICOMDepth || off+8 > end {
		return 0, false
	}
	g, e := sx.bo.Uint16(b[off:]), sx.bo.Uint16(b[off+2:])
	t := uint32(g)<<16 | uint32(e)
	var vr string
	var vl uint32
	hdr := 8
	switch {
	case g == 0xFFFE || sx.implicit:
		vl = sx.bo.Uint32(b[off+4:])
		if info, err := tag.Find(tag.Tag{Group: g, Element: e}); err == nil {
			vr = info.VR
		}
	default:
		vr = string(b[off+4 : off+6])
		switch vr {
		case "OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV":
			if off+12 > end {
				return 0, false
			}
			vl, hdr = sx.bo.Uint32(b[off+8:]), 12
		default:
			vl = uint32(sx.bo.Uint16(b[off+6:]))
		}
	}
	body := off + hdr
	if t == 0x00080005 && vr != "CS" {
		return 0, false // the library would panic on a specific character set that is not text
	}
	if t == dicomItemEnd || t == dicomSeqEnd {
		return body, vl == 0
	}
	if vl != undefinedLength {
		if uint64(vl) > uint64(end-body) || vl%valueSize(vr) != 0 {
			return 0, false
		}
		next := body + int(vl)
		if vr == "SQ" || t == dicomItem {
			// The nested elements must fit too: the library reads them.
			if !dicomItems(b, body, next, sx, depth+1, t == dicomItem) {
				return 0, false
			}
		}
		return next, true
	}
	// Undefined length: a sequence (or an item, or encapsulated data)
	// closed by its delimiter.
	return dicomUntil(b, body, end, sx, depth+1, t == dicomItem)
}

// valueSize is the size of one value of a binary VR (1 for the others):
// an element's length must be a multiple of it.
func valueSize(vr string) uint32 {
	switch vr {
	case "US", "SS", "OW":
		return 2
	case "UL", "SL", "FL", "AT", "OL", "OF":
		return 4
	case "FD", "OD", "SV", "UV", "OV":
		return 8
	}
	return 1
}

// dicomItems checks [off, end): the items of a sequence, or with inItem
// the elements of one item.
func dicomItems(b []byte, off, end int, sx dicomSyntax, depth int, inItem bool) bool {
	for off < end {
		next, ok := dicomElement(b, off, end, sx, depth)
		if !ok {
			return false
		}
		if !inItem && sx.bo.Uint16(b[off:]) != 0xFFFE {
			return false // a sequence holds items only
		}
		off = next
	}
	return true
}

// dicomUntil walks from off to the delimiter of an undefined-length item
// (inItem) or sequence, and returns what follows it.
func dicomUntil(b []byte, off, end int, sx dicomSyntax, depth int, inItem bool) (int, bool) {
	want := uint32(dicomSeqEnd)
	if inItem {
		want = dicomItemEnd
	}
	for off+8 <= end {
		t := uint32(sx.bo.Uint16(b[off:]))<<16 | uint32(sx.bo.Uint16(b[off+2:]))
		if g := sx.bo.Uint16(b[off:]); g == 0xFFFE {
			t = uint32(g)<<16 | uint32(sx.bo.Uint16(b[off+2:]))
		}
		next, ok := dicomElement(b, off, end, sx, depth)
		if !ok {
			return 0, false
		}
		if t == want {
			return next, true
		}
		off = next
	}
	return 0, false
}

// isVR says whether b is two upper-case letters (an explicit VR).
func isVR(b []byte) bool {
	return len(b) == 2 && b[0] >= 'A' && b[0] <= 'Z' && b[1] >= 'A' && b[1] <= 'Z'
}

// syntheticMeta is a preamble, "DICM" and a file meta group naming the
// transfer syntax ts.
func syntheticMeta(ts string) []byte {
	if len(ts)%2 == 1 {
		ts += "\x00"
	}
	elem := binary.LittleEndian.AppendUint16(nil, 0x0002)
	elem = binary.LittleEndian.AppendUint16(elem, 0x0010)
	elem = append(elem, 'U', 'I')
	elem = binary.LittleEndian.AppendUint16(elem, uint16(len(ts)))
	elem = append(elem, ts...)
	out := append(make([]byte, 128), "DICM"...)
	out = binary.LittleEndian.AppendUint16(out, 0x0002)
	out = binary.LittleEndian.AppendUint16(out, 0x0000)
	out = append(out, 'U', 'L')
	out = binary.LittleEndian.AppendUint16(out, 4)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(elem)))
	return append(out, elem...)
}

// inflateIfDeflated reads the preamble and the file meta group of a Part
// 10 stream and, when its transfer syntax is deflated explicit VR
// little-endian, returns the stream with the data set inflated (the
// library reads it as explicit VR little-endian). A meta group without a
// group length is passed through as it is.
func inflateIfDeflated(r io.Reader) (io.Reader, error) {
	br := bufio.NewReader(r)
	head, err := br.Peek(132 + 12)
	if err != nil || string(head[128:132]) != "DICM" {
		return br, nil
	}
	g := head[132:]
	if binary.LittleEndian.Uint16(g[0:2]) != 0x0002 || binary.LittleEndian.Uint16(g[2:4]) != 0x0000 || string(g[4:6]) != "UL" {
		return br, nil
	}
	metaLen := int64(binary.LittleEndian.Uint32(g[8:12]))
	if metaLen > 64<<10 {
		return nil, fmt.Errorf("%w: file meta group of %d bytes", ErrNotDICOM, metaLen)
	}
	header := make([]byte, 132+12+metaLen)
	if _, err := io.ReadFull(br, header); err != nil {
		return io.MultiReader(bytes.NewReader(header), br), nil
	}
	if _, ts, _, ok := walkMeta(header); !ok || ts != dicomDeflated {
		return io.MultiReader(bytes.NewReader(header), br), nil
	}
	return io.MultiReader(bytes.NewReader(header), flate.NewReader(br)), nil
}

// DICOMUIDName is the name of a standard UID (an SOP class, a transfer
// syntax), or "" when the library's dictionary does not know it.
func DICOMUIDName(u string) string {
	if info, err := uid.Lookup(u); err == nil {
		return info.Name
	}
	return ""
}

// sniffDICOM reads the DICOM attributes of the metadata from the prefix,
// or returns nil when it is not DICOM. A Part 10 preamble and "DICM" make
// a DICOM file even when nothing after them parses.
func sniffDICOM(p []byte) *DICOMInfo {
	h, err := ReadDICOM(bytes.NewReader(p), int64(len(p)), dicomDetectGroup)
	if err != nil {
		if len(p) >= 132 && string(p[128:132]) == "DICM" {
			return &DICOMInfo{}
		}
		return nil
	}
	return &DICOMInfo{Modality: h.Value(tag.Modality), SOPClassUID: h.Value(tag.SOPClassUID), TransferSyntax: h.TransferSyntax}
}
