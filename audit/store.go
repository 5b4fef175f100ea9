package audit

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/sign"
)

// Defaults of Options.
const (
	// DefaultMaxRejected caps the refused-message bucket by count.
	DefaultMaxRejected = 100_000
	// DefaultMaxRejectedBytes caps it by the bytes of its records (index
	// entries not counted): with refused records bounded to a few KiB
	// each, 256 MiB holds the last ~30,000 refused messages even when all
	// are large junk, and all 100,000 of the usual small ones.
	DefaultMaxRejectedBytes = 256 << 20
	// DefaultTimeout bounds the wait for the database file's lock.
	DefaultTimeout = 10 * time.Second
)

// formatTag marks a remaphore-audit database in its meta bucket. Format 2
// may hold chunks of index entries (see index.go); format 1 has one key
// per entry and is read as it is. The first write to a format 1 file
// marks it format 2, so that an older remaphore-audit, which would miss
// the entries in chunks, refuses it instead of answering queries wrong.
const (
	formatTag   = "remaphore-audit/2"
	formatTagV1 = "remaphore-audit/1"
)

// Bucket names. Accepted and refused records each have a record bucket
// keyed by the 8-byte big-endian stream sequence, and the same set of index
// buckets; see index.go.
var (
	bucketMeta  = []byte("meta")
	bucketCount = []byte("count")
	// bucketGap holds the gap records, keyed by their first sequence.
	bucketGap = []byte("gap")
)

// Meta keys.
var (
	metaFormat  = []byte("format")
	metaLast    = []byte("last")    // seq(8) + stored ns(8): the highest sequence processed
	metaHeadA   = []byte("ahead")   // seq(8) + hash(32): the accepted chain's head
	metaHeadR   = []byte("rhead")   // the refused chain's head
	metaAnchorR = []byte("ranchor") // seq + hash of the last evicted refused record
	metaCountA  = []byte("nacc")
	metaCountR  = []byte("nrej")
	metaEvicted = []byte("nevicted")
	metaStream  = []byte("stream") // the stream's name and creation time
	metaBytesR  = []byte("rbytes") // the bytes of the refused records' values
	metaHeadG   = []byte("ghead")  // the gap chain's head: first seq(8) + hash(32)
	metaCountG  = []byte("ngap")   // gap records
	metaGapSeqs = []byte("ngapseq")
	metaOwner   = []byte("owner") // this file's auditor id (its consumers' owner tag)
)

// Options configure Open.
type Options struct {
	// ReadOnly opens with a shared lock and never writes: query, tail,
	// verify and stats.
	ReadOnly bool
	// Timeout bounds the wait for the file's lock (DefaultTimeout when 0).
	// A writer holds it only while it writes a batch, so readers wait at
	// most for one transaction unless a long backlog is being written.
	Timeout time.Duration
	// MaxRejected caps the refused-record bucket (DefaultMaxRejected when
	// 0); the oldest are evicted first.
	MaxRejected int
	// MaxRejectedBytes caps it by the bytes of its records as well
	// (DefaultMaxRejectedBytes when 0).
	MaxRejectedBytes int64
	// NoSync skips fsync on commit: for building benchmark stores only.
	NoSync bool
}

// Store is an open audit database.
type Store struct {
	db          *bolt.DB
	path        string
	ro          bool
	maxRejected int
	maxRejBytes uint64
	// arena is Append's buffer, kept between transactions (only the
	// writer, inside its transaction, uses it).
	arena []byte
}

// maxKeptArena is the largest Append buffer kept for the next batch.
const maxKeptArena = 4 << 20

