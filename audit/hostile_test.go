package audit

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/sign"
)

// Attacks on the store (issue 13): large junk, floods, and gap records
// removed or changed by whoever can write the file. The flood through a
// real server is in cmd/remaphore-audit/hostile_test.go.

// junkEntry is a refused message of size bytes: an envelope signed by a
// key that is no peer, with a payload filling the rest.
func junkEntry(t *testing.T, seq uint64, size int) Entry {
	t.Helper()
	e := msgEntry(t, seq, testKey(t, 3), func(m *sign.Message) { m.Payload = bytes.Repeat([]byte{'j'}, size-300) })
	return rejected(e, policy.ReasonUnknownSender)
}

// A refused record keeps the decoded fields, the reason, the body's size
// and SHA-256, and at most RefusedKeep bytes of the body and the payload;
// an accepted record keeps its whole body.
func TestHostile_RefusedRecordsAreBoundedByBytes(t *testing.T) {
	s := newStore(t, Options{})
	junk := junkEntry(t, 1, 900_000)
	whole := slices.Clone(junk.Body)
	big := msgEntry(t, 2, testKey(t, 1), func(m *sign.Message) { m.Payload = bytes.Repeat([]byte{'a'}, 500_000) })
	small := rejected(msgEntry(t, 3, testKey(t, 3)), policy.ReasonUnknownSender)
	smallBody := slices.Clone(small.Body)
	mustAppend(t, s, junk, big, small)

	r, err := s.Get(1)
	if err != nil || r == nil {
		t.Fatal(r, err)
	}
	if !r.Truncated() || len(r.Body) != RefusedKeep || r.Size() != uint64(len(whole)) || r.BodySHA256 != sha256.Sum256(whole) ||
		!bytes.Equal(r.Body, whole[:RefusedKeep]) || len(r.Payload) != RefusedKeep || r.Verb != "ping" || r.UUID != "u1" ||
		r.Reason != "unknown-sender" || r.ID() != "" {
		t.Fatalf("refused record: truncated %v, %d of %d bytes kept, payload %d, verb %q uuid %q reason %q", r.Truncated(), len(r.Body), r.Size(), len(r.Payload), r.Verb, r.UUID, r.Reason)
	}
	if r, _ := s.Get(2); r == nil || r.Truncated() || len(r.Body) != len(big.Body) || len(r.Payload) != 500_000 {
		t.Fatal("the accepted record does not keep its whole body")
	}
	if r, _ := s.Get(3); r == nil || r.Truncated() || !bytes.Equal(r.Body, smallBody) || r.ID() == "" {
		t.Fatal("a small refused record does not keep its whole body")
	}
	st, _ := s.Stats()
	if st.RejectedBytes == 0 || st.RejectedBytes > 2*RefusedKeep+1024+uint64(len(smallBody))*2 {
		t.Fatalf("refused records take %d bytes", st.RejectedBytes)
	}
	if ps := verifyProblems(t, s); len(ps) > 0 {
		t.Fatalf("verify: %v", ps)
	}
	// A whole refused body that was changed no longer matches its SHA-256.
	rewrite(t, s, kindRejected, 3, func(r *Record) { r.Body[len(r.Body)-1] ^= 1 }, true)
	only(t, verifyProblems(t, s), "fields", 3, "SHA-256")
}

// The refused bucket is capped by bytes as well as by count: the oldest
// are evicted, and the chain still verifies from its anchor.
func TestHostile_RefusedBucketCappedByBytes(t *testing.T) {
	s := newStore(t, Options{MaxRejectedBytes: 64 << 10})
	var seq uint64
	for range 10 {
		var batch []Entry
		for range 3 {
			seq++
			batch = append(batch, junkEntry(t, seq, 50_000))
		}
		seq++
		batch = append(batch, msgEntry(t, seq, testKey(t, 1)))
		mustAppend(t, s, batch...)
	}
	st, _ := s.Stats()
	if st.RejectedBytes > 64<<10 || st.Rejected+st.Evicted != 30 || st.Rejected < 5 || st.Accepted != 10 {
		t.Fatalf("stats: %d refused taking %d bytes, %d evicted, %d accepted", st.Rejected, st.RejectedBytes, st.Evicted, st.Accepted)
	}
	got := seqs(t, s, Query{Rejected: true})
	if len(got) != int(st.Rejected) || got[len(got)-1] != 39 {
		t.Fatalf("refused records %v: want the newest", got)
	}
	if ps := verifyProblems(t, s); len(ps) > 0 {
		t.Fatalf("verify after eviction by bytes: %v", ps)
	}
}

