package config

import (
	"errors"
	"strconv"
)

// Sentinels, matched with errors.Is.
var (
	// ErrInvalid: the file does not parse or does not validate. Every
	// *Error from Parse matches it.
	ErrInvalid = errors.New("invalid configuration")
	// ErrNotFound: Load found no file at the path, or CheckFiles found
	// none where the config names one (credentials, tls_*).
	ErrNotFound = errors.New("configuration file not found")
	// ErrPermissions: Load or CheckFiles refused a file others can change
	// (writable by group or others, owned by another non-root user), or one
	// holding a secret that is open to users outside its owner and group.
	ErrPermissions = errors.New("configuration file permissions too open")
)

// errRead is the kind of an *Error for a file that exists but cannot be
// read; it matches none of the exported sentinels.
var errRead = errors.New("cannot read configuration file")

// Error is a problem with a configuration file, tied to a line when it has
// one. Error() is "FILE:LINE: MSG", with ":LINE" left out when Line is 0.
// Hint says what to write instead; the CLI prints it on a line of its own
// as "hint: ...".
//
// An *Error never holds a private key: problems on an identity line name
// the line and at most the public key.
type Error struct {
	File string
	Line int
	Msg  string
	Hint string

	kind error // sentinel reported by Is; nil means ErrInvalid
	err  error // cause, for Unwrap (a sign or policy error, an fs error)
}

func (e *Error) Error() string {
	switch {
	case e.File != "" && e.Line > 0:
		return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Msg
	case e.File != "":
		return e.File + ": " + e.Msg
	case e.Line > 0:
		return "line " + strconv.Itoa(e.Line) + ": " + e.Msg
	}
	return e.Msg
}

// Is reports whether target is the sentinel for this error: ErrInvalid for
// a problem in the file's contents, ErrNotFound or ErrPermissions for Load's
// refusals.
func (e *Error) Is(target error) bool {
	k := e.kind
	if k == nil {
		k = ErrInvalid
	}
	return target == k
}

// Unwrap returns the underlying error, if any (for example sign.ErrBadKey,
// sign.ErrKeyMismatch, policy.ErrBadName or fs.ErrNotExist).
func (e *Error) Unwrap() error { return e.err }