// Open opens the database at path. A writable open creates the file and its
// buckets when missing; a read-only open of a missing file is ErrNotFound.
// A lock not taken within o.Timeout is ErrBusy.
func Open(path string, o Options) (*Store, error) {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxRejected <= 0 {
		o.MaxRejected = DefaultMaxRejected
	}
	if o.MaxRejectedBytes <= 0 {
		o.MaxRejectedBytes = DefaultMaxRejectedBytes
	}
	bo := &bolt.Options{
		Timeout:      o.Timeout,
		ReadOnly:     o.ReadOnly,
		NoSync:       o.NoSync,
		FreelistType: bolt.FreelistMapType,
	}
	if o.ReadOnly {
		f, err := waitShared(path, o.Timeout)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		bo.Timeout = time.Second // our shared lock is held: bbolt's cannot block
	}
	db, err := bolt.Open(path, 0o600, bo)
	if err != nil {
		switch {
		case errors.Is(err, berrors.ErrTimeout):
			return nil, fmt.Errorf("%w: %s: another process holds it (waited %s)", ErrBusy, path, o.Timeout)
		case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrChecksum):
			return nil, fmt.Errorf("%w: %s: %v", ErrNotAudit, path, err)
		case errors.Is(err, os.ErrNotExist) && o.ReadOnly:
			return nil, fmt.Errorf("%w: %s does not exist", ErrNotFound, path)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	s := &Store{db: db, path: path, ro: o.ReadOnly, maxRejected: o.MaxRejected, maxRejBytes: uint64(o.MaxRejectedBytes)}
	if err := s.init(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// init checks the format and, for a writable store, creates what is
// missing. A writable open of a complete store does not write.
func (s *Store) init() error {
	complete := false
	err := s.db.View(func(tx *bolt.Tx) error {
		m := tx.Bucket(bucketMeta)
		if m == nil {
			empty := true
			tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
			if !empty || s.ro {
				return fmt.Errorf("%w: %s has no remaphore-audit meta bucket", ErrNotAudit, s.path)
			}
			return nil
		}
		switch f := string(m.Get(metaFormat)); {
		case f == formatTag || f == formatTagV1:
		case strings.HasPrefix(f, "remaphore-audit/"):
			return fmt.Errorf("%w: %s holds format %q, this remaphore-audit reads %q and %q", ErrNewerFormat, s.path, f, formatTagV1, formatTag)
		default:
			return fmt.Errorf("%w: %s holds format %q, this remaphore-audit reads %q and %q", ErrNotAudit, s.path, f, formatTagV1, formatTag)
		}
		complete = tx.Bucket(bucketCount) != nil && tx.Bucket(bucketGap) != nil
		for _, k := range kinds {
			for _, b := range k.buckets() {
				if tx.Bucket(b) == nil {
					complete = false
				}
			}
		}
		return nil
	})
	if err != nil || complete || s.ro {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		names := [][]byte{bucketMeta, bucketCount, bucketGap}
		for _, k := range kinds {
			names = append(names, k.buckets()...)
		}
		for _, n := range names {
			if _, err := tx.CreateBucketIfNotExists(n); err != nil {
				return err
			}
		}
		m := tx.Bucket(bucketMeta)
		if m.Get(metaFormat) == nil {
			return m.Put(metaFormat, []byte(formatTag))
		}
		return nil
	})
}

// Close closes the database and releases its lock.
func (s *Store) Close() error { return s.db.Close() }

// Path returns the file's path.
func (s *Store) Path() string { return s.path }

// DB returns the bbolt handle (tests, tools).
func (s *Store) DB() *bolt.DB { return s.db }

// Check runs bbolt's structural check of the file (pages, freelist) and
// returns the first problem found.
func (s *Store) Check() error {
	return s.db.View(func(tx *bolt.Tx) error {
		var first error
		for err := range tx.Check() {
			if first == nil {
				first = err
			}
		}
		return first
	})
}

// Entry is one message the ingester decided on, ready to be stored.
type Entry struct {
	Seq      uint64
	Stored   time.Time
	Subject  string
	HeaderID string
	Body     []byte
	// Reason is policy.ReasonAccepted or why the message was refused.
	Reason policy.Reason
	Detail string
	// Env is the decoded body (nil when it did not decode); for a refused
	// message it is what the body claims.
	Env *sign.Envelope
	// SenderDest is the [ Peers ] destination of Env.Sender, "" when unknown.
	SenderDest string

	// Gap, when set, makes this entry a gap record instead of a message:
	// sequences Gap.First to Gap.Last (= Seq) that the stream no longer
	// holds. The other fields are unused.
	Gap *Gap

	// bodySize and bodySHA are set by Bound.
	bodySize uint64
	bodySHA  [HashSize]byte
	bounded  bool

	// sealed, when set by a [Sealer], is the record encoded ahead of the
	// transaction on the assumption that the chain's head is sealed.prev.
	sealed *sealed
}

// sealed is an entry's record encoded ahead of Append.
type sealed struct {
	rec   Record // with its link and hash
	value []byte
	prev  link
}

// Bound makes a refused entry what its record keeps: the body's size and
// SHA-256, and copies of at most RefusedKeep bytes of the body, the
// payload and the header id, so that the message's own (possibly large)
// buffer is not kept alive either. Accepted entries are left whole: their
// signed bytes are needed to verify them again.
func (e *Entry) Bound() {
	if e.bounded || e.Reason == policy.ReasonAccepted || e.Gap != nil {
		return
	}
	e.bounded = true
	e.bodySize, e.bodySHA = uint64(len(e.Body)), sha256.Sum256(e.Body)
	if len(e.HeaderID) > RefusedKeep {
		e.HeaderID = strings.Clone(e.HeaderID[:RefusedKeep])
	}
	if len(e.Body) <= RefusedKeep {
		// Kept whole: the message's own buffer is no larger than the
		// copy would be, and a flood of small refusals is not worth a
		// copy each (nor is its payload, which is no larger).
		return
	}
	e.Body = bytes.Clone(e.Body[:RefusedKeep])
	if e.Env != nil {
		env := *e.Env
		env.Payload = bytes.Clone(env.Payload[:min(len(env.Payload), RefusedKeep)])
		e.Env = &env
	}
}

func (e *Entry) record() *Record {
	r := &Record{}
	e.fillRecord(r)
	return r
}

// fillRecord sets r to the record of e (without its chain link).
func (e *Entry) fillRecord(r *Record) {
	e.Bound()
	*r = Record{Seq: e.Seq, Stored: e.Stored, Subject: e.Subject, HeaderID: e.HeaderID,
		Reason: e.Reason.String(), Detail: e.Detail, Body: e.Body, SenderDest: e.SenderDest}
	if e.bounded {
		r.version, r.BodySize, r.BodySHA256 = recordVersionRefused, e.bodySize, e.bodySHA
	}
	r.setFields(e.Env)
	if !r.Decoded {
		r.SenderDest = ""
	}
}

// Sealer encodes and hashes records ahead of [Store.Append], on another
// goroutine than the single writer's: their chain links are those the
// entries will have if nothing else is written between (Append checks each
// link against the chain's head, and encodes again any that does not
// match). A Sealer starts at a store's heads ([Store.Sealer]) and must see
// every entry later appended, in order.
type Sealer struct {
	heads [2]link
}

// Sealer returns a Sealer starting at the store's chain heads.
func (s *Store) Sealer() (*Sealer, error) {
	z := &Sealer{}
	err := s.db.View(func(tx *bolt.Tx) error {
		m := tx.Bucket(bucketMeta)
		z.heads = [2]link{readLink(m, metaHeadA), readLink(m, metaHeadR)}
		return nil
	})
	return z, err
}

// Seal encodes each entry's record (gaps aside) into one buffer of its
// own.
func (z *Sealer) Seal(entries []Entry) {
	size := 0
	for i := range entries {
		e := &entries[i]
		e.Bound()
		size += len(e.Body) + len(e.HeaderID) + len(e.Detail) + 512
		if e.Env != nil {
			size += len(e.Env.Payload)
		}
	}
	buf := make([]byte, 0, size)
	for i := range entries {
		e := &entries[i]
		if e.Gap != nil {
			continue
		}
		k := e.chain()
		zs := &sealed{prev: z.heads[k]}
		buf, zs.value = e.encode(buf, &zs.rec, zs.prev)
		e.sealed = zs
		z.heads[k] = link{zs.rec.Seq, zs.rec.Hash}
	}
}

// chain is the chain e's record goes on: 0 accepted, 1 refused.
func (e *Entry) chain() int {
	if e.Reason != policy.ReasonAccepted {
		return 1
	}
	return 0
}

// encode sets r to e's record linked to prev, appends its encoding to b,
// and returns b and the encoding.
func (e *Entry) encode(b []byte, r *Record, prev link) ([]byte, []byte) {
	e.fillRecord(r)
	r.PrevSeq, r.PrevHash = prev.seq, prev.hash
	start := len(b)
	b, r.Hash = appendRecord(b, r)
	return b, b[start:len(b):len(b)]
}

// AppendResult counts what one Append did.
type AppendResult struct {
	Accepted, Rejected int
	Skipped            int // sequences already stored (a redelivery, a restart)
	Evicted            int // oldest refused records dropped by the cap
	Gaps               int // gap records written
	Last               uint64
}

// Last returns the highest stream sequence stored (0 for an empty store)
// and its stream time. Every sequence up to it has been decided on:
// [Store.Append] skips anything at or below it.
func (s *Store) Last() (seq uint64, stored time.Time, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		seq, stored = readLast(tx.Bucket(bucketMeta))
		return nil
	})
	return seq, stored, err
}

