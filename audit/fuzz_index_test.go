package audit

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/remaphore/remaphore/sign"
)

// fuzzIndexStore writes the store FuzzCraftedIndex starts from: 60
// accepted records of three verbs and destinations, in commits with
// chunks, one with its clock stepping back (keys of their own and a
// split chunk). It returns the file's bytes and the records.
func fuzzIndexStore(f *testing.F) ([]byte, []*Record) {
	path := filepath.Join(f.TempDir(), "tmpl.db")
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		f.Fatal(err)
	}
	verbs := []string{"de", "deploy", "de\x00"}
	dests := []string{"**", "com.example.*", "org.*.db"}
	k := testKey(f, 1)
	var all []*Record
	at := t0
	for _, batch := range [][2]int{{1, 25}, {26, 40}, {41, 60}} {
		var es []Entry
		for seq := batch[0]; seq <= batch[1]; seq++ {
			switch {
			case seq == 45:
				at = at.Add(-7 * time.Second)
			case seq%4 != 0:
				at = at.Add(time.Second)
			}
			e := msgEntry(f, uint64(seq), k, func(m *sign.Message) {
				m.Verb, m.Dest = verbs[seq%3], dests[seq%5%3]
			})
			e.Stored = at
			es = append(es, e)
			all = append(all, e.record())
		}
		if _, err := s.Append(es); err != nil {
			f.Fatal(err)
		}
	}
	s.Close()
	data, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	return data, all
}

