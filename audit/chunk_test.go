package audit

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/remaphore/remaphore/sign"
)

// chunkStore appends n accepted records in batches of random sizes, from
// 3 senders with 3 verbs and 4 destination patterns, their stream times
// mostly rising but stepping back now and then (a server's clock set
// back; stepBack in 1,000 records), within a batch and across batches. It
// returns the store and the records as written.
func chunkStore(t *testing.T, seed uint64, n, stepBack int) (*Store, []*Record) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed))
	s := newStore(t, Options{})
	keys := []sign.PrivateKey{testKey(t, 1), testKey(t, 2), testKey(t, 3)}
	verbs := []string{"ping", "deploy", "status"}
	dests := []string{"**", "com.example.*", "com.example.host1", "org.*.db"}
	at := t0
	var batch []Entry
	var all []*Record
	for seq := uint64(1); seq <= uint64(n); seq++ {
		switch r := rng.IntN(1000); {
		case r < stepBack:
			at = at.Add(-time.Duration(rng.IntN(30)) * time.Second) // clock back
		case r < 100:
			// same stored time as the one before
		default:
			at = at.Add(time.Duration(1+rng.IntN(1000)) * time.Millisecond)
		}
		k := rng.IntN(len(keys))
		e := msgEntry(t, seq, keys[k], func(m *sign.Message) {
			m.Verb, m.Dest = verbs[rng.IntN(len(verbs))], dests[rng.IntN(len(dests))]
			if rng.IntN(4) == 0 {
				m.UUID = "repeated"
			}
		})
		e.Stored, e.SenderDest = at, fmt.Sprintf("com.example.sender%d", k)
		batch = append(batch, e)
		all = append(all, e.record())
		if rng.IntN(40) == 0 || seq == uint64(n) {
			mustAppend(t, s, batch...)
			batch = nil
		}
	}
	return s, all
}

// TestChunkedIndexesAnswerAsTheRecordsSay compares queries served by the
// chunked indexes with the answer computed from the records themselves:
// every filter, time ranges starting and ending inside chunks, both
// orders, limits.
func TestChunkedIndexesAnswerAsTheRecordsSay(t *testing.T) {
	for _, c := range []struct {
		seed     uint64
		stepBack int // in 1,000 records
	}{{1, 1}, {2, 2}, {3, 30}, {4, 30}, {5, 0}, {6, 0}} {
		t.Run(fmt.Sprintf("seed-%d-back-%d", c.seed, c.stepBack), func(t *testing.T) {
			seed := c.seed
			s, all := chunkStore(t, seed, 1500, c.stepBack)
			if ps := verifyProblems(t, s); len(ps) != 0 {
				t.Fatalf("verify: %v", ps)
			}
			if c.stepBack == 0 {
				assertChunks(t, s)
			}
			st, err := s.Stats()
			if err != nil {
				t.Fatal(err)
			}
			first, last := all[0].Stored, all[0].Stored
			for _, r := range all {
				first, last = minTime(first, r.Stored), maxTime(last, r.Stored)
			}
			if !st.First.Equal(first) || !st.Last.Equal(last) {
				t.Errorf("stats: first %s last %s, want %s and %s", st.First, st.Last, first, last)
			}
			rng := rand.New(rand.NewPCG(seed, 99))
			lo, hi := all[0].Stored, all[0].Stored
			for _, r := range all {
				lo, hi = minTime(lo, r.Stored), maxTime(hi, r.Stored)
			}
			span := hi.Sub(lo)
			for i := range 400 {
				q := Query{Reverse: rng.IntN(2) == 0}
				switch rng.IntN(7) {
				case 0:
					q.Verb = []string{"ping", "deploy", "status", "none"}[rng.IntN(4)]
				case 1:
					q.Sender = testKey(t, byte(1+rng.IntN(3))).Public()
				case 2:
					q.SenderDest = fmt.Sprintf("com.example.sender%d", rng.IntN(3))
				case 3:
					q.Dest = []string{"**", "com.example.*", "org.*.db", "com.example.host1"}[rng.IntN(4)]
				case 4:
					q.UUID = []string{"repeated", "u7", "u1499"}[rng.IntN(3)]
				case 5:
					q.Verb, q.SenderDest = "deploy", "com.example.sender1"
				}
				if rng.IntN(3) > 0 {
					q.Since = lo.Add(time.Duration(rng.Int64N(int64(span))))
				}
				if rng.IntN(3) > 0 {
					q.Until = lo.Add(time.Duration(rng.Int64N(int64(span))))
					if !q.Since.IsZero() && q.Until.Before(q.Since) {
						q.Since, q.Until = q.Until, q.Since
					}
				}
				if rng.IntN(3) == 0 {
					q.Limit = 1 + rng.IntN(50)
				}
				got := seqs(t, s, q)
				want := model(all, q)
				if !slices.Equal(got, want) {
					t.Fatalf("query %d %+v:\n got %v\nwant %v", i, q, got, want)
				}
			}
		})
	}
}

