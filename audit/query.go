package audit

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/sign"
)

// Query selects records. Zero fields match everything. Results come in
// stream-time order (then sequence), oldest first unless Reverse.
type Query struct {
	// Rejected selects refused records instead of accepted ones.
	Rejected bool
	// Since and Until bound the stream time, both inclusive.
	Since, Until time.Time
	Verb         string
	UUID         string
	Sender       sign.PublicKey // the sender's key
	SenderDest   string         // the sender's [ Peers ] destination at ingest
	// Dest selects messages addressed to Dest: those whose destination
	// pattern is Dest itself, and, when Dest is a node name, those whose
	// pattern matches it (com.example.* and ** for com.example.host1).
	Dest string
	// Request selects a request and its replies: the request whose id,
	// and the replies whose request id, starts with Request (lowercase
	// hex). No index serves it: the records in the time range are read.
	Request string
	Limit   int // 0 = no limit
	Reverse bool
	// AfterSeq, when set, selects only records with a higher sequence and
	// returns them in sequence order (tail -f).
	AfterSeq uint64
}

// errStop ends an iteration early without an error.
var errStop = errors.New("stop")

// Query calls fn with each record q selects, in order, until fn returns an
// error (returned) or the limit is reached. Filters on accepted records
// are served from the index buckets: the most selective filter given picks
// the index (uuid, then sender, peer, destination, verb, and the time index
// otherwise), the time range bounds the scan inside it, and the other
// filters are checked on each record found. Refused records (a capped part
// of the file) are read through the time index, the filters checked on
// each.
func (s *Store) Query(q Query, fn func(*Record) error) error {
	if !q.Since.IsZero() && !q.Until.IsZero() && q.Until.Before(q.Since) {
		return fmt.Errorf("%w: until %s is before since %s", ErrBadQuery, q.Until.Format(time.RFC3339), q.Since.Format(time.RFC3339))
	}
	k := kindAccepted
	if q.Rejected {
		k = kindRejected
	}
	dm := newDestMatcher(q.Dest)
	err := s.db.View(func(tx *bolt.Tx) error {
		rec := tx.Bucket(k.rec)
		if rec == nil {
			return fmt.Errorf("%w: missing bucket %s", ErrNotAudit, k.rec)
		}
		n := 0
		emit := func(v []byte) error {
			r, err := decodeRecord(v, true)
			if err != nil {
				return nil // verify names it; a query shows what it can read
			}
			if !q.matches(r, dm) {
				return nil
			}
			if err := fn(r); err != nil {
				return err
			}
			if n++; q.Limit > 0 && n >= q.Limit {
				return errStop
			}
			return nil
		}
		if q.AfterSeq > 0 {
			c := rec.Cursor()
			for key, v := c.Seek(seqKey(q.AfterSeq + 1)); key != nil; key, v = c.Next() {
				if err := emit(v); err != nil {
					return err
				}
			}
			return nil
		}
		srcs := q.sources(tx, k, dm)
		for i := range srcs {
			srcs[i].start()
		}
		for {
			best := -1
			for i := range srcs {
				if !srcs[i].valid() {
					continue
				}
				if best < 0 || srcs[i].before(&srcs[best]) {
					best = i
				}
			}
			if best < 0 {
				return nil
			}
			seq := srcs[best].seq
			srcs[best].next()
			if v := rec.Get(seqKey(seq)); v != nil {
				if err := emit(v); err != nil {
					return err
				}
			}
		}
	})
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

// Get returns the record with sequence seq from either kind, or nil.
func (s *Store) Get(seq uint64) (*Record, error) {
	var r *Record
	err := s.db.View(func(tx *bolt.Tx) error {
		for _, k := range kinds {
			if v := tx.Bucket(k.rec).Get(seqKey(seq)); v != nil {
				var err error
				r, err = decodeRecord(v, true)
				return err
			}
		}
		return nil
	})
	return r, err
}

func (q *Query) matches(r *Record, dm *destMatcher) bool {
	switch {
	case !q.Since.IsZero() && r.Stored.Before(q.Since),
		!q.Until.IsZero() && r.Stored.After(q.Until),
		q.Verb != "" && r.Verb != q.Verb,
		q.UUID != "" && r.UUID != q.UUID,
		!q.Sender.IsZero() && (!r.Decoded || r.Sender != q.Sender),
		q.SenderDest != "" && r.SenderDest != q.SenderDest,
		q.Dest != "" && (!r.Decoded || !dm.match(r.Dest)),
		q.Request != "" && !q.matchesRequest(r):
		return false
	}
	return true
}

func (q *Query) matchesRequest(r *Record) bool {
	switch {
	case !r.Decoded:
		return false
	case r.Kind == sign.KindReply:
		return strings.HasPrefix(hex.EncodeToString(r.RequestID[:]), q.Request)
	case r.Request:
		return strings.HasPrefix(r.ID(), q.Request)
	}
	return false
}

// sources picks the index ranges the query reads.
func (q *Query) sources(tx *bolt.Tx, k *kind, dm *destMatcher) []source {
	lo, hi := boundNano(q.Since, 0), boundNano(q.Until, math.MaxUint64)
	one := func(i int, v []byte) []source {
		return []source{newSource(tx.Bucket(k.ix[i]), appendValuePrefix(nil, v), lo, hi, q.Reverse)}
	}
	if q.Rejected {
		// Refused records are in the time index only (see indexValue):
		// the filters are checked on each record of the range.
		return []source{newSource(tx.Bucket(k.ix[ixTime]), nil, lo, hi, q.Reverse)}
	}
	switch {
	case q.UUID != "":
		return one(ixUUID, []byte(q.UUID))
	case !q.Sender.IsZero():
		return one(ixSender, q.Sender[:])
	case q.SenderDest != "":
		return one(ixPeer, []byte(q.SenderDest))
	case q.Dest != "" && !dm.byName:
		return one(ixDest, []byte(q.Dest))
	case q.Dest != "":
		// Every distinct pattern that matches the name: one seek per
		// distinct pattern, then a merge of their runs.
		b := tx.Bucket(k.ix[ixDest])
		var srcs []source
		c := b.Cursor()
		for key, _ := c.First(); key != nil; {
			p, _, _, ok := splitIndexKey(key)
			if !ok || !bytes.HasSuffix(p, []byte{0, 1}) {
				// Not a key the writer makes (verify names it): the
				// jump below would not pass it.
				key, _ = c.Next()
				continue
			}
			if dm.match(string(unescape(p))) {
				srcs = append(srcs, newSource(b, append([]byte{}, p...), lo, hi, q.Reverse))
			}
			jump := append(append([]byte{}, p[:len(p)-1]...), 2)
			key, _ = c.Seek(jump)
		}
		return srcs
	case q.Verb != "":
		return one(ixVerb, []byte(q.Verb))
	}
	return []source{newSource(tx.Bucket(k.ix[ixTime]), nil, lo, hi, q.Reverse)}
}

// lastNano is the last time int64 nanoseconds since 1970 hold (2262).
var lastNano = time.Unix(0, math.MaxInt64)

// boundNano is t as a bound on stored times: def when t is unset, past
// every stored time when t is after lastNano (its UnixNano would wrap).
func boundNano(t time.Time, def uint64) uint64 {
	switch {
	case t.IsZero():
		return def
	case t.After(lastNano):
		return math.MaxUint64
	}
	return unixNano(t)
}

// source walks one run of index entries, prefix + [lo, hi] in time: its
// keys in order, and the entries of each (one, or a chunk's).
type source struct {
	c        *bolt.Cursor
	prefix   []byte
	lo, hi   ixEntry
	reverse  bool
	es       []ixEntry // the entries of the key at the cursor
	at       int       // the current one
	stored   uint64
	seq      uint64
	finished bool
}

func newSource(b *bolt.Bucket, prefix []byte, lo, hi uint64, reverse bool) source {
	return source{c: b.Cursor(), prefix: prefix, reverse: reverse,
		lo: ixEntry{lo, 0}, hi: ixEntry{hi, math.MaxUint64}}
}

func (s *source) start() {
	if !s.reverse {
		// The key before the first from lo may be a chunk holding
		// entries from lo on.
		from := entryKey(nil, s.prefix, s.lo)
		k, _ := s.c.Seek(from)
		var pk, pv []byte
		if k == nil {
			pk, pv = s.c.Last()
		} else {
			pk, pv = s.c.Prev()
		}
		pk, pv = s.skip(pk, pv, true)
		if s.load(pk, pv) && s.es[len(s.es)-1].cmp(s.lo) >= 0 {
			for s.es[s.at].cmp(s.lo) < 0 {
				s.at++
			}
			s.set()
			return
		}
		k, v := s.c.Seek(from)
		k, v = s.skip(k, v, false)
		if s.load(k, v) {
			s.set()
		}
		return
	}
	to := entryKey(nil, s.prefix, s.hi)
	k, v := s.c.Seek(to)
	switch {
	case k == nil:
		k, v = s.c.Last()
	case bytes.Compare(k, to) > 0:
		k, v = s.c.Prev()
	}
	k, v = s.skip(k, v, true)
	if s.load(k, v) {
		s.at = len(s.es) - 1
		for s.at > 0 && s.es[s.at].cmp(s.hi) > 0 {
			s.at--
		}
		s.set()
	}
}

func (s *source) next() {
	if s.reverse {
		if s.at--; s.at >= 0 {
			s.set()
			return
		}
		if k, v := s.c.Prev(); s.load(s.skip(k, v, true)) {
			s.at = len(s.es) - 1
			s.set()
		}
		return
	}
	if s.at++; s.at < len(s.es) {
		s.set()
		return
	}
	if k, v := s.c.Next(); s.load(s.skip(k, v, false)) {
		s.set()
	}
}

// skip moves the cursor from key k, backwards or forwards, past keys in
// the run's range that are not index keys (written by hand: verify names
// them), so that one does not end the scan and hide the entries beyond.
func (s *source) skip(k, v []byte, back bool) ([]byte, []byte) {
	for k != nil && bytes.HasPrefix(k, s.prefix) && len(k) != len(s.prefix)+16 {
		if back {
			k, v = s.c.Prev()
		} else {
			k, v = s.c.Next()
		}
	}
	return k, v
}

// load reads the key at the cursor and its entries, with the first
// current; it reports false, and finishes the source, when the key is not
// of the run. A chunk that does not decode gives the entries read before
// the fault (verify names it).
func (s *source) load(k, v []byte) bool {
	if !inRun(k, s.prefix) {
		s.finished = true
		return false
	}
	_, stored, seq, _ := splitIndexKey(k)
	s.es, _ = decodeChunk(s.es[:0], ixEntry{stored, seq}, v)
	s.at, s.finished = 0, false
	return true
}

// set makes entry at current, or finishes the source when it is out of
// [lo, hi].
func (s *source) set() {
	e := s.es[s.at]
	if e.cmp(s.lo) < 0 || e.cmp(s.hi) > 0 {
		s.finished = true
		return
	}
	s.stored, s.seq = e.stored, e.seq
}

func (s *source) valid() bool { return !s.finished }

// before reports whether s comes before o in the query's order.
func (s *source) before(o *source) bool {
	less := s.stored < o.stored || (s.stored == o.stored && s.seq < o.seq)
	if s.reverse {
		return !less && (s.stored != o.stored || s.seq != o.seq)
	}
	return less
}

// destMatcher decides -dest: the pattern itself, or a pattern matching the
// name.
type destMatcher struct {
	dest   string
	byName bool // dest is a valid node name: patterns matching it count
	cache  map[string]bool
}

func newDestMatcher(dest string) *destMatcher {
	return &destMatcher{dest: dest, byName: dest != "" && policy.ValidateName(dest) == nil, cache: map[string]bool{}}
}

func (d *destMatcher) match(pattern string) bool {
	if pattern == d.dest {
		return true
	}
	if !d.byName {
		return false
	}
	m, ok := d.cache[pattern]
	if !ok {
		p, err := policy.ParsePattern(pattern)
		m = err == nil && p.Match(d.dest)
		d.cache[pattern] = m
	}
	return m
}
