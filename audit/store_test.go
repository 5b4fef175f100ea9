package audit

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/sign"
)

func TestRecord_RoundTrip(t *testing.T) {
	k := testKey(t, 1)
	for _, e := range []Entry{
		msgEntry(t, 7, k),
		msgEntry(t, 8, k, func(m *sign.Message) {
			m.Kind, m.RequestID, m.ResponderDest, m.ExitCode = sign.KindReply, [32]byte{1, 2}, "com.example.r", -3
			m.Payload = []byte{0, 0xff, '\n'}
		}),
		{Seq: 9, Stored: t0, Subject: "remaphore.msg.all", Body: []byte("garbage"), Reason: policy.ReasonMalformed, Detail: "x"},
	} {
		r := e.record()
		r.PrevSeq, r.PrevHash = 3, [32]byte{9}
		v, h := appendRecord(nil, r)
		r.Hash = h
		got, err := decodeRecord(v, true)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkRecord(v, got); err != nil {
			t.Fatalf("seq %d: %v", e.Seq, err)
		}
		again, _ := appendRecord(nil, got)
		if !bytes.Equal(again, v) {
			t.Fatalf("seq %d: re-encoding differs", e.Seq)
		}
		if e.Env != nil {
			if f := got.sameFields(e.Env); f != "" {
				t.Fatalf("seq %d: field %s differs after the round trip", e.Seq, f)
			}
		}
		// Any changed byte is caught by the hash or the parser.
		for i := range v {
			bad := slices.Clone(v)
			bad[i] ^= 0x01
			r2, err := decodeRecord(bad, false)
			if err == nil && checkRecord(bad, r2) == nil {
				t.Fatalf("seq %d: byte %d flipped and the record still checks", e.Seq, i)
			}
		}
	}
}

func TestStore_AppendSkipsStoredSequences(t *testing.T) {
	s := newStore(t, Options{})
	k := testKey(t, 1)
	var all []Entry
	for seq := uint64(1); seq <= 15; seq++ {
		all = append(all, msgEntry(t, seq, k))
	}
	if res := mustAppend(t, s, all[:10]...); res.Accepted != 10 || res.Last != 10 {
		t.Fatalf("first append: %+v", res)
	}
	// A redelivery of 5..10 with 11..15: only the new ones are stored.
	res := mustAppend(t, s, all[4:]...)
	if res.Accepted != 5 || res.Skipped != 6 || res.Last != 15 {
		t.Fatalf("second append: %+v", res)
	}
	// The same again: nothing.
	if res := mustAppend(t, s, all...); res.Accepted != 0 || res.Skipped != 15 {
		t.Fatalf("third append: %+v", res)
	}
	last, stored, err := s.Last()
	if err != nil || last != 15 || !stored.Equal(all[14].Stored) {
		t.Fatalf("Last = %d %v %v", last, stored, err)
	}
	if got := seqs(t, s, Query{}); len(got) != 15 {
		t.Fatalf("%d records, want 15", len(got))
	}
	if ps := verifyProblems(t, s); len(ps) > 0 {
		t.Fatalf("verify: %v", ps)
	}
}

func TestStore_ReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.db")
	if _, err := Open(path, Options{ReadOnly: true, Timeout: 100 * time.Millisecond}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("read-only open of a missing file: %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(path); err == nil {
		t.Fatal("a read-only open created the file")
	}
	w, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, w, msgEntry(t, 1, testKey(t, 1)))
	if err := w.Check(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	r := openAt(t, path, Options{ReadOnly: true})
	if _, err := r.Append([]Entry{msgEntry(t, 2, testKey(t, 1))}); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("append on a read-only store: %v", err)
	}
	// Two readers at once.
	r2 := openAt(t, path, Options{ReadOnly: true, Timeout: time.Second})
	if got := seqs(t, r2, Query{}); !slices.Equal(got, []uint64{1}) {
		t.Fatalf("second reader sees %v", got)
	}
}

func TestStore_SecondWriterGetsErrBusy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.db")
	openAt(t, path, Options{})
	start := time.Now()
	_, err := Open(path, Options{Timeout: 200 * time.Millisecond})
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("second writer: %v, want ErrBusy", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("second writer waited %s", d)
	}
	// A reader too.
	if _, err := Open(path, Options{ReadOnly: true, Timeout: 100 * time.Millisecond}); !errors.Is(err, ErrBusy) {
		t.Fatalf("reader while writing: %v, want ErrBusy", err)
	}
}

