package recordview

import "io"

func summarizeCCDA(r io.Reader) (*Summary, error)  { return nil, ErrUnsupported }
func summarizeDICOM(r io.Reader) (*Summary, error) { return nil, ErrUnsupported }
func summarizePDF(r io.Reader) (*Summary, error)   { return nil, ErrUnsupported }
