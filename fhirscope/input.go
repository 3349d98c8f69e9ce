package fhirscope

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode"
)

// input is the record Filter reads: at most maxInput bytes of r (one more
// is read to tell a record at the limit from a larger one), counted, and
// copied into kept while keep is set, so that a record that turns out to
// be a single resource can be copied byte for byte.
type input struct {
	r    io.Reader // r limited to maxInput+1 bytes
	n    int64     // bytes read from r
	err  error     // the first read error other than io.EOF
	keep bool
	kept []byte
	br   *bufio.Reader // over the input itself, for the leading white space
}

func newInput(r io.Reader) *input {
	in := &input{r: io.LimitReader(r, int64(maxInput)+1), keep: true}
	in.br = bufio.NewReader(in)
	return in
}

func (in *input) Read(p []byte) (int, error) {
	n, err := in.r.Read(p)
	in.n += int64(n)
	if in.keep {
		in.kept = append(in.kept, p[:n]...)
	}
	if err != nil && err != io.EOF && in.err == nil {
		in.err = err
	}
	return n, err
}

// tooLarge reports whether the input read so far is larger than maxInput.
func (in *input) tooLarge() bool { return in.n > int64(maxInput) }

// fail returns the error Filter reports for err: a read error, ErrTooLarge
// when the whole input (read to its end, in constant memory) is larger
// than maxInput, else err. A record is too large before it is malformed,
// as when Filter read it whole first.
func (in *input) fail(err error) error {
	in.keep, in.kept = false, nil
	if in.err == nil {
		_, _ = io.Copy(io.Discard, in)
	}
	switch {
	case in.err != nil:
		return fmt.Errorf("reading FHIR record: %w", in.err)
	case in.tooLarge():
		return ErrTooLarge
	}
	return err
}

// start skips what trim drops before a record (white space, a byte order
// mark, white space) and checks that a JSON object follows. It returns
// the offset of the object in the input.
func (in *input) start() (int64, error) {
	if err := in.skipSpace(); err != nil {
		return 0, err
	}
	if b, err := in.br.Peek(3); err == nil && string(b) == "\xef\xbb\xbf" {
		in.br.Discard(3)
		if err := in.skipSpace(); err != nil {
			return 0, err
		}
	}
	b, err := in.br.Peek(1)
	if err == io.EOF {
		return 0, fmt.Errorf("%w: empty input", ErrNotFHIR)
	}
	if err != nil {
		return 0, err
	}
	if b[0] != '{' {
		return 0, fmt.Errorf("%w: not a JSON object", ErrNotFHIR)
	}
	return in.n - int64(in.br.Buffered()), nil
}

// skipSpace skips the white space bytes.TrimSpace trims.
func (in *input) skipSpace() error {
	for {
		r, _, err := in.br.ReadRune()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if !unicode.IsSpace(r) {
			return in.br.UnreadRune()
		}
	}
}

// end checks that only white space (as bytes.TrimSpace trims it) follows
// the record, reading the input to its end.
func (in *input) end(dec *json.Decoder) error {
	rest := bufio.NewReader(io.MultiReader(dec.Buffered(), in.br))
	for {
		r, _, err := rest.ReadRune()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if !unicode.IsSpace(r) {
			return fmt.Errorf("%w: invalid JSON after the top-level object", ErrNotFHIR)
		}
	}
}

// rest reads the input to its end and returns all of it: the whole record,
// kept since the start.
func (in *input) rest() ([]byte, error) {
	if _, err := io.Copy(io.Discard, in); err != nil {
		return nil, err
	}
	if in.tooLarge() {
		return nil, ErrTooLarge
	}
	return in.kept, nil
}

// jsonError turns an error of the JSON decoder at offset into an
// ErrNotFHIR error (or returns an error that is already one).
func jsonError(err error, offset int64) error {
	var se *json.SyntaxError
	switch {
	case errors.Is(err, ErrNotFHIR):
		return err
	case errors.As(err, &se):
		return fmt.Errorf("%w: invalid JSON near byte %d", ErrNotFHIR, offset+se.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fmt.Errorf("%w: invalid JSON: unexpected end of input", ErrNotFHIR)
	case errors.Is(err, errDupKey), errors.Is(err, errMalformed), errors.Is(err, errTooDeepJSON):
		return fmt.Errorf("%w: %v", ErrNotFHIR, err)
	}
	return err
}

// trimValue drops the white space and colon the decoder leaves before a
// member's value.
func trimValue(b []byte) []byte { return bytes.TrimLeft(b, " \t\r\n:") }
