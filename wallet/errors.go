package wallet

// The typed errors of the package.

import "errors"

// Sentinel errors that the CLI maps to exit codes (see docs/cli.md).
var (
	// ErrNotFound: a wallet, contact, record, grant or key that does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: something that would be overwritten.
	ErrExists = errors.New("already exists")
	// ErrDenied: a consent decision that refused access.
	ErrDenied = errors.New("denied")
	// ErrInvalid: input that is malformed or fails a check.
	ErrInvalid = errors.New("invalid input")
	// ErrVerify: data that fails verification (signatures, chains, audit).
	ErrVerify = errors.New("verification failed")
)

// HintError carries a suggestion the CLI prints on its own line after the error.
type HintError struct {
	Err  error
	Hint string
}

func (e *HintError) Error() string { return e.Err.Error() }
func (e *HintError) Unwrap() error { return e.Err }

// WithHint attaches a hint to err.
func WithHint(err error, hint string) error {
	if err == nil {
		return nil
	}
	return &HintError{Err: err, Hint: hint}
}