func readLast(m *bolt.Bucket) (uint64, time.Time) {
	v := m.Get(metaLast)
	if len(v) != 16 {
		return 0, time.Time{}
	}
	ns := binary.BigEndian.Uint64(v[8:])
	var t time.Time
	if ns != 0 {
		t = time.Unix(0, int64(ns))
	}
	return binary.BigEndian.Uint64(v), t
}

// link is a chain position: a record's sequence and hash.
type link struct {
	seq  uint64
	hash [HashSize]byte
}

func readLink(m *bolt.Bucket, key []byte) link {
	var l link
	if v := m.Get(key); len(v) == 8+HashSize {
		l.seq = binary.BigEndian.Uint64(v)
		copy(l.hash[:], v[8:])
	}
	return l
}

func (l link) bytes() []byte {
	return append(binary.BigEndian.AppendUint64(nil, l.seq), l.hash[:]...)
}

func readU64(m *bolt.Bucket, key []byte) uint64 {
	if v := m.Get(key); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func putU64(m *bolt.Bucket, key []byte, n uint64) error {
	return m.Put(key, binary.BigEndian.AppendUint64(nil, n))
}

// Append stores entries in one transaction, in order. An entry whose
// sequence is at or below [Store.Last] is skipped: a redelivered or
// re-read message is never stored twice. An entry with a Gap is written
// as a gap record. Refused records beyond the caps (by count and by bytes)
// evict the oldest refused records, with their index entries.
func (s *Store) Append(entries []Entry) (AppendResult, error) {
	var res AppendResult
	if s.ro {
		return res, ErrReadOnly
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		res = AppendResult{}
		m := tx.Bucket(bucketMeta)
		last, lastTime := readLast(m)
		w := [2]*kindTx{openKind(tx, kindAccepted), openKind(tx, kindRejected)}
		heads := [2]link{readLink(m, metaHeadA), readLink(m, metaHeadR)}
		counts := [2]uint64{readU64(m, metaCountA), readU64(m, metaCountR)}
		rbytes, err := refusedBytes(tx, counts[1])
		if err != nil {
			return err
		}
		gaps := gapTx{b: tx.Bucket(bucketGap), head: readLink(m, metaHeadG), n: readU64(m, metaCountG), seqs: readU64(m, metaGapSeqs)}
		deltas := counter{}
		// One arena for every key and value of the transaction: bbolt
		// keeps references until the commit. It is kept for the next
		// transaction (this one is the only writer), unless it is large.
		size := 0
		for i := range entries {
			e := &entries[i]
			n := len(e.Body)
			if e.Reason != policy.ReasonAccepted {
				n = min(n, RefusedKeep) + min(len(e.HeaderID), RefusedKeep) + HashSize + 8
			}
			size += 2*n + 512
		}
		arena := s.arena[:0]
		if cap(arena) < size {
			arena = make([]byte, 0, size)
		}
		defer func() {
			if cap(arena) <= maxKeptArena {
				s.arena = arena[:0]
			} else {
				s.arena = nil
			}
		}()
		var rec Record
		for i := range entries {
			e := &entries[i]
			if e.Gap != nil {
				if e.Gap.Last <= last {
					res.Skipped++
					continue
				}
				g := *e.Gap
				g.First = max(g.First, last+1)
				if err := gaps.put(&g); err != nil {
					return err
				}
				res.Gaps++
				last = g.Last
				continue
			}
			if e.Seq <= last {
				res.Skipped++
				continue
			}
			k := e.chain()
			var r *Record
			var value []byte
			if z := e.sealed; z != nil && z.prev == heads[k] {
				// Encoded and hashed ahead, on the chain as it is.
				r, value = &z.rec, z.value
			} else {
				r = &rec
				arena, value = e.encode(arena, r, heads[k])
			}
			if err := w[k].put(r, value, &arena); err != nil {
				return err
			}
			heads[k] = link{r.Seq, r.Hash}
			counts[k]++
			countRecord(&deltas, kinds[k], r, 1)
			if k == 0 {
				res.Accepted++
			} else {
				res.Rejected++
				rbytes += uint64(len(value))
			}
			last, lastTime = r.Seq, r.Stored
		}
		res.Last = last
		if res.Accepted+res.Rejected+res.Gaps == 0 {
			return nil
		}
		if string(m.Get(metaFormat)) != formatTag {
			if err := m.Put(metaFormat, []byte(formatTag)); err != nil {
				return err
			}
		}
		for _, w := range w {
			if err := w.flush(); err != nil {
				return err
			}
		}
		// Evict the oldest refused records beyond the caps. The chain of
		// refused records then starts at the anchor: the evicted record
		// the first remaining one links to.
		if counts[1] > uint64(s.maxRejected) || rbytes > s.maxRejBytes {
			anchor, n, freed, err := w[1].evict(func(n, b uint64) bool {
				return counts[1]-n > uint64(s.maxRejected) || rbytes-b > s.maxRejBytes
			}, &deltas)
			if err != nil {
				return err
			}
			counts[1] -= n
			rbytes -= freed
			res.Evicted = int(n)
			if err := m.Put(metaAnchorR, anchor.bytes()); err != nil {
				return err
			}
			if err := putU64(m, metaEvicted, readU64(m, metaEvicted)+n); err != nil {
				return err
			}
		}
		lv := binary.BigEndian.AppendUint64(nil, last)
		lv = binary.BigEndian.AppendUint64(lv, unixNano(lastTime))
		for _, kv := range []struct {
			k, v []byte
		}{
			{metaLast, lv},
			{metaHeadA, heads[0].bytes()},
			{metaHeadR, heads[1].bytes()},
			{metaCountA, binary.BigEndian.AppendUint64(nil, counts[0])},
			{metaCountR, binary.BigEndian.AppendUint64(nil, counts[1])},
			{metaBytesR, binary.BigEndian.AppendUint64(nil, rbytes)},
		} {
			if err := m.Put(kv.k, kv.v); err != nil {
				return err
			}
		}
		if res.Gaps > 0 {
			if err := gaps.save(m); err != nil {
				return err
			}
		}
		return applyCounts(tx.Bucket(bucketCount), &deltas)
	})
	return res, err
}

