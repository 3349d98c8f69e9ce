package vault_test

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"

	"github.com/medwallet/medwallet/internal/testutil"
	"github.com/medwallet/medwallet/vault"
)

// sharedDICOM returns the DICOM files of the shared data.
func sharedDICOM(t testing.TB) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(testutil.SharedData(t), "dicom", "*.dcm"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no DICOM file in the shared data (%v)", err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	return out
}

func detectBytes(t *testing.T, b []byte) vault.Metadata {
	t.Helper()
	md, err := vault.Detect(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return md
}

// TestDetectSharedDICOM: every DICOM file of the shared data reports its
// modality and SOP class, as the library reads them from the whole file.
func TestDetectSharedDICOM(t *testing.T) {
	for name, b := range sharedDICOM(t) {
		t.Run(name, func(t *testing.T) {
			md := detectBytes(t, b)
			if md.Format != vault.FormatDICOM || md.DICOM == nil {
				t.Fatalf("format %q", md.Format)
			}
			ds, err := dicom.Parse(bytes.NewReader(b), int64(len(b)), nil, dicom.SkipPixelData())
			if err != nil {
				t.Fatal(err)
			}
			wantMod, wantSOP := elemString(t, ds, tag.Modality), elemString(t, ds, tag.SOPClassUID)
			if md.DICOM.Modality == "" || md.DICOM.SOPClassUID == "" {
				t.Errorf("modality %q, SOP class %q: want both", md.DICOM.Modality, md.DICOM.SOPClassUID)
			}
			if md.DICOM.Modality != wantMod || md.DICOM.SOPClassUID != wantSOP {
				t.Errorf("modality %q, SOP class %q; the library reads %q, %q", md.DICOM.Modality, md.DICOM.SOPClassUID, wantMod, wantSOP)
			}
			if vault.DICOMUIDName(md.DICOM.SOPClassUID) == "" {
				t.Errorf("SOP class %q has no name", md.DICOM.SOPClassUID)
			}
		})
	}
}

func elemString(t *testing.T, ds dicom.Dataset, tg tag.Tag) string {
	t.Helper()
	e, err := ds.FindElementByTag(tg)
	if err != nil {
		t.Fatalf("%v: %v", tg, err)
	}
	return strings.TrimRight(dicom.MustGetStrings(e.Value)[0], " \x00")
}

// reencode parses a little-endian DICOM file's header (up to group 0028,
// no pixel data) and writes it again in transfer syntax ts.
func reencode(t *testing.T, b []byte, ts string) []byte {
	t.Helper()
	ds, err := dicom.Parse(bytes.NewReader(b), int64(len(b)), nil, dicom.SkipPixelData())
	if err != nil {
		t.Fatal(err)
	}
	var keep []*dicom.Element
	for _, e := range ds.Elements {
		switch {
		case e.Tag == tag.TransferSyntaxUID:
			e.Value, _ = dicom.NewValue([]string{ts})
		case e.Tag.Group > 0x0028, e.Tag.Group%2 == 1, e.Tag == tag.FileMetaInformationGroupLength:
			continue // pixel data, private tags and the group length (rewritten)
		}
		keep = append(keep, e)
	}
	var out bytes.Buffer
	if err := dicom.Write(&out, dicom.Dataset{Elements: keep}, dicom.SkipVRVerification()); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// deflate makes a deflated-transfer-syntax file from one the library wrote
// as explicit VR little-endian with the deflated UID in its meta group:
// the data set after the meta group is compressed (raw deflate, PS3.5
// A.5).
func deflate(t *testing.T, b []byte) []byte {
	t.Helper()
	metaEnd := 132 + 12 + int(binary.LittleEndian.Uint32(b[140:144]))
	var out bytes.Buffer
	out.Write(b[:metaEnd])
	w, _ := flate.NewWriter(&out, flate.BestCompression)
	w.Write(b[metaEnd:])
	w.Close()
	return out.Bytes()
}

// TestDetectDICOMTransferSyntaxes: big-endian, deflated and preamble-less
// files made from each little-endian file of the shared data report the
// same modality and SOP class as the original.
func TestDetectDICOMTransferSyntaxes(t *testing.T) {
	for name, b := range sharedDICOM(t) {
		orig := detectBytes(t, b).DICOM
		if orig.TransferSyntax != "1.2.840.10008.1.2.1" && orig.TransferSyntax != "1.2.840.10008.1.2" {
			continue
		}
		variants := map[string][]byte{
			"big-endian":           reencode(t, b, "1.2.840.10008.1.2.2"),
			"deflated":             deflate(t, reencode(t, b, "1.2.840.10008.1.2.1.99")),
			"no preamble":          b[128:],
			"no preamble, no DICM": b[132:],
		}
		explicit := reencode(t, b, "1.2.840.10008.1.2.1")
		metaEnd := 132 + 12 + int(binary.LittleEndian.Uint32(explicit[140:144]))
		variants["bare data set, explicit VR"] = explicit[metaEnd:]
		implicit := reencode(t, b, "1.2.840.10008.1.2")
		metaEnd = 132 + 12 + int(binary.LittleEndian.Uint32(implicit[140:144]))
		variants["bare data set, implicit VR"] = implicit[metaEnd:]
		for v, data := range variants {
			t.Run(name+"/"+v, func(t *testing.T) {
				md := detectBytes(t, data)
				if md.Format != vault.FormatDICOM {
					t.Fatalf("format %q", md.Format)
				}
				if md.DICOM.Modality != orig.Modality || md.DICOM.SOPClassUID != orig.SOPClassUID {
					t.Errorf("modality %q, SOP class %q; want %q, %q", md.DICOM.Modality, md.DICOM.SOPClassUID, orig.Modality, orig.SOPClassUID)
				}
			})
		}
		if v := detectBytes(t, variants["deflated"]).DICOM.TransferSyntax; v != "1.2.840.10008.1.2.1.99" {
			t.Errorf("deflated file reports transfer syntax %q", v)
		}
		if v := detectBytes(t, variants["big-endian"]).DICOM.TransferSyntax; v != "1.2.840.10008.1.2.2" {
			t.Errorf("big-endian file reports transfer syntax %q", v)
		}
	}
}

// TestReadDICOMBounded: a header read stops at group 0028 and at the
// limit, and a truncated file gives what came before.
func TestReadDICOMBounded(t *testing.T) {
	for name, b := range sharedDICOM(t) {
		h, err := vault.ReadDICOM(bytes.NewReader(b), int64(len(b)), vault.DICOMSummaryGroup)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, e := range h.Elements {
			if e.Tag.Group > 0x0028 {
				t.Errorf("%s: element %v read past group 0028", name, e.Tag)
			}
		}
		if h.Value(tag.Modality) == "" || h.Value(tag.Rows) == "" && h.Value(tag.SOPClassUID) != "1.2.840.10008.5.1.4.1.1.88.33" {
			t.Errorf("%s: modality %q, rows %q", name, h.Value(tag.Modality), h.Value(tag.Rows))
		}
		// A file cut in the middle of an element gives what came before.
		cut, err := vault.ReadDICOM(bytes.NewReader(b[:401]), 1<<20, vault.DICOMSummaryGroup)
		if err != nil {
			t.Fatalf("%s cut: %v", name, err)
		}
		if len(cut.Elements) == 0 || len(cut.Elements) >= len(h.Elements) {
			t.Errorf("%s: %d elements of a cut file, %d of the whole", name, len(cut.Elements), len(h.Elements))
		}
	}
	for _, junk := range []string{"", "x", strings.Repeat("\x00", 200), "\x08\x00\x00\x01zz"} {
		if _, err := vault.ReadDICOM(strings.NewReader(junk), 1<<20, vault.DICOMSummaryGroup); err == nil {
			t.Errorf("%q read as DICOM", junk)
		}
	}
}

// TestReadDICOMForgedLength: an element that declares 4 GiB in a small
// file is never handed to the library (which would allocate it), nor is
// a file cut in the middle of an element (which would make it log).
func TestReadDICOMForgedLength(t *testing.T) {
	var logged bytes.Buffer
	log.SetOutput(&logged)
	t.Cleanup(func() { log.SetOutput(os.Stderr) })
	ts := "1.2.840.10008.1.2\x00"
	el := []byte{0x02, 0, 0x10, 0, 'U', 'I', byte(len(ts)), 0}
	el = append(el, ts...)
	b := append(make([]byte, 128), "DICM"...)
	b = append(b, 0x02, 0, 0, 0, 'U', 'L', 4, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(el)))
	b = append(b, el...)
	b = append(b, 0x08, 0, 0x60, 0, 2, 0, 0, 0, 'C', 'T') // (0008,0060) CT
	nested := append([]byte{}, b...)
	b = append(b, 0x08, 0, 0x70, 0)
	b = binary.LittleEndian.AppendUint32(b, 0xFFFFFFF0)
	b = append(b, bytes.Repeat([]byte("x"), 1000)...)
	// The same length inside a sequence item of a defined length.
	item := []byte{0x10, 0, 0x10, 0}
	item = binary.LittleEndian.AppendUint32(item, 0xFFFFFFF0)
	seq := []byte{0xFE, 0xFF, 0x00, 0xE0}
	seq = binary.LittleEndian.AppendUint32(seq, uint32(len(item)))
	seq = append(seq, item...)
	nested = append(nested, 0x08, 0, 0x15, 0x11) // (0008,1115) Referenced Series Sequence
	nested = binary.LittleEndian.AppendUint32(nested, uint32(len(seq)))
	nested = append(nested, seq...)
	for name, data := range map[string][]byte{"top level": b, "in a sequence": nested} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		md := detectBytes(t, data)
		h, err := vault.ReadDICOM(bytes.NewReader(data), 1<<20, vault.DICOMSummaryGroup)
		runtime.ReadMemStats(&after)
		if err != nil || !h.Partial || h.Value(tag.Modality) != "CT" || md.DICOM.Modality != "CT" {
			t.Errorf("%s: %v, partial %v, modality %q / %q", name, err, h != nil && h.Partial, h.Value(tag.Modality), md.DICOM.Modality)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
			t.Errorf("%s: reading 1 KiB allocated %d MiB", name, grew>>20)
		}
	}
	for name, data := range sharedDICOM(t) {
		for _, n := range []int{300, 700, 2000, len(data) / 2} {
			_, _ = vault.ReadDICOM(bytes.NewReader(data[:n]), 1<<20, vault.DICOMSummaryGroup)
			_ = detectBytes(t, data[:n])
		}
		_ = name
	}
	if logged.Len() > 0 {
		t.Errorf("the library logged:\n%s", logged.String())
	}
}

// FuzzReadDICOM: any input reads without a panic, a log line or a large
// allocation, through detection and a summary's read.
func FuzzReadDICOM(f *testing.F) {
	for _, b := range sharedDICOM(f) {
		f.Add(b[:min(len(b), 2048)])
		f.Add(b[128:min(len(b), 1024)])
	}
	f.Add([]byte("DICM"))
	var logged bytes.Buffer
	log.SetOutput(&logged)
	f.Cleanup(func() { log.SetOutput(os.Stderr) })
	f.Fuzz(func(t *testing.T, data []byte) {
		logged.Reset()
		h, err := vault.ReadDICOM(bytes.NewReader(data), 1<<20, vault.DICOMSummaryGroup)
		if err == nil {
			_ = h.Value(tag.Modality)
		}
		_, _ = vault.Detect(bytes.NewReader(data))
		if logged.Len() > 0 {
			t.Fatalf("the library logged: %s", logged.String())
		}
	})
}
