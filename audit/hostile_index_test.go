package audit

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// queryWithin runs q on s and fails the test when it does not return
// within d (a query looping on a crafted file).
func queryWithin(t *testing.T, s *Store, q Query, d time.Duration) []uint64 {
	t.Helper()
	type result struct {
		seqs []uint64
		err  error
	}
	done := make(chan result, 1)
	go func() {
		var out []uint64
		err := s.Query(q, func(r *Record) error { out = append(out, r.Seq); return nil })
		done <- result{out, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.seqs
	case <-time.After(d):
		// The query holds its read transaction: the store cannot be
		// closed, and the test's cleanup would hang until go test's
		// timeout. A panic outside the test's goroutine ends the
		// binary at once.
		msg := fmt.Sprintf("query %+v still running after %s", q, d)
		go func() { panic(msg) }()
		select {}
	}
}

// TestHostile_DestIndexKeyWithoutTerminator: a key in the destination
// index whose value part does not end in the 0x00 0x01 terminator (the
// file written by hand) does not make a query by node name loop; the
// records are still found, and verify names the key.
func TestHostile_DestIndexKeyWithoutTerminator(t *testing.T) {
	for _, junk := range [][]byte{{0x05}, {'z'}, {'a', 0x02}, {'a', 0xff}, {0x02}} {
		s := chainStore(t)
		rawUpdate(t, s, func(tx *bolt.Tx) error {
			return tx.Bucket(kindAccepted.ix[ixDest]).Put(appendTimeSeq(slices.Clone(junk), 1, 1), []byte{})
		})
		got := queryWithin(t, s, Query{Dest: "com.example.host1"}, 5*time.Second)
		if want := []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}; !slices.Equal(got, want) {
			t.Errorf("junk %x: %v, want %v", junk, got, want)
		}
		found := false
		for _, p := range verifyProblems(t, s) {
			found = found || p.What == "index" && p.Seq == 1
		}
		if !found {
			t.Errorf("junk %x: verify does not name the key", junk)
		}
	}
}

// TestHostile_StrayEntriesAreNamedUpToABound: chunks crafted to hold
// hundreds of thousands of entries for records that are not there (two
// bytes each) do not make verify hold a problem for each (a 4 MB file made
// it allocate over a GB): the first are named, the rest counted in one
// problem.
func TestHostile_StrayEntriesAreNamedUpToABound(t *testing.T) {
	s := chainStore(t)
	prefix := appendValuePrefix(nil, []byte("ping"))
	v := bytes.Repeat([]byte{0, 1}, maxChunkRead-1)
	const chunks = 4
	rawUpdate(t, s, func(tx *bolt.Tx) error {
		for i := range chunks {
			k := entryKey(nil, prefix, ixEntry{1, uint64(1000 + i*maxChunkRead)})
			if err := tx.Bucket(kindAccepted.ix[ixVerb]).Put(k, v); err != nil {
				return err
			}
		}
		return nil
	})
	ps := verifyProblems(t, s)
	if len(ps) > 2*maxNamedStrays {
		t.Fatalf("%d problems for %d stray entries: each named", len(ps), chunks*maxChunkRead)
	}
	named, summed := 0, false
	for _, p := range ps {
		switch {
		case p.What != "index":
			t.Errorf("not an index problem: %v", p)
		case strings.Contains(p.Detail, "for a record that is not there"):
			named++
		case strings.Contains(p.Detail, fmt.Sprintf("%d more entries", chunks*maxChunkRead-maxNamedStrays)):
			summed = true
		}
	}
	if named != maxNamedStrays || !summed {
		t.Errorf("%d named, the rest summed up: %v; want %d named and the rest in one problem (%v ...)", named, summed, maxNamedStrays, ps[len(ps)-1])
	}
}

// TestHostile_KeyOutOfShapeDoesNotHideRecords: a key of a value's range
// (or, in the time index, of any length but 16) that is not an index key
// (the file written by hand) does not end a query's scan: the records on
// either side of it are still returned, forwards and backwards, and
// verify names the key.
func TestHostile_KeyOutOfShapeDoesNotHideRecords(t *testing.T) {
	prefix := appendValuePrefix(nil, []byte("ping"))
	mid := unixNano(t0.Add(5*time.Second)) + 1
	for _, c := range []struct {
		name string
		i    int
		key  []byte
		q    Query
	}{
		{"time index, one byte, after every key", ixTime, []byte("0"), Query{}},
		{"time index, 17 bytes, in the middle", ixTime, append(appendTimeSeq(nil, mid, 0), 7), Query{}},
		{"verb index, 17 bytes after the prefix, in the middle", ixVerb, append(entryKey(nil, prefix, ixEntry{mid, 0}), 7), Query{Verb: "ping"}},
		{"verb index, after the run", ixVerb, append(slices.Clone(prefix), bytes.Repeat([]byte{0xff}, 20)...), Query{Verb: "ping"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := chainStore(t)
			// Chunks split into keys of their own, the key between.
			toFormat1(t, s)
			rawUpdate(t, s, func(tx *bolt.Tx) error {
				return tx.Bucket(kindAccepted.ix[c.i]).Put(c.key, []byte{})
			})
			for _, rev := range []bool{false, true} {
				q := c.q
				q.Reverse = rev
				want := []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
				if rev {
					slices.Reverse(want)
				}
				if got := queryWithin(t, s, q, 5*time.Second); !slices.Equal(got, want) {
					t.Errorf("reverse %v: %v, want %v", rev, got, want)
				}
				q.Since = t0.Add(3 * time.Second)
				q.Until = t0.Add(8 * time.Second)
				want = []uint64{3, 4, 5, 6, 7, 8}
				if rev {
					slices.Reverse(want)
				}
				if got := queryWithin(t, s, q, 5*time.Second); !slices.Equal(got, want) {
					t.Errorf("reverse %v, 3s to 8s: %v, want %v", rev, got, want)
				}
			}
			if len(verifyProblems(t, s)) == 0 {
				t.Error("verify does not name the key")
			}
		})
	}
}