// fuzzOps rewrites an index bucket of b as ops say. Each op is a byte
// then its arguments:
//
//	0 i        delete the i-th key
//	1 p r d v  put a key: value prefix p, record r's entry moved by d
//	           nanoseconds (signed), with chunk value v
//	2 i v      put chunk value v under the i-th key
//	3 k v      put raw key k with value v
//
// where v and k are a length byte then that many bytes.
func fuzzOps(b *bolt.Bucket, prefixes [][]byte, all []*Record, ops []byte) error {
	next := func() byte {
		if len(ops) == 0 {
			return 0
		}
		c := ops[0]
		ops = ops[1:]
		return c
	}
	bytesArg := func() []byte {
		n := min(int(next()), len(ops))
		v := slices.Clone(ops[:n])
		ops = ops[n:]
		return v
	}
	nth := func(i byte) []byte {
		var keys [][]byte
		b.ForEach(func(k, _ []byte) error { keys = append(keys, slices.Clone(k)); return nil })
		if len(keys) == 0 {
			return nil
		}
		return keys[int(i)%len(keys)]
	}
	for len(ops) > 0 {
		switch next() % 4 {
		case 0:
			if k := nth(next()); k != nil {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
		case 1:
			p := prefixes[int(next())%len(prefixes)]
			r := all[int(next())%len(all)]
			e := ixEntry{unixNano(r.Stored) + uint64(int64(int8(next()))), r.Seq}
			if err := b.Put(entryKey(nil, p, e), bytesArg()); err != nil {
				return err
			}
		case 2:
			k, v := nth(next()), bytesArg()
			if k != nil {
				if err := b.Put(k, v); err != nil {
					return err
				}
			}
		case 3:
			k, v := bytesArg(), bytesArg()
			if len(k) > 0 {
				if err := b.Put(k, v); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// FuzzCraftedIndex rewrites the time, verb or destination index of a
// store (a file handed over by someone who can write it): stats, verify,
// queries and a later append must neither crash nor hang, and when
// verify finds nothing wrong the queries and stats must answer as the
// records say.
func FuzzCraftedIndex(f *testing.F) {
	data, all := fuzzIndexStore(f)
	f.Add(uint8(0), []byte{})
	f.Add(uint8(1), []byte{0, 0})
	f.Add(uint8(1), []byte{2, 0, 2, 0x80, 0x01})
	f.Add(uint8(1), []byte{1, 1, 10, 0, 0})
	f.Add(uint8(2), []byte{3, 1, 0x05, 0})
	f.Add(uint8(2), append([]byte{3, 18, 'a', 0xff}, make([]byte, 17)...))
	f.Add(uint8(0), []byte{1, 0, 30, 0, 2, 0, 1, 2, 0, 4, 0, 1, 0, 1})
	f.Add(uint8(1), []byte{2, 0, 4, 0, 1, 0, 1, 1, 1, 3, 0, 0})
	ixs := []int{ixTime, ixVerb, ixDest}
	f.Fuzz(func(t *testing.T, which uint8, ops []byte) {
		i := ixs[int(which)%len(ixs)]
		path := filepath.Join(t.TempDir(), "audit.db")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(path, Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var prefixes [][]byte
		for _, r := range all {
			if v := indexValue(r, i); v != nil {
				p := []byte{}
				if i != ixTime {
					p = appendValuePrefix(nil, v)
				}
				if !slices.ContainsFunc(prefixes, func(q []byte) bool { return string(q) == string(p) }) {
					prefixes = append(prefixes, p)
				}
			}
		}
		if err := s.db.Update(func(tx *bolt.Tx) error {
			return fuzzOps(tx.Bucket(kindAccepted.ix[i]), prefixes, all, ops)
		}); err != nil {
			t.Fatal(err)
		}
		watchdog(t, 20*time.Second, func() { fuzzCheck(t, s, all) })
		// A later append: its entries are found, whatever the file held.
		k := testKey(t, 1)
		var more []Entry
		last := all[len(all)-1].Stored
		for seq := uint64(61); seq <= 64; seq++ {
			e := msgEntry(t, seq, k, func(m *sign.Message) { m.Verb, m.Dest = "de", "org.*.db" })
			e.Stored = last.Add(time.Duration(seq-62) * time.Second)
			more = append(more, e)
		}
		if _, err := s.Append(more); err != nil {
			t.Fatal(err)
		}
		watchdog(t, 20*time.Second, func() {
			for _, q := range []Query{{Verb: "de", Since: last.Add(-time.Second)}, {Since: last.Add(-time.Second), Reverse: true}, {Dest: "org.x.db", Since: last.Add(-time.Second)}} {
				got := seqs(t, s, q)
				for _, e := range more {
					if !slices.Contains(got, e.Seq) {
						t.Errorf("after an append, %+v misses seq %d: %v", q, e.Seq, got)
					}
				}
			}
		})
	})
}

// fuzzCheck runs stats, verify and queries on s; when verify finds
// nothing wrong, their answers must be the records'.
func fuzzCheck(t *testing.T, s *Store, all []*Record) {
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	clean := len(verifyProblems(t, s)) == 0
	lo, hi := all[0].Stored, all[0].Stored
	for _, r := range all {
		lo, hi = minTime(lo, r.Stored), maxTime(hi, r.Stored)
	}
	if clean && (!st.First.Equal(lo) || !st.Last.Equal(hi)) {
		t.Errorf("verify clean, but stats: first %s last %s, want %s and %s", st.First, st.Last, lo, hi)
	}
	var qs []Query
	for _, f := range []Query{{}, {Verb: "de"}, {Verb: "deploy"}, {Verb: "de\x00"}, {Dest: "org.x.db"}, {Dest: "com.example.*"}} {
		for _, r := range []bool{false, true} {
			for _, since := range []time.Duration{-1, 10 * time.Second, 33 * time.Second} {
				q := f
				q.Reverse = r
				if since >= 0 {
					q.Since = t0.Add(since)
				}
				qs = append(qs, q)
				q.Until = t0.Add(since + 15*time.Second)
				qs = append(qs, q)
			}
		}
	}
	for _, q := range qs {
		got := seqs(t, s, q)
		if want := model(all, q); clean && !slices.Equal(got, want) {
			t.Errorf("verify clean, but %s:\n got %v\nwant %v", fmt.Sprintf("%+q", fmt.Sprintf("%+v", q)), got, want)
		}
	}
}

// watchdog runs fn and ends the test binary when fn does not return
// within d (a read transaction left open would hang the test's cleanup).
func watchdog(t *testing.T, d time.Duration, fn func()) {
	t.Helper()
	done := make(chan struct{})
	timer := time.AfterFunc(d, func() {
		select {
		case <-done:
		default:
			panic(fmt.Sprintf("%s: still running after %s", t.Name(), d))
		}
	})
	defer timer.Stop()
	fn()
	close(done)
}
