package audit

import (
	"bytes"
	"encoding/binary"

	bolt "go.etcd.io/bbolt"
)

// Index buckets. Each kind of record (accepted, refused) has one of each.
// Keys are
//
//	time:   stored(8) seq(8)
//	others: esc(value) 0x00 0x01 stored(8) seq(8)
//
// where stored is the stream time in big-endian unix nanoseconds and esc
// doubles every 0x00 byte of the value as 0x00 0xff. The escape makes
// "esc(value) 0x00 0x01" a prefix that no other value's keys share, so one
// value's entries are one contiguous run, ordered by stream time then
// sequence: a filter on a value and a time range is a single range scan,
// and results come out in the same order whichever index served them.
// Values are empty; empty field values are not indexed.
const (
	ixTime = iota
	ixVerb
	ixUUID
	ixSender // the 32-byte public key
	ixPeer   // the sender's [ Peers ] destination at ingest
	ixDest   // the destination pattern
	numIx
)

var ixNames = [numIx]string{"time", "verb", "uuid", "sender", "peer", "dest"}

// kind is one family of buckets: accepted or refused records.
type kind struct {
	name string // "accepted" / "rejected"
	tag  byte   // counter prefix
	rec  []byte
	ix   [numIx][]byte
}

func newKind(name, prefix string, tag byte) *kind {
	k := &kind{name: name, tag: tag, rec: []byte(prefix)}
	for i, n := range ixNames {
		k.ix[i] = []byte(prefix + "." + n)
	}
	return k
}

var (
	kindAccepted = newKind("accepted", "acc", 'a')
	kindRejected = newKind("rejected", "rej", 'r')
	kinds        = [2]*kind{kindAccepted, kindRejected}
)

func (k *kind) buckets() [][]byte {
	return append([][]byte{k.rec}, k.ix[:]...)
}

// indexValue returns r's value for index i, or nil when r has none.
//
// A refused record written by this version (recordVersionRefused) is in
// the time index only. Its other values are whatever its sender wrote: a
// flood with a fresh uuid, verb, key or pattern in every message would
// make each value index take an insert at a random place (a page split
// every few records), which tripled the writer's cost per refused record.
// Queries on refused records read the refused records of their time range
// instead: that part of the file is capped (Options.MaxRejected and
// MaxRejectedBytes). Older refused records keep their entries.
func indexValue(r *Record, i int) []byte {
	if i == ixTime {
		return []byte{}
	}
	if !r.Decoded || r.version == recordVersionRefused {
		return nil
	}
	var v []byte
	switch i {
	case ixVerb:
		v = []byte(r.Verb)
	case ixUUID:
		v = []byte(r.UUID)
	case ixSender:
		v = r.Sender[:]
	case ixPeer:
		v = []byte(r.SenderDest)
	case ixDest:
		v = []byte(r.Dest)
	}
	if len(v) == 0 {
		return nil
	}
	return v
}

// appendValuePrefix appends esc(v) 0x00 0x01.
func appendValuePrefix(b, v []byte) []byte {
	for _, c := range v {
		if c == 0 {
			b = append(b, 0, 0xff)
		} else {
			b = append(b, c)
		}
	}
	return append(b, 0, 1)
}

func appendTimeSeq(b []byte, stored, seq uint64) []byte {
	b = binary.BigEndian.AppendUint64(b, stored)
	return binary.BigEndian.AppendUint64(b, seq)
}

// indexKey appends r's key in index i; ok is false when r is not indexed
// there.
func indexKey(b []byte, r *Record, i int) ([]byte, bool) {
	v := indexValue(r, i)
	if v == nil {
		return b, false
	}
	if i != ixTime {
		b = appendValuePrefix(b, v)
	}
	return appendTimeSeq(b, unixNano(r.Stored), r.Seq), true
}

// splitIndexKey returns the escaped value prefix (with its 0x00 0x01) and
// the stored time and sequence of an index key.
func splitIndexKey(k []byte) (prefix []byte, stored, seq uint64, ok bool) {
	if len(k) < 16 {
		return nil, 0, 0, false
	}
	n := len(k) - 16
	return k[:n], binary.BigEndian.Uint64(k[n:]), binary.BigEndian.Uint64(k[n+8:]), true
}

// unescape reverses appendValuePrefix's escape on a prefix (with its
// terminator).
func unescape(p []byte) []byte {
	p = bytes.TrimSuffix(p, []byte{0, 1})
	if bytes.IndexByte(p, 0) < 0 {
		return p
	}
	out := make([]byte, 0, len(p))
	for i := 0; i < len(p); i++ {
		out = append(out, p[i])
		if p[i] == 0 {
			i++ // skip the 0xff
		}
	}
	return out
}