// A store written before records were bounded (version 1 refused records,
// no byte counter) is read, verified and capped: its bytes are counted
// once from the records.
func TestHostile_OlderRefusedRecordsAreCounted(t *testing.T) {
	s := newStore(t, Options{MaxRejectedBytes: 40 << 10})
	old := []Entry{junkEntry(t, 1, 15_000), junkEntry(t, 2, 15_000)}
	whole := map[uint64]Entry{}
	for _, e := range old {
		c := e
		c.Body, c.Env = slices.Clone(e.Body), &*e.Env
		whole[e.Seq] = c
	}
	mustAppend(t, s, old...)
	for _, seq := range []uint64{1, 2} {
		rewrite(t, s, kindRejected, seq, func(r *Record) {
			// As an older version kept it: the whole body and payload.
			r.version, r.BodySize, r.BodySHA256 = recordVersion, 0, [HashSize]byte{}
			r.Body, r.Payload = whole[seq].Body, whole[seq].Env.Payload
		}, true)
	}
	rawUpdate(t, s, func(tx *bolt.Tx) error {
		// An older version indexed refused records by every value, and
		// kept no byte counter.
		for _, seq := range []uint64{1, 2} {
			r, err := decodeRecord(tx.Bucket(kindRejected.rec).Get(seqKey(seq)), true)
			if err != nil {
				return err
			}
			for i := range numIx {
				if key, ok := indexKey(nil, r, i); ok {
					if err := tx.Bucket(kindRejected.ix[i]).Put(key, []byte{}); err != nil {
						return err
					}
				}
			}
		}
		return tx.Bucket(bucketMeta).Delete(metaBytesR)
	})
	if got := seqs(t, s, Query{Rejected: true, UUID: "u2"}); !slices.Equal(got, []uint64{2}) {
		t.Fatalf("query of an older refused record: %v", got)
	}
	if ps := verifyProblems(t, s); len(ps) > 0 {
		t.Fatalf("verify of version 1 refused records: %v", ps)
	}
	mustAppend(t, s, junkEntry(t, 3, 10_000), junkEntry(t, 4, 10_000))
	st, _ := s.Stats()
	if st.Evicted == 0 || st.RejectedBytes > 40<<10 {
		t.Fatalf("the older records were not counted: %+v", st)
	}
	if ps := verifyProblems(t, s); len(ps) > 0 {
		t.Fatalf("verify: %v", ps)
	}
}

func gapEntry(first, last uint64) Entry {
	return Entry{Seq: last, Gap: &Gap{First: first, Last: last, Seen: t0, Said: "gone"}}
}