func TestStore_LockDaemon(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.db")
	l, err := LockDaemon(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LockDaemon(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: %v, want ErrLocked", err)
	}
	l.Release()
	l2, err := LockDaemon(path)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	l2.Release()
}

func TestStore_RefusesOtherFiles(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "text")
	os.WriteFile(text, bytes.Repeat([]byte("not a database\n"), 1000), 0o600)
	if _, err := Open(text, Options{ReadOnly: true, Timeout: time.Second}); !errors.Is(err, ErrNotAudit) {
		t.Fatalf("text file: %v, want ErrNotAudit", err)
	}
	other := filepath.Join(dir, "other.db")
	db, err := bolt.Open(other, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("x")); return err })
	db.Close()
	for _, ro := range []bool{false, true} {
		if _, err := Open(other, Options{ReadOnly: ro, Timeout: time.Second}); !errors.Is(err, ErrNotAudit) {
			t.Fatalf("another bbolt file (read-only %v): %v, want ErrNotAudit", ro, err)
		}
	}
}

func TestStore_RejectedCapEvictsOldest(t *testing.T) {
	s := newStore(t, Options{MaxRejected: 5})
	alice, mallory := testKey(t, 1), testKey(t, 3)
	var seq uint64
	next := func() uint64 { seq++; return seq }
	for range 4 {
		var batch []Entry
		for range 3 {
			batch = append(batch, rejected(msgEntry(t, next(), mallory, func(m *sign.Message) { m.Verb = "evil" }), policy.ReasonUnknownSender))
			batch = append(batch, msgEntry(t, next(), alice))
		}
		mustAppend(t, s, batch...)
	}
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Accepted != 12 || st.Rejected != 5 || st.Evicted != 7 {
		t.Fatalf("stats: %d accepted, %d rejected, %d evicted; want 12, 5, 7", st.Accepted, st.Rejected, st.Evicted)
	}
	got := seqs(t, s, Query{Rejected: true})
	if want := []uint64{15, 17, 19, 21, 23}; !slices.Equal(got, want) {
		t.Fatalf("refused records %v, want the newest %v", got, want)
	}
	// The evicted records' index entries are gone too.
	if got := seqs(t, s, Query{Rejected: true, Verb: "evil"}); len(got) != 5 {
		t.Fatalf("verb index after eviction: %v", got)
	}
	if got := seqs(t, s, Query{Rejected: true, UUID: "u1"}); len(got) != 0 {
		t.Fatalf("uuid index still finds evicted seq 1: %v", got)
	}
	for _, c := range st.Verbs {
		if c.Name == "evil" && c.Rejected != 5 {
			t.Fatalf("counter for evil: %+v", c)
		}
	}
	if ps := verifyProblems(t, s); len(ps) > 0 {
		t.Fatalf("eviction made verify fail: %v", ps)
	}
}

func TestStore_Stats(t *testing.T) {
	s := newStore(t, Options{})
	alice, bob := testKey(t, 1), testKey(t, 2)
	deploy := func(m *sign.Message) { m.Verb = "deploy" }
	mustAppend(t, s,
		msgEntry(t, 1, alice),
		msgEntry(t, 2, alice, deploy),
		msgEntry(t, 3, bob),
		rejected(msgEntry(t, 4, bob, deploy), policy.ReasonVerbNotAllowed),
		Entry{Seq: 5, Stored: t0, Body: []byte("junk"), Reason: policy.ReasonMalformed},
	)
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Accepted != 3 || st.Rejected != 2 || st.LastSeq != 5 || st.Head.Seq != 3 || st.RejectedHead.Seq != 5 {
		t.Fatalf("stats %+v", st)
	}
	want := map[string][2]uint64{"ping": {2, 0}, "deploy": {1, 1}}
	for _, c := range st.Verbs {
		if w, ok := want[c.Name]; !ok || w != [2]uint64{c.Accepted, c.Rejected} {
			t.Fatalf("verb %+v", c)
		}
	}
	verdicts := map[string]uint64{}
	for _, c := range st.Verdicts {
		verdicts[c.Name] = c.Accepted + c.Rejected
	}
	if verdicts["accepted"] != 3 || verdicts["verb-not-allowed"] != 1 || verdicts["malformed"] != 1 {
		t.Fatalf("verdicts %v", verdicts)
	}
	if len(st.Senders) != 2 {
		t.Fatalf("senders %+v", st.Senders)
	}
}

func TestRecord_GarbageIsErrCorrupt(t *testing.T) {
	for _, v := range [][]byte{nil, []byte("short"), bytes.Repeat([]byte{0xff}, 100)} {
		if _, err := decodeRecord(v, false); !errors.Is(err, ErrCorrupt) {
			t.Errorf("decode %q: %v, want ErrCorrupt", v, err)
		}
	}
}
