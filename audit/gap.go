package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// gapVersion is the first byte after the chain link of a gap record.
const gapVersion = 1

// Gap is a run of stream sequences the auditor never recorded because the
// stream no longer held them when it came to read them (expired by
// max_age, discarded by a size limit, purged or deleted by hand). The
// auditor writes one only after asking the stream; a sequence that is
// merely late (lost on the way) is read again instead.
//
// Gap records form a hash chain of their own, keyed by First, so that one
// removed from the file shows in verify like a removed message record.
type Gap struct {
	First uint64 `json:"first"`
	Last  uint64 `json:"last"`
	// Seen is when the auditor found the sequences gone (its own clock).
	Seen time.Time `json:"seen"`
	// Said is what the stream answered when asked for them.
	Said string `json:"stream_said"`

	PrevSeq  uint64         `json:"-"`
	PrevHash [HashSize]byte `json:"-"`
	Hash     [HashSize]byte `json:"-"`
}

// Count is the number of sequences in the gap.
func (g *Gap) Count() uint64 { return g.Last - g.First + 1 }

// Range is "seq 5" or "seq 5-9".
func (g *Gap) Range() string {
	if g.First == g.Last {
		return fmt.Sprintf("seq %d", g.First)
	}
	return fmt.Sprintf("seq %d-%d", g.First, g.Last)
}

func (g *Gap) String() string {
	return fmt.Sprintf("gap %s (%d sequence(s)) never recorded: %s; seen %s", g.Range(), g.Count(), g.Said,
		g.Seen.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
}

// The stored value of a gap record:
//
//	prev seq 8, prev hash 32, version 1 (1), first 8, last 8,
//	seen 8 (unix ns), said (uvarint length + bytes), hash 32
func appendGap(b []byte, g *Gap) ([]byte, [HashSize]byte) {
	start := len(b)
	b = binary.BigEndian.AppendUint64(b, g.PrevSeq)
	b = append(b, g.PrevHash[:]...)
	b = append(b, gapVersion)
	b = binary.BigEndian.AppendUint64(b, g.First)
	b = binary.BigEndian.AppendUint64(b, g.Last)
	b = binary.BigEndian.AppendUint64(b, unixNano(g.Seen))
	b = appendBytes(b, g.Said)
	h := sha256.Sum256(b[start:])
	return append(b, h[:]...), h
}

func decodeGap(v []byte) (*Gap, error) {
	d := decoder{b: v, copy: true}
	g := &Gap{}
	g.PrevSeq = d.u64("prev seq")
	copy(g.PrevHash[:], d.take("prev hash", HashSize))
	if ver := d.take("version", 1); ver != nil && ver[0] != gapVersion && d.err == nil {
		d.err = fmt.Errorf("%w: gap record version %d, this remaphore-audit reads %d", ErrCorrupt, ver[0], gapVersion)
	}
	g.First = d.u64("first")
	g.Last = d.u64("last")
	if ns := d.u64("seen"); ns != 0 {
		g.Seen = time.Unix(0, int64(ns))
	}
	g.Said = d.str("said")
	copy(g.Hash[:], d.take("hash", HashSize))
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the gap record's hash", ErrCorrupt, len(d.b))
	}
	return g, nil
}

// gapTx writes gap records inside Append's transaction.
type gapTx struct {
	b       *bolt.Bucket
	head    link
	n, seqs uint64
}

func (t *gapTx) put(g *Gap) error {
	if g.Last < g.First {
		return fmt.Errorf("audit: gap from seq %d to %d", g.First, g.Last)
	}
	g.PrevSeq, g.PrevHash = t.head.seq, t.head.hash
	v, h := appendGap(nil, g)
	g.Hash = h
	if err := t.b.Put(seqKey(g.First), v); err != nil {
		return err
	}
	t.head = link{g.First, h}
	t.n++
	t.seqs += g.Count()
	return nil
}

