package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/sign"
)

// recordVersion is the first byte after the chain link of every stored
// record. A store holding another version is refused rather than misread.
// Version 1 holds the whole body: every accepted record, and refused
// records written before version 2. Version 2 is a refused record bounded
// by bytes: the body's size and SHA-256, and at most its first
// RefusedKeep bytes (and as much of the payload).
const (
	recordVersion        = 1
	recordVersionRefused = 2
)

// RefusedKeep is how many bytes of a refused message's body (and of its
// decoded payload, and of its Nats-Msg-Id header) a refused record keeps:
// enough to see what it was, while a flood of large junk costs a few KiB a
// message on disk instead of its size.
const RefusedKeep = 4 << 10

// HashSize is the size of a chain hash.
const HashSize = sha256.Size

// Record is one stored stream message: what arrived (subject, Nats-Msg-Id
// header, the whole body), what the auditor decided (Reason and Detail),
// what the body says (the decoded fields, when it decodes), where the stream
// put it (Seq, Stored), and its link in the hash chain.
type Record struct {
	Seq      uint64    // stream sequence: the record's key
	Stored   time.Time // the stream's timestamp
	Subject  string
	HeaderID string // Nats-Msg-Id as received; "" when absent
	// Reason is "accepted" or the policy reason that refused the message
	// (see policy.Reason.String); Detail says more for a refusal.
	Reason string
	Detail string

	// Decoded reports whether the body decoded as a v1 envelope; the
	// fields below are set only when it did. For a refused message they
	// are what the body claims, not what is true.
	Decoded       bool
	Kind          sign.Kind
	Sender        sign.PublicKey
	SenderDest    string // the sender's [ Peers ] destination at ingest; "" for an unknown key
	Root          string
	Channel       string
	Dest          string // destination pattern
	Verb          string
	UUID          string
	Sent          time.Time
	Request       bool
	RequestID     [sign.IDSize]byte // replies: the request's id; receipts: the message's
	ResponderDest string            // replies: the responder; receipts: the receiver
	ExitCode      int32             // replies and receipts
	// Receipts only: whether a script ran, when the receiver accepted the
	// message and when it was done (see sign's receipt).
	Script                 bool
	AcceptedAt, FinishedAt time.Time
	Payload                []byte

	Body []byte // the raw body: signed bytes followed by the signature

	// BodySize and BodySHA256 describe the whole body as it arrived. A
	// refused record written by this version keeps only the first
	// RefusedKeep bytes of Body (and of Payload and HeaderID); these say
	// what the rest was. Both are zero in records that keep the whole body
	// (accepted records, older refused ones): there len(Body) is the size.
	BodySize   uint64
	BodySHA256 [HashSize]byte

	// version is the stored encoding (recordVersion or
	// recordVersionRefused), kept so that a record re-encodes to the same
	// bytes.
	version byte

	// Chain link: the sequence and hash of the previous record of the same
	// chain (accepted records form one chain, refused records another), and
	// this record's hash, SHA-256 over the link and the record's bytes.
	PrevSeq  uint64
	PrevHash [HashSize]byte
	Hash     [HashSize]byte
}

// Accepted reports whether the auditor accepted the message.
func (r *Record) Accepted() bool { return r.Reason == policy.ReasonAccepted.String() }

// Truncated reports whether the record keeps only the first part of the
// body (a refused record of a body longer than RefusedKeep).
func (r *Record) Truncated() bool {
	return r.version == recordVersionRefused && uint64(len(r.Body)) < r.BodySize
}

// Size is the size of the body as it arrived.
func (r *Record) Size() uint64 {
	if r.version == recordVersionRefused {
		return r.BodySize
	}
	return uint64(len(r.Body))
}

// ID returns the message id computed from the body (not the header), or ""
// when the body is too short to hold a signature or only its first part
// was kept.
func (r *Record) ID() string {
	if len(r.Body) < 64 || r.Truncated() {
		return ""
	}
	return sign.MessageID(r.Body[:len(r.Body)-64])
}

// setFields copies the decoded envelope into r.
func (r *Record) setFields(e *sign.Envelope) {
	if e == nil {
		return
	}
	r.Decoded = true
	r.Kind, r.Sender, r.Root, r.Channel = e.Kind, e.Sender, e.Root, e.Channel
	r.Dest, r.Verb, r.UUID, r.Sent, r.Request = e.Dest, e.Verb, e.UUID, e.Sent, e.Request
	r.Payload = e.Payload
	if e.Kind == sign.KindReply || e.Kind == sign.KindReceipt {
		r.RequestID, r.ResponderDest, r.ExitCode = e.RequestID, e.ResponderDest, e.ExitCode
	}
	if e.Kind == sign.KindReceipt {
		r.Script, r.AcceptedAt, r.FinishedAt = e.Script, e.Accepted, e.Finished
	}
}

