package sign

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"
)

// Kind tells a message (or request) from a reply.
type Kind uint8

const (
	// KindMsg is a message sent with -s, or a request sent with -r.
	KindMsg Kind = iota + 1
	// KindReply is a responder's answer to a request.
	KindReply
	// KindReceipt is a receiver's record of having acted on a message
	// (config receipts: true); see receipt.go.
	KindReceipt
)

func (k Kind) String() string {
	switch k {
	case KindMsg:
		return "msg"
	case KindReply:
		return "reply"
	case KindReceipt:
		return "receipt"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Domain tags: the first field of the signed bytes.
const (
	tagMsg   = "remaphore/v1/msg"
	tagReply = "remaphore/v1/reply"
	// tagReceipt: see receipt.go.
)

// Limits, checked before any parsing or verification work.
const (
	MaxRoot    = 128 // subject root
	MaxChannel = 128
	MaxDest    = 255
	MaxVerb    = 64
	MaxUUID    = 128
	// MaxPayload is the largest payload (or reply output) in bytes.
	MaxPayload = 1 << 20
	// MaxBody is the largest body Decode looks at.
	MaxBody = MaxPayload + 4096
	// NonceSize is the number of random bytes in each message.
	NonceSize = 16
	// IDSize is the size of a message id in bytes (hex doubles it).
	IDSize = sha256.Size
)

// minimum sizes of the fixed parts, for the early length checks.
const (
	fixedMsg   = 1 + len(tagMsg) + 1 + 1 + 32 + 1 + 1 + 1 + 8 + 1 + NonceSize + 4
	fixedReply = fixedMsg - len(tagMsg) + len(tagReply) + IDSize + 1 + 4
)

// Message holds every signed field. Reply fields are set only for KindReply.
type Message struct {
	Kind    Kind
	Root    string // subject root, config "subject"
	Channel string // -S
	Sender  PublicKey
	Dest    string // destination pattern
	Verb    string
	UUID    string
	Sent    time.Time // encoded as unix nanoseconds
	Request bool      // the sender waits for replies
	Nonce   [NonceSize]byte
	Payload []byte

	RequestID     [IDSize]byte // reply: id of the request answered; receipt: of the message acted on
	ResponderDest string       // reply: responder's own destination; receipt: the receiver's
	ExitCode      int32        // reply, receipt: the script's exit code

	// Receipt only (see receipt.go): whether a script ran (ExitCode is
	// then its exit code, else 0), and when the receiver accepted the
	// message and when it was done with it.
	Script             bool
	Accepted, Finished time.Time
}

// Envelope is a decoded body: the message, the bytes its signature covers,
// the signature, and the message id.
type Envelope struct {
	Message
	Signed    []byte
	Signature [ed25519.SignatureSize]byte
	ID        string // lowercase hex SHA-256 of Signed
}

// Body returns the wire bytes: signed bytes followed by the signature.
func (e *Envelope) Body() []byte {
	b := make([]byte, 0, len(e.Signed)+len(e.Signature))
	return append(append(b, e.Signed...), e.Signature[:]...)
}

// Verify checks the signature against the sender key in the message.
func (e *Envelope) Verify() error {
	if !ed25519.Verify(e.Sender[:], e.Signed, e.Signature[:]) {
		return fmt.Errorf("%w: signature does not verify for sender %s", ErrBadSignature, e.Sender)
	}
	return nil
}

// MessageID returns the id of signed bytes: lowercase hex SHA-256.
func MessageID(signed []byte) string {
	sum := sha256.Sum256(signed)
	var h [2 * IDSize]byte
	hex.Encode(h[:], sum[:])
	return string(h[:])
}

// ParseID reads a message id in its hex form.
func ParseID(s string) ([IDSize]byte, error) {
	var id [IDSize]byte
	if len(s) != 2*IDSize {
		return id, fmt.Errorf("%w: message id must be %d hex characters", ErrMalformed, 2*IDSize)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("%w: message id: %v", ErrMalformed, err)
	}
	// hex.Decode accepts upper case; ids are lower case only.
	if hex.EncodeToString(id[:]) != s {
		return id, fmt.Errorf("%w: message id must be lowercase hex", ErrMalformed)
	}
	return id, nil
}

// IDBytes returns the message id as bytes: the SHA-256 that ID spells in
// lowercase hex, as [ParseID] reads it. ok is false when ID is not a valid
// message id (an Envelope built by hand); Seal and Decode always set a
// valid one. Unlike ParseID it does not allocate.
func (e *Envelope) IDBytes() (id [IDSize]byte, ok bool) {
	s := e.ID
	if len(s) != 2*IDSize {
		return [IDSize]byte{}, false
	}
	for i := range id {
		hi, ok1 := lowerHex(s[2*i])
		lo, ok2 := lowerHex(s[2*i+1])
		if !ok1 || !ok2 {
			return [IDSize]byte{}, false
		}
		id[i] = hi<<4 | lo
	}
	return id, true
}

func lowerHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// Marshal returns the signed bytes of m, after checking every limit.
func (m *Message) Marshal() ([]byte, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	tag := tagMsg
	size := fixedMsg
	switch m.Kind {
	case KindReply:
		tag = tagReply
		size = fixedReply + len(m.ResponderDest)
	case KindReceipt:
		tag = tagReceipt
		size = fixedReceipt + len(m.ResponderDest)
	}
	size += len(m.Root) + len(m.Channel) + len(m.Dest) + len(m.Verb) + len(m.UUID) + len(m.Payload)
	b := make([]byte, 0, size+ed25519.SignatureSize)
	b = appendStr8(b, tag)
	b = appendStr8(b, m.Root)
	b = appendStr8(b, m.Channel)
	b = append(b, m.Sender[:]...)
	b = appendStr8(b, m.Dest)
	b = appendStr8(b, m.Verb)
	b = appendStr8(b, m.UUID)
	b = binary.BigEndian.AppendUint64(b, uint64(m.Sent.UnixNano()))
	if m.Request {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = append(b, m.Nonce[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(m.Payload)))
	b = append(b, m.Payload...)
	if m.Kind == KindReply {
		b = append(b, m.RequestID[:]...)
		b = appendStr8(b, m.ResponderDest)
		b = binary.BigEndian.AppendUint32(b, uint32(m.ExitCode))
	}
	if m.Kind == KindReceipt {
		b = m.appendReceipt(b)
	}
	return b, nil
}

func (m *Message) check() error {
	if m.Kind != KindMsg && m.Kind != KindReply && m.Kind != KindReceipt {
		return fmt.Errorf("%w: unknown kind %d", ErrMalformed, m.Kind)
	}
	for _, f := range []struct {
		name string
		n    int
		max  int
	}{
		{"subject root", len(m.Root), MaxRoot},
		{"channel", len(m.Channel), MaxChannel},
		{"destination", len(m.Dest), MaxDest},
		{"verb", len(m.Verb), MaxVerb},
		{"uuid", len(m.UUID), MaxUUID},
		{"payload", len(m.Payload), MaxPayload},
		{"responder destination", len(m.ResponderDest), MaxDest},
	} {
		if f.n > f.max {
			return fmt.Errorf("%w: %s too long (%d > %d bytes)", ErrTooLarge, f.name, f.n, f.max)
		}
	}
	if m.Kind == KindMsg && (m.ResponderDest != "" || m.ExitCode != 0 || m.RequestID != [IDSize]byte{}) {
		return fmt.Errorf("%w: reply fields set on a message", ErrMalformed)
	}
	if m.Kind != KindReceipt && (m.Script || !m.Accepted.IsZero() || !m.Finished.IsZero()) {
		return fmt.Errorf("%w: receipt fields set on a %s", ErrMalformed, m.Kind)
	}
	if m.Kind == KindReceipt {
		return m.checkReceipt()
	}
	return nil
}

func appendStr8(b []byte, s string) []byte {
	return append(append(b, byte(len(s))), s...)
}

// Seal fills in m.Sender from key, draws a random nonce when m.Nonce is all
// zero, signs, and returns the envelope. m.Sent must be set by the caller
// (tests pass a fixed time; the CLI passes time.Now()).
func Seal(m *Message, key PrivateKey) (*Envelope, error) {
	if key.IsZero() {
		return nil, fmt.Errorf("%w: no private key to sign with", ErrBadKey)
	}
	if m.Sent.IsZero() {
		return nil, fmt.Errorf("%w: message has no sent time", ErrMalformed)
	}
	m.Sender = key.Public()
	if m.Nonce == [NonceSize]byte{} {
		if _, err := rand.Read(m.Nonce[:]); err != nil {
			return nil, fmt.Errorf("seal: nonce: %w", err)
		}
	}
	signed, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	e := &Envelope{Message: *m, Signed: signed, ID: MessageID(signed)}
	copy(e.Signature[:], key.Sign(signed))
	return e, nil
}

// Open decodes body strictly and verifies its signature. An envelope is
// returned only when both succeed.
func Open(body []byte) (*Envelope, error) {
	e, err := Decode(body)
	if err != nil {
		return nil, err
	}
	if err := e.Verify(); err != nil {
		return nil, err
	}
	return e, nil
}

// Decode parses body strictly without checking the signature; the auditor
// uses it to record what a rejected message claimed. Everything else should
// call [Open]. The returned envelope does not alias body.
func Decode(body []byte) (*Envelope, error) {
	if len(body) > MaxBody {
		return nil, fmt.Errorf("%w: body is %d bytes, limit %d", ErrTooLarge, len(body), MaxBody)
	}
	if len(body) < fixedMsg+ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: body is %d bytes, shorter than any v1 envelope", ErrMalformed, len(body))
	}
	n := len(body) - ed25519.SignatureSize
	signed, sig := body[:n], body[n:]
	r := reader{b: signed}
	e := &Envelope{}
	m := &e.Message
	switch tag := r.bytes8("tag", 32); string(tag) {
	case tagMsg:
		m.Kind = KindMsg
	case tagReply:
		m.Kind = KindReply
	case tagReceipt:
		m.Kind = KindReceipt
	default:
		if r.err == nil {
			r.err = fmt.Errorf("%w: unknown tag %q (not a remaphore v1 envelope)", ErrMalformed, string(tag))
		}
	}
	// The five strings share one allocation: a copy of the bytes from the
	// root to the uuid (a few hundred at most, never the payload).
	start := n - len(r.b)
	var at [5][2]int // each string's start and end in signed
	str := func(i int, name string, max int) {
		f := r.bytes8(name, max)
		end := n - len(r.b)
		at[i] = [2]int{end - len(f), end}
	}
	str(0, "subject root", MaxRoot)
	str(1, "channel", MaxChannel)
	copy(m.Sender[:], r.take("sender", 32))
	str(2, "destination", MaxDest)
	str(3, "verb", MaxVerb)
	str(4, "uuid", MaxUUID)
	if r.err == nil {
		strs := string(signed[start : n-len(r.b)])
		for i, p := range []*string{&m.Root, &m.Channel, &m.Dest, &m.Verb, &m.UUID} {
			*p = strs[at[i][0]-start : at[i][1]-start]
		}
	}
	if t := r.take("sent time", 8); t != nil {
		m.Sent = time.Unix(0, int64(binary.BigEndian.Uint64(t)))
	}
	if f := r.take("request flag", 1); f != nil {
		switch f[0] {
		case 0:
		case 1:
			m.Request = true
		default:
			if r.err == nil {
				r.err = fmt.Errorf("%w: request flag %d is neither 0 nor 1", ErrMalformed, f[0])
			}
		}
	}
	copy(m.Nonce[:], r.take("nonce", NonceSize))
	var payload []byte // aliases body until copied below
	if l := r.take("payload length", 4); l != nil {
		pl := binary.BigEndian.Uint32(l)
		if pl > MaxPayload && r.err == nil {
			r.err = fmt.Errorf("%w: payload too long (%d > %d bytes)", ErrTooLarge, pl, MaxPayload)
		}
		payload = r.take("payload", int(min(pl, MaxPayload+1)))
	}
	if m.Kind == KindReceipt {
		r.receipt(m, len(payload))
	}
	if m.Kind == KindReply {
		copy(m.RequestID[:], r.take("request id", IDSize))
		m.ResponderDest = r.str8("responder destination", MaxDest)
		if c := r.take("exit code", 4); c != nil {
			m.ExitCode = int32(binary.BigEndian.Uint32(c))
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes after the last field", ErrMalformed, len(r.b))
	}
	// One allocation holds copies of the signed bytes and the payload, in
	// two disjoint, capacity-capped slices: neither aliases body nor the
	// other.
	buf := make([]byte, len(signed)+len(payload))
	e.Signed = buf[:n:n]
	copy(e.Signed, signed)
	m.Payload = buf[n:]
	copy(m.Payload, payload)
	copy(e.Signature[:], sig)
	e.ID = MessageID(e.Signed)
	return e, nil
}

// reader consumes fields and keeps the first error, so Decode reads as a
// list of fields.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(name string, n int) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b) {
		r.err = fmt.Errorf("%w: truncated at %s (need %d bytes, %d left)", ErrMalformed, name, n, len(r.b))
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) str8(name string, max int) string {
	return string(r.bytes8(name, max))
}

// bytes8 reads a field of at most max bytes after its 1-byte length.
func (r *reader) bytes8(name string, max int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) == 0 { // as take(name+" length", 1), without building the name
		r.err = fmt.Errorf("%w: truncated at %s length (need 1 bytes, 0 left)", ErrMalformed, name)
		return nil
	}
	l := r.b[0]
	r.b = r.b[1:]
	if int(l) > max {
		r.err = fmt.Errorf("%w: %s too long (%d > %d bytes)", ErrTooLarge, name, l, max)
		return nil
	}
	return r.take(name, int(l))
}
