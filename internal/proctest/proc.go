package proctest

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Proc is one running (or finished) process of a binary under test.
type Proc struct {
	Name           string // what the test calls it, in messages
	Bin            string
	Args           []string
	Cmd            *exec.Cmd
	Stdout, Stderr Buffer
	Started        time.Time // when it was started
	done           chan struct{}

	// Set before Done is closed.
	Code    int
	Elapsed time.Duration
	WaitErr error
}

// Limits bound a process: it runs at most Bound, and is killed Grace after
// the SIGTERM that ends it (at Bound, or at the end of the test).
type Limits struct {
	Bound time.Duration
	Grace time.Duration
}

// Start runs bin with args, its stdout and stderr captured. At the end of
// the test, or after l.Bound, it is asked to stop with SIGTERM (so that it
// cleans up as it would for an operator: its consumers, its script's
// process group) and killed l.Grace later; when the test failed, what it
// printed is logged.
func Start(t testing.TB, l Limits, bin, name string, args ...string) *Proc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), l.Bound)
	p := &Proc{Name: name, Bin: bin, Args: args, done: make(chan struct{})}
	p.Cmd = exec.CommandContext(ctx, bin, args...)
	p.Cmd.Stdout, p.Cmd.Stderr = &p.Stdout, &p.Stderr
	p.Cmd.Cancel = func() error { return p.Cmd.Process.Signal(syscall.SIGTERM) }
	p.Cmd.WaitDelay = l.Grace
	p.Started = time.Now()
	if err := p.Cmd.Start(); err != nil {
		cancel()
		t.Fatalf("%s: cannot start %s %s: %v", name, filepath.Base(bin), QuoteArgs(args), err)
	}
	go func() {
		p.WaitErr = p.Cmd.Wait()
		p.Elapsed = time.Since(p.Started)
		p.Code = p.Cmd.ProcessState.ExitCode()
		cancel()
		close(p.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-p.done
		if t.Failed() {
			t.Log(p.Describe())
		}
	})
	return p
}

// Done is closed once the process has exited and Code, Elapsed and
// WaitErr are set.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits for the process to exit and returns its exit code; it fails
// the test when within runs out first.
func (p *Proc) Wait(t testing.TB, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.Code
	case <-time.After(within):
		t.Fatalf("%s: still running after %v\n%s", p.Name, within, p.Describe())
		return -1
	}
}

// WaitFor waits until stderr holds want; it fails the test when the
// process exits first or within runs out.
func (p *Proc) WaitFor(t testing.TB, want string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if strings.Contains(p.Stderr.String(), want) {
			return
		}
		if p.Exited() {
			if strings.Contains(p.Stderr.String(), want) {
				return
			}
			t.Fatalf("%s: exited before its stderr showed %q\n%s", p.Name, want, p.Describe())
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: stderr did not show %q within %v\n%s", p.Name, want, within, p.Describe())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Describe is the process's command line, its state and what it printed.
func (p *Proc) Describe() string {
	state := "still running"
	if p.Exited() {
		state = fmt.Sprintf("exit code %d after %v (wait: %v)", p.Code, p.Elapsed.Round(time.Millisecond), p.WaitErr)
	}
	return fmt.Sprintf("=== %s: %s %s\n    %s\n--- stdout ---\n%s--- stderr ---\n%s--- end %s ---",
		p.Name, filepath.Base(p.Bin), QuoteArgs(p.Args), state, p.Stdout.String(), p.Stderr.String(), p.Name)
}

// QuoteArgs writes args as a shell would need them.
func QuoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"$`\\") {
			a = strconv.Quote(a)
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}
