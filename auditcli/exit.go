package auditcli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/remaphore/remaphore/audit"
	"github.com/remaphore/remaphore/config"
	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/transport"
)

// Exit codes; see the package doc.
const (
	ExitOK      = 0
	ExitFailed  = 1 // verify found a problem; tail without -f found nothing
	ExitUsage   = 2
	ExitBackend = 3 // NATS, JetStream, or the database file
)

// exitError carries an exit code and an optional hint to the one exit path.
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
		errors.Is(err, audit.ErrBadQuery):
		return ExitUsage, ""
	case errors.Is(err, transport.ErrCredentials):
		return ExitUsage, "credentials: in the config must name a NATS .creds file or an nkey seed file"
	case errors.Is(err, audit.ErrNotFound):
		return ExitBackend, "start remaphore-audit run first, or point -db (or audit_db) at the auditor's file"
	case errors.Is(err, audit.ErrBusy):
		return ExitBackend, "the auditor is writing a long backlog, or another command holds the file: try again, or wait longer with -wait 1m"
	case errors.Is(err, audit.ErrLocked):
		return ExitBackend, "run one auditor per database file; give another one its own -db file (and -name for its own consumer)"
	case errors.Is(err, audit.ErrStreamChanged):
		return ExitBackend, "keep this file as the record of the old stream, and start the auditor on a new one (-db or audit_db)"
	case errors.Is(err, fs.ErrNotExist):
		return ExitBackend, "create the database's directory (StateDirectory= in a systemd unit), or change audit_db in the config or -db"
	case errors.Is(err, fs.ErrPermission):
		return ExitBackend, "the database file and its directory must be writable by the user running remaphore-audit run (readable for the other commands)"
	case errors.Is(err, audit.ErrNotAudit), errors.Is(err, audit.ErrCorrupt):
		return ExitBackend, "check -db (or audit_db in the config): it must name a file written by remaphore-audit run"
	}
	return ExitBackend, ""
}

func printError(w io.Writer, err error) int {
	code, hint := codeOf(err)
	fmt.Fprintf(w, "remaphore-audit: error: %v\n", err)
	if hint != "" {
		fmt.Fprintf(w, "remaphore-audit: hint: %s\n", hint)
	}
	return code
}
