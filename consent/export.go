package consent

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ExportMagic starts every exported ledger file without checkpoints.
const ExportMagic = "medwallet ledger v1\n"

// ExportMagicCheckpoints starts an exported ledger file that carries
// checkpoints: the entries as after ExportMagic, then the checkpoint key
// certificates and the cosigned checkpoint notes.
const ExportMagicCheckpoints = "medwallet ledger v1 checkpoints\n"

// MaxExportEntries bounds the number of entries ReadExport accepts.
const MaxExportEntries = 1 << 24

// MaxExportCheckpoints bounds the number of certificates, and of
// checkpoint notes, an export carries.
const MaxExportCheckpoints = 1 << 16

// maxExportCert bounds the encoding of one certificate.
const maxExportCert = 1024

// ErrBadExport reports a file that is not a well-formed ledger export.
var ErrBadExport = errors.New("not a valid medwallet ledger export")

// ExportFile is the content of an exported ledger file.
type ExportFile struct {
	Entries []*Entry
	// Certs bind checkpoint keys to authors; Checkpoints are signed
	// checkpoint notes with their witnesses' cosignatures.
	Certs       []*CheckpointCert
	Checkpoints [][]byte
}

// WriteExport writes a self-contained ledger file: ExportMagic, the number
// of entries as a CBOR unsigned integer, then each entry's canonical
// encoding as a CBOR byte string. Nothing may follow.
func WriteExport(w io.Writer, entries []*Entry) error {
	return WriteExportFile(w, &ExportFile{Entries: entries})
}

// WriteExportFile writes x. Without certificates and checkpoints it
// writes what WriteExport writes; with them, ExportMagicCheckpoints, the
// entries as WriteExport, then the number of certificates and each
// certificate's canonical CBOR encoding as a byte string, then the number
// of checkpoint notes and each note as a byte string.
func WriteExportFile(w io.Writer, x *ExportFile) error {
	return WriteExportFrom(w, x, len(x.Entries), func(fn func(*Entry) error) error {
		for _, e := range x.Entries {
			if err := fn(e); err != nil {
				return err
			}
		}
		return nil
	})
}

// WriteExportFrom writes what WriteExportFile writes for x, with the n
// entries scan gives (in order) in place of x.Entries: they are written as
// scan reads them (Ledger.Scan, say), so that exporting a ledger does not
// hold it in memory. scan giving other than n entries is an error.
func WriteExportFrom(w io.Writer, x *ExportFile, n int, scan func(fn func(*Entry) error) error) error {
	bw := bufio.NewWriter(w)
	withCkpts := len(x.Certs) > 0 || len(x.Checkpoints) > 0
	if withCkpts {
		bw.WriteString(ExportMagicCheckpoints)
	} else {
		bw.WriteString(ExportMagic)
	}
	bytesItem := func(b []byte) {
		bw.Write(cborHead(2, uint64(len(b))))
		bw.Write(b)
	}
	bw.Write(cborHead(0, uint64(n)))
	got := 0
	err := scan(func(e *Entry) error {
		if got++; got > n {
			return fmt.Errorf("export: more than the %d entries announced", n)
		}
		bytesItem(e.Encode())
		return nil
	})
	if err != nil {
		return err
	}
	if got != n {
		return fmt.Errorf("export: %d entries, %d announced", got, n)
	}
	if withCkpts {
		bw.Write(cborHead(0, uint64(len(x.Certs))))
		for _, c := range x.Certs {
			b, err := Marshal(c)
			if err != nil {
				return err
			}
			bytesItem(b)
		}
		bw.Write(cborHead(0, uint64(len(x.Checkpoints))))
		for _, n := range x.Checkpoints {
			bytesItem(n)
		}
	}
	return bw.Flush()
}

// ReadExport reads a file written by WriteExport or WriteExportFile and
// returns its entries (see ReadExportFile).
func ReadExport(r io.Reader) ([]*Entry, error) {
	x, err := ReadExportFile(r)
	if err != nil {
		return nil, err
	}
	return x.Entries, nil
}