// sameFields reports which decoded field of r differs from e, or "".
func (r *Record) sameFields(e *sign.Envelope) string {
	switch {
	case !r.Decoded:
		return "decoded"
	case r.Kind != e.Kind:
		return "kind"
	case r.Sender != e.Sender:
		return "sender"
	case r.Root != e.Root || r.Channel != e.Channel:
		return "channel"
	case r.Dest != e.Dest:
		return "destination"
	case r.Verb != e.Verb:
		return "verb"
	case r.UUID != e.UUID:
		return "uuid"
	case !r.Sent.Equal(e.Sent):
		return "sent time"
	case r.Request != e.Request:
		return "request flag"
	case !bytes.Equal(r.Payload, e.Payload):
		return "payload"
	case r.RequestID != e.RequestID:
		return "request id"
	case r.ResponderDest != e.ResponderDest:
		return "responder destination"
	case r.ExitCode != e.ExitCode:
		return "exit code"
	case r.Script != e.Script || !r.AcceptedAt.Equal(e.Accepted) || !r.FinishedAt.Equal(e.Finished):
		return "receipt times"
	}
	return ""
}

// The stored value of a record:
//
//	prev seq    8 bytes, big-endian
//	prev hash   32 bytes
//	version     1 byte (1, or 2 for a refused record bounded by bytes)
//	seq         8 bytes, big-endian
//	stored      8 bytes, big-endian unix nanoseconds
//	subject, header id, reason, detail    uvarint length + bytes each
//	decoded     1 byte, 0 or 1; when 1:
//	  kind 1 byte, sender 32 bytes, sender dest, root, channel, dest, verb,
//	  uuid (uvarint length + bytes each), sent 8 bytes, request 1 byte,
//	  for a reply: request id 32 bytes, responder dest (uvarint + bytes),
//	  exit code 4 bytes; for a receipt the same, then script 1 byte,
//	  accepted and finished 8 bytes each; then payload (uvarint + bytes)
//	version 2 only: body size 8 bytes, body SHA-256 32 bytes
//	body        uvarint length + bytes (version 2: at most RefusedKeep)
//	hash        32 bytes: SHA-256 of everything before it
//
// Integers are big-endian and lengths are minimal uvarints, so each record
// has exactly one encoding; verify re-encodes what it decodes and compares.

