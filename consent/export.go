package consent

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ExportMagic starts every exported ledger file.
const ExportMagic = "medwallet ledger v1\n"

// MaxExportEntries bounds the number of entries ReadExport accepts.
const MaxExportEntries = 1 << 24

// ErrBadExport reports a file that is not a well-formed ledger export.
var ErrBadExport = errors.New("not a valid medwallet ledger export")

// WriteExport writes a self-contained ledger file: ExportMagic, the number
// of entries as a CBOR unsigned integer, then each entry's canonical
// encoding as a CBOR byte string. Nothing may follow.
func WriteExport(w io.Writer, entries []*Entry) error {
	bw := bufio.NewWriter(w)
	bw.WriteString(ExportMagic)
	bw.Write(cborHead(0, uint64(len(entries))))
	for _, e := range entries {
		b := e.Encode()
		bw.Write(cborHead(2, uint64(len(b))))
		bw.Write(b)
	}
	return bw.Flush()
}

// ReadExport reads a file written by WriteExport. It checks the framing and
// decodes every entry strictly, but verifies no signature or chain: that is
// AuditLedger's job, which reports problems instead of stopping at the first.
func ReadExport(r io.Reader) ([]*Entry, error) {
	br := bufio.NewReader(r)
	magic := make([]byte, len(ExportMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != ExportMagic {
		return nil, fmt.Errorf("%w: missing header %q", ErrBadExport, ExportMagic)
	}
	n, err := readCBORHead(br, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: entry count: %v", ErrBadExport, err)
	}
	if n > MaxExportEntries {
		return nil, fmt.Errorf("%w: %d entries is too many", ErrBadExport, n)
	}
	entries := make([]*Entry, 0, min(n, 1<<16))
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
		entries = append(entries, e)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data after %d entries", ErrBadExport, n)
	}
	return entries, nil
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
