// Package script runs the command a receiver was given for each message.
//
// The command is started directly (no shell), as `cmd args… VERB PAYLOAD`,
// with the inherited environment plus the REMAPHORE_* variables, so a
// payload such as `$(rm -rf /)` is one argument and never code. Without a
// reply request the command's output goes straight to remaphore's own
// stdout and stderr; for a request it is captured, up to a cap, to be sent
// back. Either way the command is bounded by the caller's context.
package script

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// DefaultOutputCap is the most output captured for a reply.
const DefaultOutputCap = 64 << 10

// TruncationMarker ends captured output that hit the cap.
const TruncationMarker = "\n[remaphore: output truncated at %d bytes]\n"

// Command is a script and its fixed arguments, as given on the command line.
type Command struct {
	Argv []string
	// Stdout and Stderr receive the output when not capturing.
	Stdout, Stderr io.Writer
	// Cap bounds captured output (DefaultOutputCap when 0).
	Cap int
}

// Call is one invocation.
type Call struct {
	Verb    string
	Payload []byte
	Env     []string // extra KEY=value pairs
	Capture bool     // capture stdout+stderr instead of passing it through
}

// Result is what a script did.
type Result struct {
	ExitCode  int // -1 when it could not start or was killed by a signal
	Output    []byte
	Truncated bool
}

// Lookup checks that the command exists and can be run, so a typo is a
// usage error at start, not a failure when the message arrives.
func (c Command) Lookup() error {
	if len(c.Argv) == 0 {
		return nil
	}
	if _, err := exec.LookPath(c.Argv[0]); err != nil {
		return fmt.Errorf("script %q: %w", c.Argv[0], err)
	}
	return nil
}

// Run runs the command for one message. The error is non-nil only when the
// command could not be started or ctx ended it; a non-zero exit is reported
// in Result.ExitCode.
func (c Command) Run(ctx context.Context, call Call) (Result, error) {
	argv := append(append([]string{}, c.Argv[1:]...), call.Verb, string(call.Payload))
	cmd := exec.CommandContext(ctx, c.Argv[0], argv...)
	cmd.Env = append(os.Environ(), call.Env...)
	cmd.Stdin = nil
	// Run the script in its own process group and kill the whole group on
	// cancel, so children it started do not outlive the deadline.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	var buf *capped
	if call.Capture {
		limit := c.Cap
		if limit <= 0 {
			limit = DefaultOutputCap
		}
		buf = &capped{limit: limit}
		cmd.Stdout, cmd.Stderr = buf, buf
	} else {
		cmd.Stdout, cmd.Stderr = orDiscard(c.Stdout), orDiscard(c.Stderr)
	}
	err := cmd.Run()
	res := Result{ExitCode: cmd.ProcessState.ExitCode()} // -1 when it never ran
	if buf != nil {
		res.Output, res.Truncated = buf.bytes()
	}
	if ctx.Err() != nil {
		return res, fmt.Errorf("script %s stopped: %w", c.Argv[0], ctx.Err())
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return res, fmt.Errorf("script %s: %w", c.Argv[0], err)
	}
	return res, nil
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// capped keeps the first limit bytes written and counts the rest.
type capped struct {
	mu      sync.Mutex
	limit   int
	buf     bytes.Buffer
	dropped bool
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.limit - c.buf.Len(); room < len(p) {
		c.buf.Write(p[:max(room, 0)])
		c.dropped = true
		return len(p), nil
	}
	c.buf.Write(p)
	return len(p), nil
}

func (c *capped) bytes() ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := bytes.Clone(c.buf.Bytes())
	if c.dropped {
		out = append(out, fmt.Sprintf(TruncationMarker, c.limit)...)
	}
	return out, c.dropped
}
