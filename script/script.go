// Package script runs the command a receiver was given for each message.
//
// The command is started directly (no shell), as `cmd args… VERB PAYLOAD`,
// with the inherited environment (less any REMAPHORE_*/REMOPHORE_* ones)
// plus the message's REMAPHORE_* variables, so a
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
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/remaphore/remaphore/internal/fileperm"
)

// DefaultOutputCap is the most output captured for a reply.
const DefaultOutputCap = 64 << 10

// TruncationMarker ends captured output that hit the cap.
const TruncationMarker = "\n[remaphore: output truncated at %d bytes]\n"

// Command is a script and its fixed arguments, as given on the command line.
type Command struct {
	Argv []string
	// Path, when set, is the file Run executes for Argv[0] (Argv[0] stays
	// the script's own argv[0]): the one Resolved found and checked, not
	// whatever a PATH lookup finds when the message comes.
	Path string
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

// Lookup is Check (kept for callers that only want to know whether the
// command can start).
func (c Command) Lookup() error { return c.Check() }

// Error is a command that cannot be run, with the hint that fixes it.
type Error struct {
	Err  error
	Hint string
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Hint returns what fixes err, when err is a *Error.
func Hint(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Hint
	}
	return ""
}

// Check makes sure the command can be executed, so that a mistake is a
// usage error at start rather than a failure when the message it waited
// for arrives (and is used up): the file exists, is a regular file with
// an execute bit this user may use, and is either a binary (ELF) or starts
// with a #! line whose interpreter exists (for "#!/usr/bin/env NAME", NAME
// must be on PATH). exec refuses anything else with "exec format error".
// The script and its interpreter (and env's NAME) must also be safe from
// other users, as config files are: see checkOwner.
func (c Command) Check() error {
	_, err := c.Resolved()
	return err
}

// Resolved is Check, and returns c with Path set to the file it checked
// (Argv[0] looked up on PATH when it holds no slash), so that Run runs
// that file: a file put earlier on PATH after the check is never run.
func (c Command) Resolved() (Command, error) {
	if len(c.Argv) == 0 {
		return c, nil
	}
	name := c.Argv[0]
	path := name
	if !strings.Contains(name, "/") {
		p, err := exec.LookPath(name)
		if err != nil {
			return c, &Error{fmt.Errorf("script %q: not found in PATH", name), "give the path of an executable file, or put it on PATH"}
		}
		path = p
	}
	c.Path = path
	return c, checkFile(path)
}

// checkFile checks the file a command names, found on PATH or not.
func checkFile(path string) error {
	if err := checkExecutable("script", path); err != nil {
		return err
	}
	if err := checkOwner("script "+path, path); err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil // execute-only: the kernel may run what we cannot read
	}
	defer f.Close()
	head := make([]byte, 512)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte("\x7fELF")):
		return nil
	case bytes.HasPrefix(head, []byte("#!")):
		return checkInterpreter(path, head[2:])
	}
	return &Error{fmt.Errorf("script %s has no #! line and is not a binary executable: it cannot be run (exec format error)", path),
		"add a first line naming its interpreter, like #!/bin/sh"}
}

// checkExecutable checks that path is a regular file this user may execute.
func checkExecutable(what, path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &Error{fmt.Errorf("%s %s does not exist", what, path), "give the path of an executable file, or put it on PATH"}
	case err != nil:
		return &Error{fmt.Errorf("%s %s: %w", what, path, err), ""}
	case fi.IsDir():
		return &Error{fmt.Errorf("%s %s is a directory", what, path), "give the path of an executable file"}
	case !fi.Mode().IsRegular():
		return &Error{fmt.Errorf("%s %s is not a regular file (%s)", what, path, fi.Mode().Type()), "give the path of an executable file"}
	case fi.Mode().Perm()&0o111 == 0:
		return &Error{fmt.Errorf("%s %s is not executable (mode %04o)", what, path, fi.Mode().Perm()), "chmod +x " + path}
	}
	if err := syscall.Access(path, 1 /* X_OK */); err != nil {
		return &Error{fmt.Errorf("%s %s cannot be executed by this user (mode %04o): %w", what, path, fi.Mode().Perm(), err),
			"check the file's owner and mode, and that its file system is not mounted noexec"}
	}
	return nil
}

