package recordview

import "io"

func summarizeDICOM(r io.Reader) (*Summary, error) { return nil, ErrUnsupported }
func summarizePDF(r io.Reader) (*Summary, error)   { return nil, ErrUnsupported }