func (t *gapTx) save(m *bolt.Bucket) error {
	if err := m.Put(metaHeadG, t.head.bytes()); err != nil {
		return err
	}
	if err := putU64(m, metaCountG, t.n); err != nil {
		return err
	}
	return putU64(m, metaGapSeqs, t.seqs)
}

// Gaps calls fn with each gap record, in sequence order.
func (s *Store) Gaps(fn func(*Gap) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketGap)
		if b == nil { // a read-only open of a store written before gaps
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			g, err := decodeGap(v)
			if err != nil {
				return nil // verify names it
			}
			return fn(g)
		})
	})
}

// verifyGaps walks the gap chain: each record's hash and encoding, its
// link, the head and count, and that no gap covers a stored record. It
// returns the gaps read.
func verifyGaps(tx *bolt.Tx, add func(Problem)) []Gap {
	var gaps []Gap
	b := tx.Bucket(bucketGap)
	if b == nil {
		return nil
	}
	problem := func(seq uint64, what, format string, args ...any) {
		add(Problem{Kind: "gap", Seq: seq, What: what, Detail: fmt.Sprintf(format, args...)})
	}
	var prev link
	var n, seqs uint64
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		n++
		if len(k) != 8 {
			problem(0, "unreadable", "a key of %d bytes (%x) in the gap bucket", len(k), k)
			continue
		}
		seq := binary.BigEndian.Uint64(k)
		g, err := decodeGap(v)
		if err != nil {
			problem(seq, "unreadable", "%v", err)
			prev.seq = seq
			if len(v) >= HashSize {
				copy(prev.hash[:], v[len(v)-HashSize:])
			}
			continue
		}
		again, _ := appendGap(nil, g)
		switch {
		case g.First != seq:
			problem(seq, "edited", "the gap record says seq %d: moved from another key", g.First)
		case sha256.Sum256(v[:len(v)-HashSize]) != g.Hash:
			problem(seq, "edited", "hash does not match the record's contents")
		case !bytes.Equal(again, v):
			problem(seq, "edited", "record is not in its canonical encoding")
		case g.Last < g.First:
			problem(seq, "edited", "the gap ends (seq %d) before it starts", g.Last)
		}
		switch {
		case g.PrevSeq > prev.seq:
			problem(seq, "gap", "gap records missing before this one: it follows the gap at seq %d, which is gone", g.PrevSeq)
		case g.PrevSeq < prev.seq:
			problem(prev.seq, "link", "not in the chain: seq %d links past it to seq %d (inserted outside the auditor)", seq, g.PrevSeq)
		case g.PrevHash != prev.hash:
			problem(seq, "link", "its link to seq %d does not match that record's hash: it was changed after this record was written", prev.seq)
		}
		prev = link{seq, g.Hash}
		if g.Last >= g.First {
			seqs += g.Count()
			for _, k := range kinds {
				if key, _ := tx.Bucket(k.rec).Cursor().Seek(seqKey(g.First)); key != nil && binary.BigEndian.Uint64(key) <= g.Last {
					problem(seq, "edited", "the gap %s covers %s record seq %d", g.Range(), k.name, binary.BigEndian.Uint64(key))
				}
			}
		}
		gaps = append(gaps, *g)
	}
	m := tx.Bucket(bucketMeta)
	head := readLink(m, metaHeadG)
	switch {
	case head.seq > prev.seq:
		problem(0, "gap", "gap records after seq %d are missing: the head is seq %d", prev.seq, head.seq)
	case head.seq < prev.seq:
		problem(0, "head", "gap record seq %d is past the head (seq %d): written outside the auditor", prev.seq, head.seq)
	case head.hash != prev.hash:
		problem(0, "head", "the head's hash differs from gap record seq %d's: the record was changed", prev.seq)
	}
	if c := readU64(m, metaCountG); c != n {
		problem(0, "head", "the store counts %d gap records, %d found", c, n)
	}
	if c := readU64(m, metaGapSeqs); c != seqs {
		problem(0, "head", "the store counts %d sequences in gaps, %d found", c, seqs)
	}
	return gaps
}