// Gap records form a chain: one removed, changed, or made to cover a
// stored record is named by verify; Append never writes one twice.
func TestHostile_GapRecordsTampered(t *testing.T) {
	build := func(t *testing.T) *Store {
		s := newStore(t, Options{})
		k := testKey(t, 1)
		res := mustAppend(t, s, msgEntry(t, 1, k), gapEntry(2, 4), msgEntry(t, 5, k), gapEntry(6, 6), msgEntry(t, 7, k), gapEntry(8, 9), msgEntry(t, 10, k))
		if res.Gaps != 3 || res.Accepted != 4 {
			t.Fatalf("append: %+v", res)
		}
		// Again (a redelivery): nothing new.
		if res := mustAppend(t, s, gapEntry(2, 4), gapEntry(8, 9)); res.Gaps != 0 || res.Skipped != 2 {
			t.Fatalf("append again: %+v", res)
		}
		res2, err := s.Verify(func(p Problem) { t.Errorf("fresh store: %v", p) })
		if err != nil || len(res2.Gaps) != 3 || res2.GapSeqs != 6 {
			t.Fatalf("verify: %+v %v", res2, err)
		}
		return s
	}
	t.Run("removed", func(t *testing.T) {
		s := build(t)
		rawUpdate(t, s, func(tx *bolt.Tx) error { return tx.Bucket(bucketGap).Delete(seqKey(6)) })
		ps := verifyProblems(t, s)
		only(t, ps, "gap", 8, "follows the gap at seq 6")
		if !slices.ContainsFunc(ps, func(p Problem) bool { return strings.Contains(p.Detail, "counts 3 gap records, 2 found") }) {
			t.Fatalf("count not checked: %v", ps)
		}
	})
	t.Run("removed last", func(t *testing.T) {
		s := build(t)
		rawUpdate(t, s, func(tx *bolt.Tx) error { return tx.Bucket(bucketGap).Delete(seqKey(8)) })
		only(t, verifyProblems(t, s), "gap", 0, "after seq 6 are missing")
	})
	t.Run("edited", func(t *testing.T) {
		s := build(t)
		rawUpdate(t, s, func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketGap)
			v := slices.Clone(b.Get(seqKey(2)))
			v[len(v)-HashSize-1] ^= 1 // a letter of what the stream said
			return b.Put(seqKey(2), v)
		})
		only(t, verifyProblems(t, s), "edited", 2, "hash")
	})
	t.Run("covers a record", func(t *testing.T) {
		s := build(t)
		// Re-written with a correct hash and chain, but over seq 5: a
		// stored message hidden behind a gap.
		rawUpdate(t, s, func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketGap)
			g, _ := decodeGap(b.Get(seqKey(2)))
			g.Last = 5
			v, h := appendGap(nil, g)
			if err := b.Put(seqKey(2), v); err != nil {
				return err
			}
			g6, _ := decodeGap(b.Get(seqKey(6)))
			g6.PrevHash = h
			v6, h6 := appendGap(nil, g6)
			if err := b.Put(seqKey(6), v6); err != nil {
				return err
			}
			g8, _ := decodeGap(b.Get(seqKey(8)))
			g8.PrevHash = h6
			v8, h8 := appendGap(nil, g8)
			if err := b.Put(seqKey(8), v8); err != nil {
				return err
			}
			m := tx.Bucket(bucketMeta)
			if err := putU64(m, metaGapSeqs, 7); err != nil {
				return err
			}
			return m.Put(metaHeadG, link{8, h8}.bytes())
		})
		ps := verifyProblems(t, s)
		only(t, ps, "edited", 2, "covers accepted record seq 5")
		if len(ps) != 1 {
			t.Fatalf("problems %v", ps)
		}
	})
	t.Run("strings", func(t *testing.T) {
		g := Gap{First: 3, Last: 4, Seen: t0.Add(time.Hour), Said: "gone"}
		if got := g.String(); !strings.HasPrefix(got, "gap seq 3-4 (2 sequence(s)) never recorded: gone; seen ") {
			t.Fatalf("%q", got)
		}
	})
}

// A flood picks every value of its messages: refused records are in the
// time index only (no insert at a random place per record in the value
// indexes), and every filter still finds them.
func TestHostile_RefusedRecordsFoundWithoutValueIndexes(t *testing.T) {
	s := newStore(t, Options{})
	mallory := testKey(t, 3)
	var es []Entry
	for seq := uint64(1); seq <= 20; seq++ {
		e := msgEntry(t, seq, mallory, func(m *sign.Message) {
			m.Verb, m.Dest = fmt.Sprintf("v%d", seq%3), fmt.Sprintf("com.example.h%d", seq%2)
		})
		es = append(es, rejected(e, policy.ReasonUnknownSender))
	}
	mustAppend(t, s, es...)
	s.DB().View(func(tx *bolt.Tx) error {
		for i := ixTime + 1; i < numIx; i++ {
			if n := tx.Bucket(kindRejected.ix[i]).Stats().KeyN; n != 0 {
				t.Errorf("the refused %s index holds %d entries", ixNames[i], n)
			}
		}
		if n := tx.Bucket(kindRejected.ix[ixTime]).Stats().KeyN; n != 20 {
			t.Errorf("the refused time index holds %d entries", n)
		}
		return nil
	})
	for _, c := range []struct {
		q    Query
		want []uint64
	}{
		{Query{Rejected: true, UUID: "u7"}, []uint64{7}},
		{Query{Rejected: true, Verb: "v0"}, []uint64{3, 6, 9, 12, 15, 18}},
		{Query{Rejected: true, Sender: mallory.Public(), Since: t0.Add(18 * time.Second)}, []uint64{18, 19, 20}},
		{Query{Rejected: true, Dest: "com.example.h1", Until: t0.Add(5 * time.Second)}, []uint64{1, 3, 5}},
		{Query{Rejected: true, Verb: "v1", Reverse: true, Limit: 2}, []uint64{19, 16}},
	} {
		if got := seqs(t, s, c.q); !slices.Equal(got, c.want) {
			t.Errorf("%+v: %v, want %v", c.q, got, c.want)
		}
	}
	if ps := verifyProblems(t, s); len(ps) > 0 {
		t.Fatalf("verify: %v", ps)
	}
}
