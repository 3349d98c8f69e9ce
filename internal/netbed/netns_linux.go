//go:build linux

package netbed

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// Do runs f on a thread inside h's namespace. Sockets f creates stay in
// that namespace after Do returns, so a test can listen and dial as the
// host does, from its own process. f must not start goroutines that
// create sockets: they would run in the test's own namespace.
func (h *Host) Do(f func() error) error {
	return inNS(h.NS, f)
}

func inNS(ns string, f func() error) error {
	target, err := os.Open("/run/netns/" + ns)
	if err != nil {
		return fmt.Errorf("netbed: %w", err)
	}
	defer target.Close()
	runtime.LockOSThread()
	self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netbed: %w", err)
	}
	defer self.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netbed: entering %s: %w", ns, err)
	}
	ferr := f()
	if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
		// Leave the thread locked: the runtime ends it with the goroutine
		// rather than reuse it in the wrong namespace.
		return fmt.Errorf("netbed: leaving %s: %w", ns, err)
	}
	runtime.UnlockOSThread()
	return ferr
}
