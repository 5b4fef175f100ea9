package sign

import "errors"

// Errors returned by this package, wrapped with detail; match them with
// errors.Is.
var (
	// ErrBadKey: a key string that is not a valid key.
	ErrBadKey = errors.New("invalid key")
	// ErrKeyMismatch: a private key whose public half is not its own.
	ErrKeyMismatch = errors.New("private key does not match public key")
	// ErrTooLarge: a body or field over its limit.
	ErrTooLarge = errors.New("too large")
	// ErrMalformed: a body that is not a v1 envelope.
	ErrMalformed = errors.New("malformed envelope")
	// ErrBadSignature: a body whose signature does not verify.
	ErrBadSignature = errors.New("bad signature")
)
