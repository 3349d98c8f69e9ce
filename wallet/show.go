package wallet

// Show: a record's readable summary, decrypted in memory only
// (ShowRecord, ShowFile).

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/medwallet/medwallet/recordview"
	"github.com/medwallet/medwallet/vault"
)

// ShowRecord rebuilds and decrypts a record in memory and returns its
// summary. The plaintext streams from the shares through the decryption
// into the summary without touching the disk (no temporary file), and is
// read to its end, so every block is checked even when the summary needs
// only the start (a DICOM header). A record that fails to rebuild gives
// an error, never a summary of a part of it.
func (w *Wallet) ShowRecord(ctx context.Context, ref string, opts RecordOptions) (RecordInfo, *recordview.Summary, error) {
	info, err := w.Record(ctx, ref)
	if err != nil {
		return RecordInfo{}, nil, err
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := w.GetRecord(ctx, info.ID, pw, opts)
		pw.CloseWithError(err)
		done <- err
	}()
	s, serr := recordview.Summarize(pr, info.Metadata)
	_, _ = io.Copy(io.Discard, pr) // let the rebuild finish and check every block
	if err := <-done; err != nil {
		return RecordInfo{}, nil, err
	}
	if serr != nil {
		return RecordInfo{}, nil, summaryErr(info.ID, serr)
	}
	return info, s, nil
}

// ShowFile returns the summary of a record held in a file the user
// already has in plaintext (what `import` wrote for a grantee, or a file
// about to be added): its format is detected as `record add` does.
func ShowFile(r io.ReadSeeker) (vault.Metadata, *recordview.Summary, error) {
	md, err := vault.Detect(r)
	if err != nil {
		return vault.Metadata{}, nil, err
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return vault.Metadata{}, nil, err
	}
	s, err := recordview.Summarize(r, md)
	if err != nil {
		return md, nil, summaryErr("", err)
	}
	return md, s, nil
}

// summaryErr words a summary failure: a binary record has none, a
// malformed one is ErrVerify (it is not what its metadata says).
func summaryErr(id string, err error) error {
	what := "the file"
	if id != "" {
		what = "record " + id
	}
	switch {
	case errors.Is(err, recordview.ErrUnsupported):
		return &InputError{Field: FieldRecord, Problem: Rejected, Value: id,
			Reason: what + " is not FHIR, C-CDA, DICOM nor PDF, so it has no summary", Err: err}
	case errors.Is(err, recordview.ErrMalformed):
		return fmt.Errorf("%s: %w: %w", what, ErrVerify, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