// ReadExportFile reads a file written by WriteExport or WriteExportFile.
// It checks the framing and decodes every entry and certificate strictly,
// but verifies no signature or chain: that is AuditLedger's and
// AuditCheckpoints' job, which report problems instead of stopping at the
// first.
func ReadExportFile(r io.Reader) (*ExportFile, error) {
	br := bufio.NewReader(r)
	magic := make([]byte, len(ExportMagic))
	if _, err := io.ReadFull(br, magic); err != nil {
		return nil, fmt.Errorf("%w: missing header %q", ErrBadExport, ExportMagic)
	}
	withCkpts := false
	if string(magic) != ExportMagic {
		rest := make([]byte, len(ExportMagicCheckpoints)-len(ExportMagic))
		if _, err := io.ReadFull(br, rest); err != nil || string(magic)+string(rest) != ExportMagicCheckpoints {
			return nil, fmt.Errorf("%w: missing header %q", ErrBadExport, ExportMagic)
		}
		withCkpts = true
	}
	n, err := readCBORHead(br, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: entry count: %v", ErrBadExport, err)
	}
	if n > MaxExportEntries {
		return nil, fmt.Errorf("%w: %d entries is too many", ErrBadExport, n)
	}
	x := &ExportFile{Entries: make([]*Entry, 0, min(n, 1<<16))}
	for i := uint64(0); i < n; i++ {
		size, err := readCBORHead(br, 2)
		if err != nil {
			return nil, fmt.Errorf("%w: entry %d of %d: %v", ErrBadExport, i+1, n, err)
		}
		if size > MaxEntrySize {
			return nil, fmt.Errorf("%w: entry %d: %w", ErrBadExport, i+1, ErrTooLarge)
		}
		b := make([]byte, size)
		if _, err := io.ReadFull(br, b); err != nil {
			return nil, fmt.Errorf("%w: entry %d of %d is truncated", ErrBadExport, i+1, n)
		}
		e, err := DecodeEntry(b)
		if err != nil {
			return nil, fmt.Errorf("%w: entry %d: %w", ErrBadExport, i+1, err)
		}
		x.Entries = append(x.Entries, e)
	}
	if withCkpts {
		if err := readExportCheckpoints(br, x); err != nil {
			return nil, err
		}
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data after %d entries", ErrBadExport, n)
	}
	return x, nil
}

// readExportCheckpoints reads the certificates and checkpoint notes.
func readExportCheckpoints(br *bufio.Reader, x *ExportFile) error {
	items := func(what string, limit uint64, each func(i uint64, b []byte) error) error {
		n, err := readCBORHead(br, 0)
		if err != nil {
			return fmt.Errorf("%w: %s count: %v", ErrBadExport, what, err)
		}
		if n > MaxExportCheckpoints {
			return fmt.Errorf("%w: %d %ss is too many", ErrBadExport, n, what)
		}
		for i := uint64(0); i < n; i++ {
			size, err := readCBORHead(br, 2)
			if err != nil {
				return fmt.Errorf("%w: %s %d of %d: %v", ErrBadExport, what, i+1, n, err)
			}
			if size > limit {
				return fmt.Errorf("%w: %s %d: %w", ErrBadExport, what, i+1, ErrTooLarge)
			}
			b := make([]byte, size)
			if _, err := io.ReadFull(br, b); err != nil {
				return fmt.Errorf("%w: %s %d of %d is truncated", ErrBadExport, what, i+1, n)
			}
			if err := each(i, b); err != nil {
				return err
			}
		}
		return nil
	}
	if err := items("certificate", maxExportCert, func(i uint64, b []byte) error {
		var c CheckpointCert
		if err := Unmarshal(b, &c); err != nil {
			return fmt.Errorf("%w: certificate %d: %w: %w", ErrBadExport, i+1, ErrMalformed, err)
		}
		x.Certs = append(x.Certs, &c)
		return nil
	}); err != nil {
		return err
	}
	return items("checkpoint", MaxCheckpointNote, func(_ uint64, b []byte) error {
		x.Checkpoints = append(x.Checkpoints, b)
		return nil
	})
}

// cborHead encodes a CBOR head of major type major with argument n in the
// shortest form (RFC 8949 section 4.2.1).
func cborHead(major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return []byte{m | byte(n)}
	case n <= 0xff:
		return []byte{m | 24, byte(n)}
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16([]byte{m | 25}, uint16(n))
	case n <= 0xffffffff:
		return binary.BigEndian.AppendUint32([]byte{m | 26}, uint32(n))
	}
	return binary.BigEndian.AppendUint64([]byte{m | 27}, n)
}

func readCBORHead(r *bufio.Reader, major byte) (uint64, error) {
	b, err := r.ReadByte()
	if err != nil {
		return 0, errors.New("truncated")
	}
	if b>>5 != major {
		return 0, fmt.Errorf("want CBOR major type %d, got %d", major, b>>5)
	}
	var n uint64
	switch ai := b & 31; {
	case ai < 24:
		return uint64(ai), nil
	case ai <= 27:
		buf := make([]byte, 1<<(ai-24))
		if _, err := io.ReadFull(r, buf); err != nil {
			return 0, errors.New("truncated")
		}
		for _, c := range buf {
			n = n<<8 | uint64(c)
		}
		if !bytes.Equal(cborHead(major, n), append([]byte{b}, buf...)) {
			return 0, ErrNotCanonical
		}
		return n, nil
	}
	return 0, errors.New("indefinite or reserved length")
}