// checkOwner refuses a file that runs as this user but that someone else
// may change: writable by its group or by others, or owned by a user
// other than root and this one. Any such user could put code there that
// the next message runs as the receiver's user. The rule, message and fix
// are the config files' (internal/fileperm). what names the file.
func checkOwner(what, path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return &Error{fmt.Errorf("%s: %w", what, err), ""}
	}
	if msg, fix, ok := fileperm.Unsafe(path, fi, false, ""); !ok {
		return &Error{fmt.Errorf("%s %s: others could change what runs as this user", what, msg), fix}
	}
	return nil
}

// checkInterpreter checks the #! line (without "#!") of script.
func checkInterpreter(script string, line []byte) error {
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	if bytes.HasSuffix(line, []byte("\r")) {
		return &Error{fmt.Errorf("script %s: its #! line ends with a carriage return (Windows line endings), so the interpreter is not found", script),
			"convert the file: sed -i 's/\\r$//' " + script}
	}
	fields := strings.Fields(string(line))
	if len(fields) == 0 {
		return &Error{fmt.Errorf("script %s: its #! line names no interpreter", script), "write the interpreter's path after #!, like #!/bin/sh"}
	}
	interp := fields[0]
	if _, err := os.Stat(interp); errors.Is(err, fs.ErrNotExist) {
		return &Error{fmt.Errorf("script %s: its interpreter %s (the #! line) does not exist", script, interp),
			"install " + interp + ", or change the first line of " + script + " to an interpreter that exists"}
	}
	if err := checkExecutable("interpreter", interp); err != nil {
		var e *Error
		errors.As(err, &e)
		return &Error{fmt.Errorf("script %s: %w", script, err), e.Hint}
	}
	if err := checkOwner("script "+script+": its interpreter "+interp, interp); err != nil {
		return err
	}
	// "#!/usr/bin/env NAME" finds NAME on PATH when the script runs.
	if filepath.Base(interp) == "env" && len(fields) > 1 && !strings.HasPrefix(fields[1], "-") && !strings.Contains(fields[1], "=") {
		found, err := exec.LookPath(fields[1])
		if err != nil {
			return &Error{fmt.Errorf("script %s: its interpreter %s (#!%s) is not on PATH", script, fields[1], strings.TrimSpace(string(line))),
				"install " + fields[1] + ", or put it on PATH"}
		}
		if err := checkOwner("script "+script+": its interpreter "+found, found); err != nil {
			return err
		}
	}
	return nil
}

// Run runs the command for one message. The error is non-nil only when the
// command could not be started or ctx ended it; a non-zero exit is reported
// in Result.ExitCode.
func (c Command) Run(ctx context.Context, call Call) (Result, error) {
	argv := append(append([]string{}, c.Argv[1:]...), call.Verb, string(call.Payload))
	cmd := exec.CommandContext(ctx, c.Argv[0], argv...)
	if c.Path != "" {
		cmd.Path, cmd.Err = c.Path, nil
	}
	cmd.Env = append(inherited(os.Environ()), call.Env...)
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

// envPrefixes are the variables remaphore sets for a script (the second is
// the original specification's spelling of DESTMATCH).
var envPrefixes = []string{"REMAPHORE_", "REMOPHORE_"}

// inherited is env without any variable remaphore sets: one left over from
// remaphore's own environment (REMAPHORE_DESTMATCH=stale remaphore -d …,
// or a remaphore run from a script run by remaphore) would reach the
// script as if it described the message, where the README says a variable
// is not set (DESTMATCH with -d, COUNT without -n).
func inherited(env []string) []string {
	out := make([]string, 0, len(env))
next:
	for _, kv := range env {
		for _, p := range envPrefixes {
			if strings.HasPrefix(kv, p) {
				continue next
			}
		}
		out = append(out, kv)
	}
	return out
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
