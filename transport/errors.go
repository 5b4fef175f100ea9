package transport

import "errors"

// Errors returned by this package, wrapped with detail; match with errors.Is.
var (
	// ErrConnect: no configured server could be reached or authenticated.
	ErrConnect = errors.New("cannot connect to NATS")
	// ErrJetStream: a JetStream call failed (no JetStream, limits, timeouts).
	ErrJetStream = errors.New("jetstream error")
	// ErrStreamMismatch: a stream exists under the name but does not capture
	// the root's subjects.
	ErrStreamMismatch = errors.New("stream does not match")
	// ErrCredentials: the credentials file cannot be used.
	ErrCredentials = errors.New("bad credentials file")
)