// appendRecord encodes r with its chain link and returns the value and its
// hash (which is also the value's last 32 bytes).
func appendRecord(b []byte, r *Record) ([]byte, [HashSize]byte) {
	start := len(b)
	b = binary.BigEndian.AppendUint64(b, r.PrevSeq)
	b = append(b, r.PrevHash[:]...)
	ver := r.version
	if ver == 0 {
		ver = recordVersion
	}
	b = append(b, ver)
	b = binary.BigEndian.AppendUint64(b, r.Seq)
	b = binary.BigEndian.AppendUint64(b, unixNano(r.Stored))
	b = appendBytes(b, r.Subject)
	b = appendBytes(b, r.HeaderID)
	b = appendBytes(b, r.Reason)
	b = appendBytes(b, r.Detail)
	if r.Decoded {
		b = append(b, 1, byte(r.Kind))
		b = append(b, r.Sender[:]...)
		b = appendBytes(b, r.SenderDest)
		b = appendBytes(b, r.Root)
		b = appendBytes(b, r.Channel)
		b = appendBytes(b, r.Dest)
		b = appendBytes(b, r.Verb)
		b = appendBytes(b, r.UUID)
		b = binary.BigEndian.AppendUint64(b, uint64(r.Sent.UnixNano()))
		if r.Request {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
		if r.Kind == sign.KindReply || r.Kind == sign.KindReceipt {
			b = append(b, r.RequestID[:]...)
			b = appendBytes(b, r.ResponderDest)
			b = binary.BigEndian.AppendUint32(b, uint32(r.ExitCode))
		}
		if r.Kind == sign.KindReceipt {
			b = appendReceipt(b, r)
		}
		b = appendBytes(b, r.Payload)
	} else {
		b = append(b, 0)
	}
	if ver == recordVersionRefused {
		b = binary.BigEndian.AppendUint64(b, r.BodySize)
		b = append(b, r.BodySHA256[:]...)
	}
	b = appendBytes(b, r.Body)
	h := sha256.Sum256(b[start:])
	return append(b, h[:]...), h
}

func appendBytes[T string | []byte](b []byte, s T) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// unixNano is t as unsigned nanoseconds, clamped at the epoch, for keys.
func unixNano(t time.Time) uint64 {
	if t.IsZero() || t.UnixNano() < 0 {
		return 0
	}
	return uint64(t.UnixNano())
}

// decodeRecord parses a stored value. It does not check the hash; see
// [checkRecord]. Byte fields alias v only when copy is false.
func decodeRecord(v []byte, copyBytes bool) (*Record, error) {
	d := decoder{b: v, copy: copyBytes}
	r := &Record{}
	r.PrevSeq = d.u64("prev seq")
	copy(r.PrevHash[:], d.take("prev hash", HashSize))
	if ver := d.take("version", 1); ver != nil {
		r.version = ver[0]
		if ver[0] != recordVersion && ver[0] != recordVersionRefused && d.err == nil {
			d.err = fmt.Errorf("%w: record version %d, this remaphore-audit reads %d and %d", ErrCorrupt, ver[0], recordVersion, recordVersionRefused)
		}
	}
	r.Seq = d.u64("seq")
	if ns := d.u64("stored time"); ns != 0 {
		r.Stored = time.Unix(0, int64(ns))
	}
	r.Subject = d.str("subject")
	r.HeaderID = d.str("header id")
	r.Reason = d.str("reason")
	r.Detail = d.str("detail")
	switch f := d.take("decoded flag", 1); {
	case f == nil:
	case f[0] == 1:
		r.Decoded = true
		if k := d.take("kind", 1); k != nil {
			r.Kind = sign.Kind(k[0])
		}
		copy(r.Sender[:], d.take("sender", 32))
		r.SenderDest = d.str("sender destination")
		r.Root = d.str("root")
		r.Channel = d.str("channel")
		r.Dest = d.str("destination")
		r.Verb = d.str("verb")
		r.UUID = d.str("uuid")
		r.Sent = time.Unix(0, int64(d.u64("sent time")))
		if f := d.take("request flag", 1); f != nil {
			r.Request = f[0] == 1
		}
		if r.Kind == sign.KindReply || r.Kind == sign.KindReceipt {
			copy(r.RequestID[:], d.take("request id", sign.IDSize))
			r.ResponderDest = d.str("responder destination")
			r.ExitCode = int32(d.u32("exit code"))
		}
		if r.Kind == sign.KindReceipt {
			d.receipt(r)
		}
		r.Payload = d.bytes("payload")
	case f[0] != 0 && d.err == nil:
		d.err = fmt.Errorf("%w: decoded flag %d", ErrCorrupt, f[0])
	}
	if r.version == recordVersionRefused {
		r.BodySize = d.u64("body size")
		copy(r.BodySHA256[:], d.take("body sha-256", HashSize))
	}
	r.Body = d.bytes("body")
	copy(r.Hash[:], d.take("hash", HashSize))
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the record's hash", ErrCorrupt, len(d.b))
	}
	return r, nil
}

// checkRecord verifies that v's hash covers its bytes and that v is the
// one encoding of what it holds.
func checkRecord(v []byte, r *Record) error {
	if len(v) < HashSize {
		return fmt.Errorf("%w: record shorter than a hash", ErrCorrupt)
	}
	if sha256.Sum256(v[:len(v)-HashSize]) != r.Hash {
		return fmt.Errorf("hash does not match the record's contents")
	}
	again, _ := appendRecord(nil, r)
	if !bytes.Equal(again, v) {
		return fmt.Errorf("record is not in its canonical encoding")
	}
	return nil
}

type decoder struct {
	b    []byte
	err  error
	copy bool
}

func (d *decoder) take(name string, n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.err = fmt.Errorf("%w: truncated at %s", ErrCorrupt, name)
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u64(name string) uint64 {
	if v := d.take(name, 8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (d *decoder) u32(name string) uint32 {
	if v := d.take(name, 4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (d *decoder) length(name string) int {
	if d.err != nil {
		return 0
	}
	n, k := binary.Uvarint(d.b)
	if k <= 0 || n > uint64(len(d.b)) {
		d.err = fmt.Errorf("%w: bad length of %s", ErrCorrupt, name)
		return 0
	}
	d.b = d.b[k:]
	return int(n)
}

func (d *decoder) str(name string) string {
	return string(d.take(name, d.length(name)))
}

func (d *decoder) bytes(name string) []byte {
	v := d.take(name, d.length(name))
	if v == nil || !d.copy {
		return v
	}
	return append([]byte{}, v...)
}
