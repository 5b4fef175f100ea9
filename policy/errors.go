package policy

import "errors"

// Errors returned by this package, wrapped with detail; match with errors.Is.
var (
	ErrBadPattern = errors.New("invalid destination pattern")
	ErrBadName    = errors.New("invalid destination")
	ErrBadVerb    = errors.New("invalid verb")
	// ErrNoIdentity: no configured identity may send the verb.
	ErrNoIdentity = errors.New("no identity for verb")
)