// kindTx is one kind's buckets inside a writable transaction.
type kindTx struct {
	k   *kind
	rec *bolt.Bucket
	ix  [numIx]*bolt.Bucket
}

func openKind(tx *bolt.Tx, k *kind) *kindTx {
	w := &kindTx{k: k, rec: tx.Bucket(k.rec)}
	for i := range w.ix {
		w.ix[i] = tx.Bucket(k.ix[i])
	}
	// Appends keyed by sequence and by time fill pages completely. A value
	// index grows at the end of each value's run, so a page split there
	// leaves the left page as it will stay: filled to 90% rather than
	// bbolt's default half (a third less space for the indexes of a
	// million records).
	w.rec.FillPercent = 1.0
	w.ix[ixTime].FillPercent = 1.0
	for i := ixTime + 1; i < numIx; i++ {
		w.ix[i].FillPercent = 0.9
	}
	return w
}

// put stores r under its sequence with v as its value, and its index keys.
// Keys are built in *arena, which must outlive the transaction.
func (w *kindTx) put(r *Record, v []byte, arena *[]byte) error {
	a := *arena
	defer func() { *arena = a }()
	start := len(a)
	a = binary.BigEndian.AppendUint64(a, r.Seq)
	if err := w.rec.Put(a[start:len(a):len(a)], v); err != nil {
		return err
	}
	for i := range w.ix {
		start := len(a)
		var ok bool
		if a, ok = indexKey(a, r, i); !ok {
			continue
		}
		if err := w.ix[i].Put(a[start:len(a):len(a)], []byte{}); err != nil {
			return err
		}
	}
	return nil
}

// evict deletes the oldest records and their index entries while more
// (given how many records and bytes are deleted so far) says so, and
// returns the link of the last one deleted, how many were and their bytes.
func (w *kindTx) evict(more func(n, bytes uint64) bool, deltas *counter) (link, uint64, uint64, error) {
	var anchor link
	var done, freed uint64
	c := w.rec.Cursor()
	for ; more(done, freed); done++ {
		k, v := c.First()
		if k == nil {
			break
		}
		freed += uint64(len(v))
		r, err := decodeRecord(v, true)
		if err == nil {
			anchor = link{r.Seq, r.Hash}
			for i := range w.ix {
				if key, ok := indexKey(nil, r, i); ok {
					if err := w.ix[i].Delete(key); err != nil {
						return anchor, done, freed, err
					}
				}
			}
			countRecord(deltas, w.k, r, -1)
		} else if len(k) == 8 && len(v) >= HashSize {
			// Unreadable: drop it anyway; verify reports its index
			// entries as dangling.
			anchor.seq = binary.BigEndian.Uint64(k)
			copy(anchor.hash[:], v[len(v)-HashSize:])
		}
		if err := c.Delete(); err != nil {
			return anchor, done, freed, err
		}
	}
	return anchor, done, freed, nil
}

// Counter keys in the count bucket: kind tag, category, then the value.
const (
	catReason = 'r'
	catVerb   = 'v'
	catSender = 's' // 32-byte key followed by the peer destination
)

// counter holds counter deltas by key; keys are built in buf and a
// string is made only for a key not seen before.
type counter struct {
	m   map[string]*int64
	buf []byte
}

func (c *counter) add(key []byte, d int64) {
	if p := c.m[string(key)]; p != nil {
		*p += d
		return
	}
	if c.m == nil {
		c.m = map[string]*int64{}
	}
	p := new(int64)
	*p = d
	c.m[string(key)] = p
}

func countRecord(deltas *counter, k *kind, r *Record, d int64) {
	b := append(deltas.buf[:0], k.tag, catReason)
	deltas.add(append(b, r.Reason...), d)
	if r.Decoded {
		b = append(b[:0], k.tag, catVerb)
		deltas.add(append(b, r.Verb...), d)
		b = append(b[:0], k.tag, catSender)
		b = append(b, r.Sender[:]...)
		b = append(b, r.SenderDest...)
		deltas.add(b, d)
	}
	deltas.buf = b
}

func applyCounts(b *bolt.Bucket, deltas *counter) error {
	for k, p := range deltas.m {
		d := *p
		if d == 0 {
			continue
		}
		key := []byte(k)
		n := int64(0)
		if v := b.Get(key); len(v) == 8 {
			n = int64(binary.BigEndian.Uint64(v))
		}
		n += d
		if n <= 0 {
			if err := b.Delete(key); err != nil {
				return err
			}
			continue
		}
		if err := b.Put(key, binary.BigEndian.AppendUint64(nil, uint64(n))); err != nil {
			return err
		}
	}
	return nil
}
