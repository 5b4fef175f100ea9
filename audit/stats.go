package audit

import (
	"cmp"
	"encoding/hex"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/remaphore/remaphore/sign"
)

// ChainHead is the last link of a chain: publish it (a log line, a ticket)
// and a later verify proves that nothing before it was changed since.
type ChainHead struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"` // lowercase hex; all zeros for an empty chain
}

func (l link) head() ChainHead { return ChainHead{Seq: l.seq, Hash: hex.EncodeToString(l.hash[:])} }

// Count is how many accepted and refused records share a value.
type Count struct {
	Name     string `json:"name"`
	Accepted uint64 `json:"accepted"`
	Rejected uint64 `json:"rejected"`
}

// SenderCount counts the records of one sender key under one peer
// destination ("" when the key was not a peer).
type SenderCount struct {
	Key      sign.PublicKey `json:"-"`
	KeyText  string         `json:"key"`
	Dest     string         `json:"dest"`
	Accepted uint64         `json:"accepted"`
	Rejected uint64         `json:"rejected"`
}

// Stats summarises a store. The counts are kept up to date by Append, so
// Stats reads a few keys rather than the records.
type Stats struct {
	Accepted uint64 `json:"accepted"`
	Rejected uint64 `json:"rejected"` // refused records still stored
	Evicted  uint64 `json:"evicted"`  // refused records dropped by the cap
	// RejectedBytes is the bytes the refused records take (their values).
	RejectedBytes uint64 `json:"rejected_bytes"`
	// Gaps counts gap records: runs of stream sequences the stream no
	// longer held when the auditor came to read them; GapSeqs counts the
	// sequences in them.
	Gaps    uint64 `json:"gaps"`
	GapSeqs uint64 `json:"gap_seqs"`
	LastSeq uint64 `json:"last_seq"`
	// First and Last are the stream times of the oldest and newest stored
	// records of either kind.
	First        time.Time     `json:"first,omitzero"`
	Last         time.Time     `json:"last,omitzero"`
	Head         ChainHead     `json:"head"`
	RejectedHead ChainHead     `json:"rejected_head"`
	Verdicts     []Count       `json:"verdicts"` // by reason: "accepted" and each refusal
	Verbs        []Count       `json:"verbs"`
	Senders      []SenderCount `json:"senders"`
}

// Stats reads the counters and chain heads.
func (s *Store) Stats() (*Stats, error) {
	st := &Stats{}
	err := s.db.View(func(tx *bolt.Tx) error {
		m := tx.Bucket(bucketMeta)
		st.Accepted, st.Rejected, st.Evicted = readU64(m, metaCountA), readU64(m, metaCountR), readU64(m, metaEvicted)
		st.LastSeq, _ = readLast(m)
		st.RejectedBytes = readU64(m, metaBytesR)
		st.Gaps, st.GapSeqs = readU64(m, metaCountG), readU64(m, metaGapSeqs)
		st.Head, st.RejectedHead = readLink(m, metaHeadA).head(), readLink(m, metaHeadR).head()
		for _, k := range kinds {
			// Keys of another length than a time index key's (written
			// by hand: verify names them) are stepped over.
			c := tx.Bucket(k.ix[ixTime]).Cursor()
			key, _ := c.First()
			for key != nil && len(key) != 16 {
				key, _ = c.Next()
			}
			if key != nil {
				if _, ns, _, ok := splitIndexKey(key); ok && (st.First.IsZero() || time.Unix(0, int64(ns)).Before(st.First)) {
					st.First = time.Unix(0, int64(ns))
				}
			}
			key, v := c.Last()
			for key != nil && len(key) != 16 {
				key, v = c.Prev()
			}
			if key != nil {
				// The last key may be a chunk: its last entry is the
				// latest.
				if _, ns, seq, ok := splitIndexKey(key); ok {
					es, _ := decodeChunk(nil, ixEntry{ns, seq}, v)
					if ns := es[len(es)-1].stored; time.Unix(0, int64(ns)).After(st.Last) {
						st.Last = time.Unix(0, int64(ns))
					}
				}
			}
		}
		verdicts := map[string]*Count{}
		verbs := map[string]*Count{}
		senders := map[string]*SenderCount{}
		add := func(n *uint64, tag byte, v uint64) {
			if tag == kindAccepted.tag {
				*n += v
			}
		}
		err := tx.Bucket(bucketCount).ForEach(func(k, v []byte) error {
			if len(k) < 2 || len(v) != 8 {
				return nil
			}
			n := be64(v)
			tag, name := k[0], string(k[2:])
			switch k[1] {
			case catReason:
				c := getCount(verdicts, name)
				add(&c.Accepted, tag, n)
				if tag == kindRejected.tag {
					c.Rejected += n
				}
			case catVerb:
				c := getCount(verbs, name)
				add(&c.Accepted, tag, n)
				if tag == kindRejected.tag {
					c.Rejected += n
				}
			case catSender:
				if len(name) < 32 {
					return nil
				}
				c, ok := senders[name]
				if !ok {
					c = &SenderCount{Dest: name[32:]}
					copy(c.Key[:], name[:32])
					c.KeyText = c.Key.String()
					senders[name] = c
				}
				add(&c.Accepted, tag, n)
				if tag == kindRejected.tag {
					c.Rejected += n
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		st.Verdicts = sortedCounts(verdicts)
		st.Verbs = sortedCounts(verbs)
		for _, c := range senders {
			st.Senders = append(st.Senders, *c)
		}
		slices.SortFunc(st.Senders, func(a, b SenderCount) int {
			return cmp.Or(cmp.Compare(b.Accepted+b.Rejected, a.Accepted+a.Rejected), cmp.Compare(a.Dest, b.Dest), cmp.Compare(a.KeyText, b.KeyText))
		})
		return nil
	})
	return st, err
}

func getCount(m map[string]*Count, name string) *Count {
	c, ok := m[name]
	if !ok {
		c = &Count{Name: name}
		m[name] = c
	}
	return c
}

// sortedCounts orders by total, largest first, then name.
func sortedCounts(m map[string]*Count) []Count {
	out := make([]Count, 0, len(m))
	for _, c := range m {
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b Count) int {
		return cmp.Or(cmp.Compare(b.Accepted+b.Rejected, a.Accepted+a.Rejected), cmp.Compare(a.Name, b.Name))
	})
	return out
}

func be64(b []byte) uint64 {
	_ = b[7]
	return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
}