// TestHostile_StatsStepOverKeysOutOfShape: a key of another length than
// 16 bytes first or last in a time index (written by hand) does not make
// stats miss the first or last record.
func TestHostile_StatsStepOverKeysOutOfShape(t *testing.T) {
	s := chainStore(t) // accepted at t0+1s..10s, refused at t0+11s..13s
	rawUpdate(t, s, func(tx *bolt.Tx) error {
		if err := tx.Bucket(kindAccepted.ix[ixTime]).Put([]byte{0}, []byte{}); err != nil {
			return err
		}
		return tx.Bucket(kindRejected.ix[ixTime]).Put([]byte("0"), []byte{})
	})
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if first, last := t0.Add(time.Second), t0.Add(13*time.Second); !st.First.Equal(first) || !st.Last.Equal(last) {
		t.Errorf("first %s last %s, want %s and %s", st.First, st.Last, first, last)
	}
}

// TestHostile_AppendAfterAKeyOutOfShape: a key in a run's range that is
// not an index key, after the run's last key (written by hand), is not
// taken for the end of the run: entries appended later with the clock
// stepped back still go in keys of their own and split the chunk they
// fall into, so that queries return them in order and verify names only
// the hand-written key.
func TestHostile_AppendAfterAKeyOutOfShape(t *testing.T) {
	prefix := appendValuePrefix(nil, []byte("ping"))
	for _, c := range []struct {
		name string
		i    int
		key  []byte
		q    Query
	}{
		{"time index", ixTime, bytes.Repeat([]byte{0xff}, 15), Query{}},
		{"verb index", ixVerb, append(slices.Clone(prefix), bytes.Repeat([]byte{0xff}, 15)...), Query{Verb: "ping"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := chainStore(t) // accepted at t0+1s..10s, one chunk
			rawUpdate(t, s, func(tx *bolt.Tx) error {
				return tx.Bucket(kindAccepted.ix[c.i]).Put(c.key, []byte{})
			})
			k := testKey(t, 1)
			var more []Entry
			for seq := uint64(14); seq <= 16; seq++ {
				e := msgEntry(t, seq, k)
				e.Stored = t0.Add(5*time.Second + time.Duration(seq)*time.Millisecond) // the clock back
				more = append(more, e)
			}
			mustAppend(t, s, more...)
			want := []uint64{1, 2, 3, 4, 5, 14, 15, 16, 6, 7, 8, 9, 10}
			if got := seqs(t, s, c.q); !slices.Equal(got, want) {
				t.Errorf("%v, want %v", got, want)
			}
			for _, p := range verifyProblems(t, s) {
				if !strings.Contains(p.Detail, "holds a key of 15 bytes") && !strings.Contains(p.Detail, fmt.Sprintf("(%x)", c.key)) {
					t.Errorf("problem besides the hand-written key: %v", p)
				}
			}
		})
	}
}

// TestHostile_VerifyNamesOnlyTheKeyOutOfShape: a hand-written key of
// another length inside a chunk's span is named, and the records whose
// entries the chunk holds are not said to miss them.
func TestHostile_VerifyNamesOnlyTheKeyOutOfShape(t *testing.T) {
	prefix := appendValuePrefix(nil, []byte("ping"))
	mid := unixNano(t0.Add(5500 * time.Millisecond))
	for _, c := range []struct {
		name string
		i    int
		key  []byte
	}{
		{"time index", ixTime, append(appendTimeSeq(nil, mid, 0), 7)},
		{"verb index", ixVerb, append(entryKey(nil, prefix, ixEntry{mid, 0}), 7)},
		{"verb index, after the run", ixVerb, append(slices.Clone(prefix), bytes.Repeat([]byte{0xff}, 15)...)},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := chainStore(t) // accepted at t0+1s..10s, one chunk
			rawUpdate(t, s, func(tx *bolt.Tx) error {
				return tx.Bucket(kindAccepted.ix[c.i]).Put(c.key, []byte{})
			})
			ps := verifyProblems(t, s)
			for _, p := range ps {
				if !strings.Contains(p.Detail, fmt.Sprintf("(%x)", c.key)) {
					t.Errorf("problem besides the hand-written key: %v", p)
				}
			}
			if len(ps) == 0 {
				t.Error("the key is not named")
			}
		})
	}
}
