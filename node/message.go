package node

import (
	"context"
	"fmt"
	"time"

	"github.com/remaphore/remaphore/config"
	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/sign"
	"github.com/remaphore/remaphore/transport"
)

// SendTimeout bounds one publish when the caller gives no deadline of its
// own: a reply, and the remaphore command's -s without -t.
const SendTimeout = 10 * time.Second

// Message is what a sender says: everything of a signed message that is
// not taken from the config.
type Message struct {
	Channel string // the channel (subject) to send on; "" is transport.DefaultChannel
	Dest    string // destination pattern; "" is policy.AnyDestination (**)
	Verb    string // a normalized verb (policy.NormalizeVerb); "" is policy.DefaultVerb
	UUID    string
	Payload []byte
	// From picks the identity to sign with; zero lets ChooseIdentity pick.
	From sign.PublicKey
}

// Fields a MessageError is about.
const (
	FieldDest    = "dest"
	FieldUUID    = "uuid"
	FieldPayload = "payload"
)

// MessageError says which field of a Message is invalid; Size and Limit
// are set for the size fields.
type MessageError struct {
	Field       string
	Err         error
	Size, Limit int
}

func (e *MessageError) Error() string {
	if e.Err != nil {
		return e.Field + ": " + e.Err.Error()
	}
	return fmt.Sprintf("%s is %d bytes, limit %d", e.Field, e.Size, e.Limit)
}

func (e *MessageError) Unwrap() error { return e.Err }

// Check validates m without a config (the destination pattern and the
// sizes) and returns the parsed pattern. Errors are *MessageError.
func (m Message) Check() (policy.Pattern, error) {
	pat, err := policy.ParsePattern(m.dest())
	if err != nil {
		return pat, &MessageError{Field: FieldDest, Err: err}
	}
	if len(m.UUID) > sign.MaxUUID {
		return pat, &MessageError{Field: FieldUUID, Size: len(m.UUID), Limit: sign.MaxUUID}
	}
	if len(m.Payload) > sign.MaxPayload {
		return pat, &MessageError{Field: FieldPayload, Size: len(m.Payload), Limit: sign.MaxPayload}
	}
	return pat, nil
}

func (m Message) dest() string {
	if m.Dest == "" {
		return policy.AnyDestination
	}
	return m.Dest
}

func (m Message) verb() string {
	if m.Verb == "" {
		return policy.DefaultVerb
	}
	return m.Verb
}

func (m Message) channel() string {
	if m.Channel == "" {
		return transport.DefaultChannel
	}
	return m.Channel
}

// ChooseIdentity picks the identity that signs a message with verb: from
// when it is not zero, else default_identity when it may send verb, else
// the first identity that may. Its error wraps policy.ErrNoIdentity.
func ChooseIdentity(cfg *config.Config, from sign.PublicKey, verb string) (policy.Identity, error) {
	return policy.ChooseIdentity(cfg.Identities, cfg.DefaultIdentity, from, verb)
}

// Seal checks m, chooses the identity and signs the message; request
// marks it as a request, which responders answer. The envelope is ready
// for Send or Request.
func Seal(cfg *config.Config, m Message, request bool) (*sign.Envelope, error) {
	if _, err := m.Check(); err != nil {
		return nil, err
	}
	id, err := ChooseIdentity(cfg, m.From, m.verb())
	if err != nil {
		return nil, err
	}
	return sign.Seal(&sign.Message{
		Kind:    sign.KindMsg,
		Root:    cfg.Subject,
		Channel: m.channel(),
		Dest:    m.dest(),
		Verb:    m.verb(),
		UUID:    m.UUID,
		Sent:    time.Now(),
		Request: request,
		Payload: m.Payload,
	}, id.Key)
}

// Send stores env (from Seal) on its channel of the config's stream and
// returns the stream sequence once the stream has acknowledged it. The
// stream is created when missing (see transport).
func Send(ctx context.Context, conn *transport.Conn, cfg *config.Config, env *sign.Envelope) (uint64, error) {
	return conn.Publish(ctx, StreamSpec(cfg), transport.MsgSubject(cfg.Subject, env.Channel), env.Body(), env.ID)
}
