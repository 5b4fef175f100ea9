package audit

import "errors"

// Errors returned by this package, wrapped with detail; match them with
// errors.Is.
var (
	// ErrNotFound: no database file at the path (read-only opens never
	// create one).
	ErrNotFound = errors.New("no audit database")
	// ErrBusy: the database file's lock could not be taken in time: the
	// auditor is writing a long backlog, or a long read holds it.
	ErrBusy = errors.New("audit database busy")
	// ErrLocked: another remaphore-audit run is ingesting into the same
	// file.
	ErrLocked = errors.New("audit database locked by another auditor")
	// ErrLockFile: the lock file next to the database is not a plain file
	// the auditor may use (a symbolic link).
	ErrLockFile = errors.New("unsafe lock file")
	// ErrNotAudit: the file is not a remaphore-audit database (another
	// bbolt file, another format version, or not bbolt at all).
	ErrNotAudit = errors.New("not a remaphore-audit database")
	// ErrNewerFormat: a remaphore-audit database of a format this version
	// does not know: a later remaphore-audit wrote it.
	ErrNewerFormat = errors.New("audit database of a later format")
	// ErrCorrupt: a stored record or meta value that does not parse.
	ErrCorrupt = errors.New("corrupt audit record")
	// ErrReadOnly: a write on a store opened read-only.
	ErrReadOnly = errors.New("audit database opened read-only")
	// ErrStreamChanged: the database was filled from another stream than
	// the one the server now has under the name (deleted and created
	// again): its sequences mean other messages.
	ErrStreamChanged = errors.New("the stream is not the one the audit database was filled from")
	// ErrBadQuery: a query that cannot be run (a bad filter value).
	ErrBadQuery = errors.New("bad query")
)
