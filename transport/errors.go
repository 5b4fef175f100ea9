package transport

import (
	"errors"
	"fmt"
)

// Errors returned by this package, wrapped with detail; match with errors.Is.
var (
	// ErrConnect: no configured server could be reached or authenticated.
	ErrConnect = errors.New("cannot connect to NATS")
	// ErrJetStream: a JetStream call failed (no JetStream, limits, timeouts).
	ErrJetStream = errors.New("jetstream error")
	// ErrStreamMismatch: a stream exists under the name but does not capture
	// the root's subjects.
	ErrStreamMismatch = errors.New("stream does not match")
	// ErrStreamWeak: an existing stream's settings let through what the
	// stream remaphore creates refuses (a short duplicate window, no
	// message size limit, a mirror of another stream). Errors matching it
	// are *StreamError values, with the command that fixes the stream.
	ErrStreamWeak = errors.New("stream settings too weak")
	// ErrStreamLimits: the server refused to create the stream with the
	// config's limits (max_bytes over its JetStream storage). A
	// *StreamError.
	ErrStreamLimits = errors.New("stream limits refused")
	// ErrNoJetStream: the server has no JetStream for this account; no
	// retry helps. It also matches ErrJetStream.
	ErrNoJetStream = errors.New("no JetStream")
	// ErrCredentials: the credentials file cannot be used.
	ErrCredentials = errors.New("bad credentials file")
)

// StreamError is an existing stream that remaphore refuses: its name, the
// setting at fault, and the command that changes it. It matches
// ErrStreamMismatch (subjects) or ErrStreamWeak (the rest).
type StreamError struct {
	Stream  string
	Setting string // the NATS stream setting: subjects, duplicate_window, max_msg_size, mirror, max_bytes
	Msg     string // what is wrong, for the error line
	Fix     string // what to run or change, for the hint
	kind    error
}

func (e *StreamError) Error() string {
	return fmt.Sprintf("%v: stream %s: %s", e.kind, e.Stream, e.Msg)
}

// Is matches the kind of problem (ErrStreamMismatch or ErrStreamWeak).
func (e *StreamError) Is(target error) bool { return target == e.kind }