// refusedBytes returns the bytes of the refused records' values. A store
// written before the byte cap has no such counter: it is counted once
// from the records (and kept from then on).
func refusedBytes(tx *bolt.Tx, count uint64) (uint64, error) {
	m := tx.Bucket(bucketMeta)
	if v := m.Get(metaBytesR); len(v) == 8 || count == 0 {
		return readU64(m, metaBytesR), nil
	}
	var n uint64
	err := tx.Bucket(kindRejected.rec).ForEach(func(_, v []byte) error {
		n += uint64(len(v))
		return nil
	})
	return n, err
}

// seqKey is the record key: the stream sequence, 8 bytes big-endian.
func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// StreamIdentity returns the stream the store was filled from ("" for a
// new store): its name and creation time.
func (s *Store) StreamIdentity() (string, error) {
	var id string
	err := s.db.View(func(tx *bolt.Tx) error {
		id = string(tx.Bucket(bucketMeta).Get(metaStream))
		return nil
	})
	return id, err
}

// SetStreamIdentity records the stream the store is filled from (see
// StreamIdentity).
func (s *Store) SetStreamIdentity(id string) error {
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(metaStream, []byte(id)) })
}

// AuditorID returns the database's auditor id, making one on first use:
// the ingester tags the NATS consumers it creates with it, and touches no
// consumer without its database's tag.
func (s *Store) AuditorID() (string, error) {
	var id string
	err := s.db.Update(func(tx *bolt.Tx) error {
		m := tx.Bucket(bucketMeta)
		if v := m.Get(metaOwner); len(v) > 0 {
			id = string(v)
			return nil
		}
		var b [16]byte
		rand.Read(b[:])
		id = hex.EncodeToString(b[:])
		return m.Put(metaOwner, []byte(id))
	})
	return id, err
}
