package audit

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"

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
// Empty field values are not indexed.
//
// # Chunks
//
// An index entry is a key, whose stored time and sequence are the entry's,
// and a value: empty for an entry of its own, or a chunk: more entries
// of the same value, each after the one before in (stored, sequence)
// order, as uvarint pairs (stored time since the previous, sequence since
// the previous; both ≥ 0 and the sequence > 0). No other entry of that
// value lies between a chunk's first and last entry, so reading the keys
// in order and each chunk's entries in order reads the entries in order,
// forwards and backwards.
//
// The writer (format 2) puts the entries a transaction adds to the
// accepted records' time, verb, sender, peer and destination indexes in
// chunks: a few values take most records, and one put per value and
// transaction instead of one per record and index is most of the single
// writer's work saved (BenchmarkAppend). The uuid index, whose values
// hardly repeat, keeps one key per entry, and so do the refused records'
// indexes (eviction deletes entries by key). A transaction whose entries
// for a value do not all come after that value's last entry (the stream's
// clock went back) writes them one key each, and splits any chunk one of
// them falls into.
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
	// runs holds the entries of the chunked indexes, by index and value
	// prefix, in the order put, until flush writes them.
	runs [numIx]map[string]*[]ixEntry
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

// put stores r under its sequence with v as its value, and its index keys
// (those of the chunked indexes when flush is called). Keys are built in
// *arena, which must outlive the transaction.
func (w *kindTx) put(r *Record, v []byte, arena *[]byte) error {
	a := *arena
	defer func() { *arena = a }()
	start := len(a)
	a = binary.BigEndian.AppendUint64(a, r.Seq)
	if err := w.rec.Put(a[start:len(a):len(a)], v); err != nil {
		return err
	}
	for i := range w.ix {
		if chunked(w.k, i) {
			val := indexValue(r, i)
			if val == nil {
				continue
			}
			start := len(a)
			if i != ixTime {
				a = appendValuePrefix(a, val)
			}
			if w.runs[i] == nil {
				w.runs[i] = map[string]*[]ixEntry{}
			}
			// Looked up without making a string of the prefix: only a
			// value's first record in the transaction allocates one.
			es := w.runs[i][string(a[start:])]
			if es == nil {
				es = new([]ixEntry)
				w.runs[i][string(a[start:])] = es
			}
			*es = append(*es, ixEntry{unixNano(r.Stored), r.Seq})
			a = a[:start]
			continue
		}
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

// flush writes the chunked indexes' entries put so far.
func (w *kindTx) flush() error {
	for i, runs := range w.runs {
		for p, es := range runs {
			if err := writeRun(w.ix[i], []byte(p), *es); err != nil {
				return err
			}
		}
		w.runs[i] = nil
	}
	return nil
}

// chunked reports whether the writer puts the entries of kind k's index i
// in chunks. Refused records are evicted one by one, with their entries
// deleted by key: their time index keeps one key per entry.
func chunked(k *kind, i int) bool {
	return k == kindAccepted && i != ixUUID
}

// maxChunk bounds the entries of one chunk written (about a KiB): a query
// starting inside a chunk decodes it whole, and at 1,024 entries a
// 100-record page took 20% longer than with one key per entry; at 256 it
// takes as long, and the writer makes a few more puts per commit at no
// measurable cost (BenchmarkQueryTimePage, BenchmarkAppend). maxChunkRead
// bounds the entries read, so that a crafted file cannot make a reader
// decode without end.
const (
	maxChunk     = 256
	maxChunkRead = 1 << 16
)

// ixEntry is an index entry's position: stream time, then sequence.
type ixEntry struct{ stored, seq uint64 }

func (a ixEntry) cmp(b ixEntry) int {
	if c := cmp.Compare(a.stored, b.stored); c != 0 {
		return c
	}
	return cmp.Compare(a.seq, b.seq)
}

// appendChunk appends the chunk value of es (es[0] is the key's).
func appendChunk(b []byte, es []ixEntry) []byte {
	for i := 1; i < len(es); i++ {
		b = binary.AppendUvarint(b, es[i].stored-es[i-1].stored)
		b = binary.AppendUvarint(b, es[i].seq-es[i-1].seq)
	}
	return b
}

// errBadChunk is a chunk value that does not decode.
var errBadChunk = errors.New("unreadable chunk of index entries")

// decodeChunk appends first and the entries of chunk value v to dst.
func decodeChunk(dst []ixEntry, first ixEntry, v []byte) ([]ixEntry, error) {
	dst = append(dst, first)
	prev, n := first, 1
	for len(v) > 0 {
		ds, k := binary.Uvarint(v)
		if k <= 0 {
			return dst, errBadChunk
		}
		v = v[k:]
		dq, k := binary.Uvarint(v)
		if k <= 0 || dq == 0 {
			return dst, errBadChunk
		}
		v = v[k:]
		e := ixEntry{prev.stored + ds, prev.seq + dq}
		if e.stored < prev.stored || e.seq < prev.seq {
			return dst, errBadChunk // wrapped around
		}
		if n++; n > maxChunkRead {
			return dst, errBadChunk
		}
		dst = append(dst, e)
		prev = e
	}
	return dst, nil
}

// entryKey appends an index key: prefix, then e.
func entryKey(b, prefix []byte, e ixEntry) []byte {
	return appendTimeSeq(append(b, prefix...), e.stored, e.seq)
}

// inRun reports whether k is an index key of the run prefix.
func inRun(k, prefix []byte) bool {
	return len(k) == len(prefix)+16 && bytes.HasPrefix(k, prefix)
}

// writeRun adds entries es (in sequence order) to the run prefix of b.
func writeRun(b *bolt.Bucket, prefix []byte, es []ixEntry) error {
	ordered := true
	for i := 1; i < len(es); i++ {
		if es[i].stored < es[i-1].stored {
			ordered = false
			break
		}
	}
	if ordered {
		last, empty, ok := runLast(b, prefix)
		if empty || ok && last.cmp(es[0]) < 0 {
			for len(es) > 0 {
				n := min(len(es), maxChunk)
				if err := b.Put(entryKey(nil, prefix, es[0]), appendChunk([]byte{}, es[:n])); err != nil {
					return err
				}
				es = es[n:]
			}
			return nil
		}
	}
	for _, e := range es {
		if err := putSingle(b, prefix, e); err != nil {
			return err
		}
	}
	return nil
}

// runLast returns the last entry of the run prefix in b, or empty when the
// run has none; ok is false when its last chunk does not decode (the
// caller then writes one key per entry, leaving the chunk for verify to
// name).
func runLast(b *bolt.Bucket, prefix []byte) (last ixEntry, empty, ok bool) {
	c := b.Cursor()
	end := append(append([]byte{}, prefix...), bytes.Repeat([]byte{0xff}, 17)...)
	k, v := c.Seek(end)
	if k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	k, v = backToRun(c, prefix, k, v)
	if !inRun(k, prefix) {
		return ixEntry{}, true, true
	}
	_, stored, seq, _ := splitIndexKey(k)
	es, err := decodeChunk(nil, ixEntry{stored, seq}, v)
	if err != nil {
		return ixEntry{}, false, false
	}
	return es[len(es)-1], false, true
}

// backToRun steps cursor c back from key k over keys in the range of the
// run prefix that are not index keys (written by hand: verify names
// them), so that one is not taken for the run's end or for the key
// before an entry.
func backToRun(c *bolt.Cursor, prefix, k, v []byte) ([]byte, []byte) {
	for k != nil && bytes.HasPrefix(k, prefix) && len(k) != len(prefix)+16 {
		k, v = c.Prev()
	}
	return k, v
}

// putSingle puts e as a key of its own, first splitting the chunk whose
// entries it would fall between into keys of their own.
func putSingle(b *bolt.Bucket, prefix []byte, e ixEntry) error {
	key := entryKey(nil, prefix, e)
	c := b.Cursor()
	k, _ := c.Seek(key)
	var v []byte
	if k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	k, v = backToRun(c, prefix, k, v)
	if inRun(k, prefix) && len(v) > 0 {
		_, stored, seq, _ := splitIndexKey(k)
		// A chunk that does not decode is left as it is, for verify to
		// name.
		if es, err := decodeChunk(nil, ixEntry{stored, seq}, v); err == nil && es[len(es)-1].cmp(e) > 0 {
			// Each of its entries becomes a key of its own; the first
			// is the chunk's own key, its value now empty.
			for _, x := range es {
				if err := b.Put(entryKey(nil, prefix, x), []byte{}); err != nil {
					return err
				}
			}
		}
	}
	return b.Put(key, []byte{})
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
