package transport

import (
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
)

// apiStreamCreate and apiConsumerCreate are the JetStream API subject
// prefixes that create a stream (its name follows) and a consumer (stream,
// consumer name and filter follow).
const (
	apiStreamCreate   = "$JS.API.STREAM.CREATE."
	apiConsumerCreate = "$JS.API.CONSUMER.CREATE."
)

// refused returns the server's refusal of a publish on subject by this
// user's permissions, or nil. The server answers a forbidden publish with
// an asynchronous -ERR and drops the message, so the publish itself only
// times out; retrying it until the deadline would hide the cause behind a
// timeout. A refusal does not pass by itself: it needs the operator.
func (c *Conn) refused(subject string) error {
	return c.refusedMatch(subject, func(s string) bool { return s == subject })
}

// refusedMatch is refused for the subjects match accepts (a consumer's
// create subject holds a generated name); what names them in the error.
func (c *Conn) refusedMatch(what string, match func(subject string) bool) error {
	err := c.nc.LastError()
	if !publishRefused(err, match) {
		return nil
	}
	return fmt.Errorf("%w: the server refused it: this NATS user may not publish on %s (%v); use the credentials of a role that may, or allow the subject to this user (README.md, \"NATS security\")", ErrJetStream, what, err)
}

// publishRefused reports whether err is the server's permissions violation
// for a publish on a subject match accepts.
func publishRefused(err error, match func(subject string) bool) bool {
	if !errors.Is(err, nats.ErrPermissionViolation) {
		return false
	}
	const lead = `Permissions Violation for Publish to "`
	msg := err.Error()
	i := strings.Index(msg, lead)
	if i < 0 {
		return false
	}
	subject, _, found := strings.Cut(msg[i+len(lead):], `"`)
	return found && match(subject)
}

// consumerCreateSubject returns a matcher of the subjects that create a
// consumer on stream with filter: the generated name, one token, sits
// between them.
func consumerCreateSubject(stream, filter string) func(string) bool {
	prefix, suffix := apiConsumerCreate+stream+".", "."+filter
	return func(s string) bool {
		return len(s) > len(prefix)+len(suffix) && strings.HasPrefix(s, prefix) && strings.HasSuffix(s, suffix) &&
			!strings.Contains(s[len(prefix):len(s)-len(suffix)], ".")
	}
}
