package audit

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/remaphore/remaphore/sign"
)

// appendReceipt appends a receipt record's own fields (after the ones it
// shares with a reply): script flag, accepted and finished times.
func appendReceipt(b []byte, r *Record) []byte {
	if r.Script {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(r.AcceptedAt.UnixNano()))
	return binary.BigEndian.AppendUint64(b, uint64(r.FinishedAt.UnixNano()))
}

func (d *decoder) receipt(r *Record) {
	if f := d.take("script flag", 1); f != nil {
		r.Script = f[0] == 1
		if f[0] > 1 && d.err == nil {
			d.err = fmt.Errorf("%w: script flag %d", ErrCorrupt, f[0])
		}
	}
	r.AcceptedAt = time.Unix(0, int64(d.u64("accepted time")))
	r.FinishedAt = time.Unix(0, int64(d.u64("finished time")))
}

// IsReceipt reports whether r is a receipt (accepted or refused).
func (r *Record) IsReceipt() bool { return r.Decoded && r.Kind == sign.KindReceipt }

// MessageRef is the id (hex) of the message a reply or receipt refers to,
// or "" for a message.
func (r *Record) MessageRef() string {
	if !r.Decoded || (r.Kind != sign.KindReply && r.Kind != sign.KindReceipt) {
		return ""
	}
	return hex.EncodeToString(r.RequestID[:])
}

// Receipts is what the store holds about a message and the receipts of
// it: the message records the query found (none when the auditor never
// recorded it or it is outside the time range; several when messages share
// a uuid), and the accepted receipts, one per message and signing key (the
// first stored), by destination. Receipts are told apart by who signed
// them, never by the name they claim: a receipt names its signer's own
// [ Peers ] destination (the auditor refuses any other as wrong-responder),
// and one that does not, accepted by an older auditor, is left out, so no
// peer can speak for another host or hide its receipt by publishing first.
type Receipts struct {
	Messages []*Record
	Receipts []*Record
}

// MessageOf returns the message record receipt r is of, or nil.
func (rs *Receipts) MessageOf(r *Record) *Record {
	ref := r.MessageRef()
	for _, m := range rs.Messages {
		if m.ID() == ref {
			return m
		}
	}
	return nil
}

// Receipts finds the message q selects and its accepted receipts. q needs
// UUID (served by the uuid index: a receipt repeats its message's uuid) or
// Request (a message id or its prefix: the records of the time range are
// read, as for a request's replies); other filters narrow the time range.
// A uuid shared by several messages gives the receipts of each of them.
func (s *Store) Receipts(q Query) (*Receipts, error) {
	if q.UUID == "" && q.Request == "" {
		return nil, fmt.Errorf("%w: receipts need a message's uuid or id", ErrBadQuery)
	}
	q.Rejected, q.Limit = false, 0
	// The id is matched here, on messages of any kind (q.Request matches
	// requests only).
	id := q.Request
	q.Request = ""
	out := &Receipts{}
	seen := map[string]bool{}
	err := s.Query(q, func(r *Record) error {
		switch {
		case !r.Decoded:
		case id != "" && !strings.HasPrefix(r.MessageRef(), id) && !(r.Kind == sign.KindMsg && strings.HasPrefix(r.ID(), id)):
		case r.Kind == sign.KindMsg:
			out.Messages = append(out.Messages, r)
		case r.Kind != sign.KindReceipt:
		case r.ResponderDest != r.SenderDest:
			// Accepted by an auditor older than the wrong-responder check:
			// the receipt speaks for a host its key is not.
		case !seen[r.MessageRef()+"\x00"+string(r.Sender[:])]:
			seen[r.MessageRef()+"\x00"+string(r.Sender[:])] = true
			out.Receipts = append(out.Receipts, r)
		}
		return nil
	})
	sort.SliceStable(out.Receipts, func(i, j int) bool { return out.Receipts[i].ResponderDest < out.Receipts[j].ResponderDest })
	return out, err
}
