package wire

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// Errors of a Transfer. Both mean the stream must be reset.
var (
	// ErrTooSlow reports a remote that sent or took bytes slower than the
	// budget's minimum rate.
	ErrTooSlow = errors.New("transfer too slow")
	// ErrDeadline reports a transfer that ran past its overall deadline.
	ErrDeadline = errors.New("transfer deadline passed")
)

// Budget bounds the time one transfer over a stream may take: an overall
// deadline, and a minimum rate so that a remote sending (or reading) a
// byte every few seconds cannot hold the stream until the deadline.
//
// The rate is enforced as a leaky bucket of waiting time: a transfer
// starts with Grace; every second spent blocked in a read or write of the
// stream spends a second; every byte moved earns 1/MinRate second, up to
// Window. When the credit runs out the stream's deadline fires. Only time
// blocked on the remote counts, so a local consumer or producer that is
// slow (a disk, a decoder reading several shares in step) never makes the
// remote look slow.
type Budget struct {
	// Total is the overall deadline, from the start of the transfer or
	// from the last Start; zero means none.
	Total time.Duration
	// Grace is the waiting time allowed before the first bytes.
	Grace time.Duration
	// MinRate is the minimum average rate in bytes per second; zero
	// disables the rate check (only Total applies).
	MinRate int64
	// Window caps the credit: the longest a transfer that was fast so far
	// may then stall. At least Grace.
	Window time.Duration
}

// Stream is what a Transfer reads and writes: network.Stream is one (and
// so is a net.Conn).
type Stream interface {
	io.Reader
	io.Writer
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// writeChunk bounds one write to the stream, so that a write's deadline
// is about the credit its bytes can earn.
const writeChunk = 16 << 10

// A Transfer reads and writes a stream within a Budget. Read and Write
// may run in two goroutines; Start must not run concurrently with either.
type Transfer struct {
	s   Stream
	b   Budget
	end time.Time
	rd  credit
	wr  credit
	now func() time.Time
}

type credit struct {
	left  time.Duration
	moved int64
}

// NewTransfer starts a transfer on s within b.
func NewTransfer(s Stream, b Budget) *Transfer {
	t := &Transfer{s: s, now: time.Now}
	t.Start(b)
	return t
}

// Start begins a new phase of the transfer under b (a request read within
// a short budget, then the share bytes within a longer one): the overall
// deadline and both credits restart.
func (t *Transfer) Start(b Budget) {
	if b.Window < b.Grace {
		b.Window = b.Grace
	}
	t.b = b
	t.end = time.Time{}
	if b.Total > 0 {
		t.end = t.now().Add(b.Total)
	}
	t.rd = credit{left: b.Grace}
	t.wr = credit{left: b.Grace}
}

// Deadline is the overall deadline of the current phase (zero: none).
func (t *Transfer) Deadline() time.Time { return t.end }

// deadline is when an operation starting at now must end.
func (t *Transfer) deadline(c *credit, now time.Time) time.Time {
	var d time.Time
	if t.b.MinRate > 0 {
		d = now.Add(c.left)
	}
	if !t.end.IsZero() && (d.IsZero() || t.end.Before(d)) {
		d = t.end
	}
	return d
}

// account charges the wait and credits the bytes.
func (t *Transfer) account(c *credit, n int, waited time.Duration) {
	c.moved += int64(n)
	if t.b.MinRate <= 0 {
		return
	}
	c.left += time.Duration(int64(n)*int64(time.Second)/t.b.MinRate) - waited
	if c.left > t.b.Window {
		c.left = t.b.Window
	}
}

// check turns a stream's timeout into ErrDeadline or ErrTooSlow.
func (t *Transfer) check(c *credit, err error, now time.Time, what string) error {
	if err == nil || !isTimeout(err) {
		return err
	}
	if !t.end.IsZero() && !now.Before(t.end) {
		return fmt.Errorf("%w: %s %d bytes in %s", ErrDeadline, what, c.moved, t.b.Total)
	}
	return fmt.Errorf("%w: %s %d bytes, under %d bytes/s", ErrTooSlow, what, c.moved, t.b.MinRate)
}

func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Read reads from the stream within the budget.
func (t *Transfer) Read(p []byte) (int, error) {
	start := t.now()
	if err := t.expired(&t.rd, start, "read"); err != nil {
		return 0, err
	}
	_ = t.s.SetReadDeadline(t.deadline(&t.rd, start))
	n, err := t.s.Read(p)
	now := t.now()
	t.account(&t.rd, n, now.Sub(start))
	return n, t.check(&t.rd, err, now, "read")
}

// Write writes to the stream within the budget, in chunks so that each
// chunk's deadline matches the credit it can earn.
func (t *Transfer) Write(p []byte) (int, error) {
	total := 0
	for len(p) > 0 {
		c := p
		if len(c) > writeChunk {
			c = c[:writeChunk]
		}
		start := t.now()
		if err := t.expired(&t.wr, start, "wrote"); err != nil {
			return total, err
		}
		_ = t.s.SetWriteDeadline(t.deadline(&t.wr, start))
		n, err := t.s.Write(c)
		now := t.now()
		t.account(&t.wr, n, now.Sub(start))
		total += n
		if err != nil {
			return total, t.check(&t.wr, err, now, "wrote")
		}
		p = p[n:]
	}
	return total, nil
}

// expired fails an operation that has no time left before it starts.
func (t *Transfer) expired(c *credit, now time.Time, what string) error {
	if !t.end.IsZero() && !now.Before(t.end) {
		return fmt.Errorf("%w: %s %d bytes in %s", ErrDeadline, what, c.moved, t.b.Total)
	}
	if t.b.MinRate > 0 && c.left <= 0 {
		return fmt.Errorf("%w: %s %d bytes, under %d bytes/s", ErrTooSlow, what, c.moved, t.b.MinRate)
	}
	return nil
}
