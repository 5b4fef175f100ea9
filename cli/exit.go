package cli

import (
	"errors"
	"fmt"
	"io"

	"github.com/remaphore/remaphore/config"
	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/transport"
)

// Exit codes; see the package doc.
const (
	ExitOK      = 0
	ExitTimeout = 1
	ExitUsage   = 2
	ExitNATS    = 3
	ExitScript  = 4
)

// exitError carries an exit code and an optional hint to Main's one exit path.
type exitError struct {
	code int
	err  error
	hint string
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(hint, format string, args ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, args...), hint: hint}
}

func natsErr(err error) error { return &exitError{code: ExitNATS, err: err} }

// codeOf maps an error to its exit code and hint.
func codeOf(err error) (int, string) {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code, ee.hint
	}
	var ce *config.Error
	if errors.As(err, &ce) {
		return ExitUsage, ce.Hint
	}
	switch {
	case errors.Is(err, config.ErrInvalid), errors.Is(err, config.ErrNotFound), errors.Is(err, config.ErrPermissions),
		errors.Is(err, policy.ErrBadPattern), errors.Is(err, policy.ErrBadName), errors.Is(err, policy.ErrBadVerb),
		errors.Is(err, policy.ErrNoIdentity), errors.Is(err, transport.ErrCredentials):
		return ExitUsage, ""
	case errors.Is(err, transport.ErrConnect), errors.Is(err, transport.ErrJetStream), errors.Is(err, transport.ErrStreamMismatch):
		return ExitNATS, ""
	}
	return ExitNATS, ""
}

func printError(w io.Writer, err error) int {
	code, hint := codeOf(err)
	fmt.Fprintf(w, "remaphore: error: %v\n", err)
	if hint != "" {
		fmt.Fprintf(w, "remaphore: hint: %s\n", hint)
	}
	return code
}
