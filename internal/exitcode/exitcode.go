// Package exitcode is the one exit path the remaphore and remaphore-audit
// commands share: an error that carries its exit code and a hint, the
// mapping of configuration errors to the usage code, and the printing of
// "PROG: error: …" and "PROG: hint: …" on stderr.
package exitcode

import (
	"errors"
	"fmt"
	"io"

	"github.com/remaphore/remaphore/config"
	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/transport"
)

// Usage is the exit code of a usage or configuration error, the same for
// both commands.
const Usage = 2

// Error carries an exit code and an optional hint (what to do about it).
type Error struct {
	Code int
	Err  error
	Hint string
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// UsageError is a usage error with a hint.
func UsageError(hint, format string, args ...any) error {
	return &Error{Code: Usage, Err: fmt.Errorf(format, args...), Hint: hint}
}

// Known returns the code and hint of an *Error, or of a configuration
// error (config file, destination pattern or name, verb, identity, NATS
// credentials file), which is a usage error; ok is false for anything else.
func Known(err error) (code int, hint string, ok bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.Code, e.Hint, true
	}
	var ce *config.Error
	if errors.As(err, &ce) {
		return Usage, ce.Hint, true
	}
	// An existing stream that does not fit the config is the operator's
	// to fix, like a config error; the hint is the command that fixes it.
	var se *transport.StreamError
	if errors.As(err, &se) {
		return Usage, se.Fix, true
	}
	switch {
	case errors.Is(err, config.ErrInvalid), errors.Is(err, config.ErrNotFound), errors.Is(err, config.ErrPermissions),
		errors.Is(err, policy.ErrBadPattern), errors.Is(err, policy.ErrBadName), errors.Is(err, policy.ErrBadVerb),
		errors.Is(err, policy.ErrNoIdentity):
		return Usage, "", true
	case errors.Is(err, transport.ErrCredentials):
		return Usage, "credentials: in the config must name a NATS .creds file or an nkey seed file", true
	}
	return 0, "", false
}

// Print writes err and hint as prog's error lines and returns code.
func Print(w io.Writer, prog string, err error, code int, hint string) int {
	fmt.Fprintf(w, "%s: error: %v\n", prog, err)
	if hint != "" {
		fmt.Fprintf(w, "%s: hint: %s\n", prog, hint)
	}
	return code
}