// model answers q from the records: filter, order by stream time then
// sequence, limit.
func model(all []*Record, q Query) []uint64 {
	dm := newDestMatcher(q.Dest)
	var rs []*Record
	for _, r := range all {
		if q.matches(r, dm) {
			rs = append(rs, r)
		}
	}
	slices.SortFunc(rs, func(a, b *Record) int {
		return cmp.Or(a.Stored.Compare(b.Stored), cmp.Compare(a.Seq, b.Seq))
	})
	if q.Reverse {
		slices.Reverse(rs)
	}
	out := []uint64{}
	for _, r := range rs {
		if q.Limit > 0 && len(out) == q.Limit {
			break
		}
		out = append(out, r.Seq)
	}
	return out
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// assertChunks checks that the writer did chunk the accepted records'
// indexes (most keys hold many entries) but the uuid index, which keeps
// one key per entry.
func assertChunks(t *testing.T, s *Store) {
	t.Helper()
	err := s.db.View(func(tx *bolt.Tx) error {
		for i := range numIx {
			b := tx.Bucket(kindAccepted.ix[i])
			keys := uint64(b.Stats().KeyN)
			n, bad := countEntries(b, func([]byte, string, ...any) {})
			switch {
			case bad:
				t.Errorf("%s index: unreadable or out of order", ixNames[i])
			case chunked(kindAccepted, i) && keys*4 > n:
				t.Errorf("%s index: %d keys for %d entries: not chunked", ixNames[i], keys, n)
			case !chunked(kindAccepted, i) && keys != n:
				t.Errorf("%s index: %d keys for %d entries", ixNames[i], keys, n)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// verbChunk returns the key and entries of the verb index's chunk of
// "ping" in chainStore (seq 1 to 10, one chunk).
func verbChunk(t *testing.T, tx *bolt.Tx) ([]byte, []ixEntry) {
	t.Helper()
	b := tx.Bucket(kindAccepted.ix[ixVerb])
	k, v := b.Cursor().First()
	_, stored, seq, _ := splitIndexKey(k)
	es, err := decodeChunk(nil, ixEntry{stored, seq}, v)
	if err != nil || len(es) != 10 {
		t.Fatalf("verb index: %d entries in its first key, %v; want one chunk of 10", len(es), err)
	}
	return bytes.Clone(k), es
}

func TestVerify_ChunkTampering(t *testing.T) {
	prefix := appendValuePrefix(nil, []byte("ping"))
	for _, c := range []struct {
		name   string
		tamper func(tx *bolt.Tx, k []byte, es []ixEntry) error
		seq    uint64
		detail string
	}{
		{"unreadable", func(tx *bolt.Tx, k []byte, _ []ixEntry) error {
			return tx.Bucket(kindAccepted.ix[ixVerb]).Put(k, []byte{0x80})
		}, 1, "unreadable chunk"},
		{"entry taken out", func(tx *bolt.Tx, k []byte, es []ixEntry) error {
			return tx.Bucket(kindAccepted.ix[ixVerb]).Put(k, appendChunk([]byte{}, slices.Delete(es, 4, 5)))
		}, 5, "no entry in the verb index"},
		{"entry for no record", func(tx *bolt.Tx, k []byte, es []ixEntry) error {
			es = append(es, ixEntry{es[9].stored + 1, 99})
			return tx.Bucket(kindAccepted.ix[ixVerb]).Put(k, appendChunk([]byte{}, es))
		}, 99, "not there"},
		{"entry moved in time", func(tx *bolt.Tx, k []byte, es []ixEntry) error {
			es[9].stored++
			return tx.Bucket(kindAccepted.ix[ixVerb]).Put(k, appendChunk([]byte{}, es))
		}, 10, "does not match the record"},
		{"chunk overlaps a key", func(tx *bolt.Tx, k []byte, es []ixEntry) error {
			// seq 3 also as a key of its own, inside the chunk's span.
			return tx.Bucket(kindAccepted.ix[ixVerb]).Put(entryKey(nil, prefix, es[2]), []byte{})
		}, 3, "out of order"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := chainStore(t)
			rawUpdate(t, s, func(tx *bolt.Tx) error {
				k, es := verbChunk(t, tx)
				return c.tamper(tx, k, es)
			})
			ps := verifyProblems(t, s)
			found := false
			for _, p := range ps {
				if p.What != "index" {
					t.Errorf("not an index problem: %v", p)
				}
				found = found || p.Seq == c.seq && strings.Contains(p.Detail, c.detail)
			}
			if !found {
				t.Errorf("no index problem at seq %d saying %q in %v", c.seq, c.detail, ps)
			}
		})
	}
}

// TestQuery_UnreadableChunk: a query over a tampered chunk returns what
// it can read and does not fail or loop.
func TestQuery_UnreadableChunk(t *testing.T) {
	s := chainStore(t)
	rawUpdate(t, s, func(tx *bolt.Tx) error {
		k, es := verbChunk(t, tx)
		v := appendChunk([]byte{}, es[:4])
		return tx.Bucket(kindAccepted.ix[ixVerb]).Put(k, append(v, 0x80))
	})
	for _, rev := range []bool{false, true} {
		got := seqs(t, s, Query{Verb: "ping", Reverse: rev})
		want := []uint64{1, 2, 3, 4}
		if rev {
			want = []uint64{4, 3, 2, 1}
		}
		if !slices.Equal(got, want) {
			t.Errorf("reverse %v: %v, want %v", rev, got, want)
		}
	}
}

func FuzzDecodeChunk(f *testing.F) {
	f.Add(uint64(5), uint64(7), []byte{})
	f.Add(uint64(5), uint64(7), appendChunk(nil, []ixEntry{{5, 7}, {5, 8}, {900, 9}, {901, 20}}))
	f.Add(uint64(1<<63), uint64(1<<63), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x01})
	f.Add(uint64(0), uint64(0), []byte{0x80})
	f.Add(uint64(0), uint64(0), []byte{0x01, 0x00})
	f.Fuzz(func(t *testing.T, stored, seq uint64, v []byte) {
		es, err := decodeChunk(nil, ixEntry{stored, seq}, v)
		if len(es) == 0 || es[0] != (ixEntry{stored, seq}) {
			t.Fatalf("first entry %v", es)
		}
		for i := 1; i < len(es); i++ {
			if es[i].cmp(es[i-1]) <= 0 {
				t.Fatalf("entries out of order: %v", es)
			}
		}
		if err == nil {
			again, err := decodeChunk(nil, es[0], appendChunk(nil, es))
			if err != nil || !slices.Equal(again, es) {
				t.Fatalf("round trip: %v %v, want %v", again, err, es)
			}
		}
	})
}

// toFormat1 rewrites s as the previous format: every chunk split into
// keys of their own, the format tag 1.
func toFormat1(t *testing.T, s *Store) {
	t.Helper()
	rawUpdate(t, s, func(tx *bolt.Tx) error {
		for _, k := range kinds {
			for i := range numIx {
				b := tx.Bucket(k.ix[i])
				type chunk struct {
					prefix []byte
					es     []ixEntry
				}
				var cs []chunk
				b.ForEach(func(key, v []byte) error {
					if len(v) > 0 {
						prefix, stored, seq, _ := splitIndexKey(key)
						es, _ := decodeChunk(nil, ixEntry{stored, seq}, v)
						cs = append(cs, chunk{bytes.Clone(prefix), es})
					}
					return nil
				})
				for _, c := range cs {
					for _, e := range c.es {
						if err := b.Put(entryKey(nil, c.prefix, e), []byte{}); err != nil {
							return err
						}
					}
				}
			}
		}
		return tx.Bucket(bucketMeta).Put(metaFormat, []byte(formatTagV1))
	})
}

// TestFormat1IsReadAndUpgraded: a file of the previous format (one key
// per index entry) answers queries and verifies as it is; the first
// append marks it format 2 and adds chunks after its keys, and both
// answer together.
func TestFormat1IsReadAndUpgraded(t *testing.T) {
	s, all := chunkStore(t, 7, 600, 0)
	toFormat1(t, s)
	reopen(t, s, Options{ReadOnly: true})
	q := Query{Verb: "deploy", Reverse: true, Limit: 40}
	if got, want := seqs(t, s, q), model(all, q); !slices.Equal(got, want) {
		t.Errorf("format 1: %v, want %v", got, want)
	}
	if ps := verifyProblems(t, s); len(ps) != 0 {
		t.Errorf("verify format 1: %v", ps)
	}
	reopen(t, s, Options{})
	k := testKey(t, 2)
	var more []Entry
	for seq := uint64(601); seq <= 700; seq++ {
		e := msgEntry(t, seq, k, func(m *sign.Message) { m.Verb = "deploy" })
		e.Stored, e.SenderDest = all[len(all)-1].Stored.Add(time.Duration(seq)*time.Millisecond), "com.example.sender1"
		more = append(more, e)
		all = append(all, e.record())
	}
	mustAppend(t, s, more...)
	var tag string
	s.db.View(func(tx *bolt.Tx) error { tag = string(tx.Bucket(bucketMeta).Get(metaFormat)); return nil })
	if tag != formatTag {
		t.Errorf("format after an append: %q, want %q", tag, formatTag)
	}
	for _, q := range []Query{{Verb: "deploy"}, {Verb: "deploy", Reverse: true}, {SenderDest: "com.example.sender1", Since: all[590].Stored}} {
		if got, want := seqs(t, s, q), model(all, q); !slices.Equal(got, want) {
			t.Errorf("%+v: %v, want %v", q, got, want)
		}
	}
	if ps := verifyProblems(t, s); len(ps) != 0 {
		t.Errorf("verify: %v", ps)
	}
}

// TestFormatOfALaterVersionIsRefused: a file marked with a format this
// version does not know is refused, naming both.
func TestFormatOfALaterVersionIsRefused(t *testing.T) {
	s := newStore(t, Options{})
	rawUpdate(t, s, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(metaFormat, []byte("remaphore-audit/3"))
	})
	s.Close()
	_, err := Open(s.Path(), Options{ReadOnly: true})
	if !errors.Is(err, ErrNewerFormat) || !strings.Contains(err.Error(), `holds format "remaphore-audit/3"`) {
		t.Fatalf("open: %v", err)
	}
	rawReopen(t, s)
}

// reopen closes s and opens its file again with o, in place (the test's
// cleanup checks and closes it).
func reopen(t *testing.T, s *Store, o Options) {
	t.Helper()
	s.Close()
	n, err := Open(s.Path(), o)
	if err != nil {
		t.Fatal(err)
	}
	*s = *n
}

// rawReopen opens s's file with bbolt alone, in place, for a file the
// store refuses.
func rawReopen(t *testing.T, s *Store) {
	t.Helper()
	db, err := bolt.Open(s.Path(), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s.db = db
}

// TestAppendAfterAnUnreadableChunk: when the last chunk of a value does
// not decode (the file was tampered with), later entries of that value
// go in keys of their own: the chunk is left for verify to name, and
// nothing new is lost or out of order.
func TestAppendAfterAnUnreadableChunk(t *testing.T) {
	s := chainStore(t)
	rawUpdate(t, s, func(tx *bolt.Tx) error {
		k, _ := verbChunk(t, tx)
		return tx.Bucket(kindAccepted.ix[ixVerb]).Put(k, []byte{0x80})
	})
	k := testKey(t, 1)
	var more []Entry
	for seq := uint64(14); seq <= 20; seq++ {
		more = append(more, msgEntry(t, seq, k))
	}
	mustAppend(t, s, more...)
	if got := seqs(t, s, Query{Verb: "ping", Since: t0.Add(14 * time.Second)}); !slices.Equal(got, []uint64{14, 15, 16, 17, 18, 19, 20}) {
		t.Errorf("new entries: %v", got)
	}
	ps := verifyProblems(t, s)
	for _, p := range ps {
		if p.What != "index" || p.Seq > 10 {
			t.Errorf("problem beyond the tampered chunk: %v", p)
		}
	}
	only(t, ps, "index", 1, "unreadable chunk")
}
