package sign

import (
	"encoding/binary"
	"fmt"
	"time"
)

// A receipt (KindReceipt) is what a receiver with receipts on publishes
// once it has acted on an accepted message: which message (RequestID),
// who it is (ResponderDest), whether a script ran and its exit code, and
// when it accepted the message and finished with it. Its common fields
// repeat the message's root, channel, verb and uuid (so the auditor's uuid
// index finds a message and its receipts together); Dest is the sender's
// destination, Sent is when the receipt was signed, Request is 0 and the
// payload is empty. Its own domain tag keeps it from ever being taken for a
// message or a reply.
const tagReceipt = "remaphore/v1/receipt"

// fixedReceipt is the smallest receipt's signed size less its strings.
const fixedReceipt = fixedMsg - len(tagMsg) + len(tagReceipt) + IDSize + 1 + 1 + 4 + 8 + 8

// appendReceipt appends the receipt's own fields, after the payload.
func (m *Message) appendReceipt(b []byte) []byte {
	b = append(b, m.RequestID[:]...)
	b = appendStr8(b, m.ResponderDest)
	if m.Script {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(m.ExitCode))
	b = binary.BigEndian.AppendUint64(b, uint64(m.Accepted.UnixNano()))
	return binary.BigEndian.AppendUint64(b, uint64(m.Finished.UnixNano()))
}

// checkReceipt refuses a receipt that has more than one encoding or says
// nothing: a payload or request flag (a receipt carries neither), an exit
// code without a script, missing times.
func (m *Message) checkReceipt() error {
	switch {
	case m.Request:
		return fmt.Errorf("%w: a receipt with the request flag set", ErrMalformed)
	case len(m.Payload) != 0:
		return fmt.Errorf("%w: a receipt with a payload", ErrMalformed)
	case !m.Script && m.ExitCode != 0:
		return fmt.Errorf("%w: a receipt with exit code %d and no script", ErrMalformed, m.ExitCode)
	case m.Accepted.IsZero() || m.Finished.IsZero():
		return fmt.Errorf("%w: a receipt without its accepted and finished times", ErrMalformed)
	case m.RequestID == [IDSize]byte{}:
		return fmt.Errorf("%w: a receipt without the id of its message", ErrMalformed)
	}
	return nil
}

// receipt reads a receipt's own fields into m; payloadLen is the length of
// the payload read before them.
func (r *reader) receipt(m *Message, payloadLen int) {
	copy(m.RequestID[:], r.take("message id", IDSize))
	m.ResponderDest = r.str8("receiver destination", MaxDest)
	if f := r.take("script flag", 1); f != nil {
		switch f[0] {
		case 0:
		case 1:
			m.Script = true
		default:
			if r.err == nil {
				r.err = fmt.Errorf("%w: script flag %d is neither 0 nor 1", ErrMalformed, f[0])
			}
		}
	}
	if c := r.take("exit code", 4); c != nil {
		m.ExitCode = int32(binary.BigEndian.Uint32(c))
	}
	if t := r.take("accepted time", 8); t != nil {
		m.Accepted = time.Unix(0, int64(binary.BigEndian.Uint64(t)))
	}
	if t := r.take("finished time", 8); t != nil {
		m.Finished = time.Unix(0, int64(binary.BigEndian.Uint64(t)))
	}
	if r.err == nil && payloadLen != 0 {
		r.err = fmt.Errorf("%w: a receipt with a payload", ErrMalformed)
	}
	if r.err == nil {
		// The checks Marshal makes, so that what decodes encodes again.
		r.err = m.checkReceipt()
	}
}
