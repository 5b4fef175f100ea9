package auditcli

import (
	"errors"
	"io"
	"io/fs"

	"github.com/remaphore/remaphore/audit"
	"github.com/remaphore/remaphore/audit/ingest"
	"github.com/remaphore/remaphore/internal/exitcode"
)

// Exit codes; see the package doc.
const (
	ExitOK      = 0
	ExitFailed  = 1 // verify found a problem; tail without -f found nothing
	ExitUsage   = 2
	ExitBackend = 3 // NATS, JetStream, or the database file
)

func usageErr(hint, format string, args ...any) error {
	return exitcode.UsageError(hint, format, args...)
}

// codeOf maps an error to its exit code and hint.
func codeOf(err error) (int, string) {
	if code, hint, ok := exitcode.Known(err); ok {
		return code, hint
	}
	switch {
	case errors.Is(err, audit.ErrBadQuery):
		return ExitUsage, ""
	case errors.Is(err, audit.ErrNotFound):
		return ExitBackend, "start remaphore-audit run first, or point -db (or audit_db) at the auditor's file"
	case errors.Is(err, audit.ErrBusy):
		return ExitBackend, "the auditor is writing a long backlog, or another command holds the file: try again, or wait longer with -wait 1m"
	case errors.Is(err, audit.ErrLocked):
		return ExitBackend, "run one auditor per database file; give another one its own -db file (it gets a consumer of its own)"
	case errors.Is(err, ingest.ErrConsumerTaken):
		return ExitUsage, ""
	case errors.Is(err, audit.ErrStreamChanged):
		return ExitBackend, "keep this file as the record of the old stream, and start the auditor on a new one (-db or audit_db)"
	case errors.Is(err, fs.ErrNotExist):
		return ExitBackend, "create the database's directory (StateDirectory= in a systemd unit), or change audit_db in the config or -db"
	case errors.Is(err, fs.ErrPermission):
		return ExitBackend, "the database file and its directory must be writable by the user running remaphore-audit run (readable for the other commands)"
	case errors.Is(err, audit.ErrNewerFormat):
		return ExitBackend, "a later remaphore-audit wrote this file: run that version (remaphore-audit -version says which this is)"
	case errors.Is(err, audit.ErrNotAudit), errors.Is(err, audit.ErrCorrupt):
		return ExitBackend, "check -db (or audit_db in the config): it must name a file written by remaphore-audit run"
	}
	return ExitBackend, ""
}

func printError(w io.Writer, err error) int {
	code, hint := codeOf(err)
	return exitcode.Print(w, "remaphore-audit", err, code, hint)
}
