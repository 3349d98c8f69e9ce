//go:build linux

package netbed

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// stopGrace is how long Stop waits after SIGINT before it kills.
const stopGrace = 10 * time.Second

// Command returns a command that runs name in h's namespace (through ip
// netns exec, which execs it: the process is name itself). It dies with
// the test process, and Wait gives up on its pipes 5 s after it exits.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// Proc is a long-running process in a host's namespace, its output
// appended to a log file.
type Proc struct {
	Name string
	Log  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Start starts name with args in h's namespace, with env as its whole
// environment and its stdout and stderr appended to logPath. It is
// stopped at the end of tb, also when tb fails.
func (h *Host) Start(tb testing.TB, env []string, logPath, name string, args ...string) *Proc {
	tb.Helper()
	logw, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		tb.Fatal(err)
	}
	cmd := h.Command(context.Background(), name, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logw, logw
	if err := cmd.Start(); err != nil {
		logw.Close()
		tb.Fatalf("netbed: starting %s on %s: %v", name, h.Name, err)
	}
	p := &Proc{Name: h.Name, Log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logw.Close()
		close(p.done)
	}()
	tb.Cleanup(p.Stop)
	return p
}

// Done is closed once the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Running says whether the process has not exited yet.
func (p *Proc) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Stop interrupts the process (SIGINT) and kills it if it has not exited
// within 10 s. Stopping a stopped process does nothing.
func (p *Proc) Stop() {
	p.mu.Lock()
	cmd := p.cmd
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(stopGrace):
		_ = cmd.Process.Kill()
		<-p.done
	}
}

// Tail returns the last n lines of the process's log.
func (p *Proc) Tail(n int) string {
	b, _ := os.ReadFile(p.Log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Guard deletes this process's namespaces, killing what runs in them,
// when the test binary is interrupted (SIGINT, SIGTERM) or 10 s before
// its -test.timeout would end it: in both cases no Cleanup runs. Call it
// from TestMain after flag.Parse and call stop once the tests are done.
func Guard() (stop func()) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	var timeout <-chan time.Time
	var timer *time.Timer
	if f := flag.Lookup("test.timeout"); f != nil {
		if g, ok := f.Value.(flag.Getter); ok {
			if d, ok := g.Get().(time.Duration); ok && d > 20*time.Second {
				timer = time.NewTimer(d - 10*time.Second)
				timeout = timer.C
			}
		}
	}
	quit := make(chan struct{})
	var once sync.Once
	go func() {
		select {
		case s := <-sigs:
			fmt.Fprintf(os.Stderr, "netbed: %v: deleting this run's namespaces\n", s)
			if err := SweepOwn(); err != nil {
				fmt.Fprintln(os.Stderr, "netbed:", err)
			}
			os.Exit(2)
		case <-timeout:
			fmt.Fprintln(os.Stderr, "netbed: the test timeout is near: deleting this run's namespaces")
			if err := SweepOwn(); err != nil {
				fmt.Fprintln(os.Stderr, "netbed:", err)
			}
		case <-quit:
		}
	}()
	return func() {
		once.Do(func() {
			signal.Stop(sigs)
			if timer != nil {
				timer.Stop()
			}
			close(quit)
		})
	}
}
