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
// Part 10 stream. Reads stop after a given group: pixel data are skipped,
// never kept. The library logs (package log) the elements it fails to
// read: detection stops at group 0008 so that a file longer than the
// sniffed prefix does not make it fail.

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
// to the last element of group lastGroup (the next element is read, so a
// summary sees the pixel data skipped over in a whole file), after at
// most limit bytes of data set (counted after inflating a
// deflated one). It understands Part 10 files (preamble, "DICM", file
// meta group) in every transfer syntax the library knows (implicit and
// explicit VR little-endian, explicit VR big-endian) plus deflated ones,
// and data sets without the preamble. It returns an error wrapping
// ErrNotDICOM when r is none of those. A file cut short gives what was
// read, with Partial set.
func ReadDICOM(r io.Reader, limit int64, lastGroup uint16) (*DICOMHeader, error) {
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
	p, err := dicom.NewParser(io.LimitReader(stream, limit+int64(len(pre))), limit+int64(len(pre)), nil,
		dicom.SkipPixelData(), dicom.AllowMissingMetaElementGroupLength())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotDICOM, err)
	}
	h := &DICOMHeader{}
	meta := p.GetMetadata()
	h.Elements = append(h.Elements, meta.Elements...)
	h.TransferSyntax = h.Value(tag.TransferSyntaxUID)
	if h.TransferSyntax == "" {
		h.TransferSyntax = dicomImplicitLE
	}
	read := 0
	for len(h.Elements) < maxDICOMElements {
		e, err := p.Next()
		if err != nil {
			h.Partial = !errors.Is(err, io.EOF) || read == 0
			break
		}
		if e.Tag.Group > lastGroup {
			break
		}
		read++
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
	p, err := dicom.NewParser(bytes.NewReader(header), int64(len(header)), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotDICOM, err)
	}
	meta := p.GetMetadata()
	ts := (&DICOMHeader{Elements: meta.Elements}).Value(tag.TransferSyntaxUID)
	if ts != dicomDeflated {
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
