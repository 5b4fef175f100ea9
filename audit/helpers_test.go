package audit

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/sign"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func testKey(t testing.TB, b byte) sign.PrivateKey {
	t.Helper()
	k, err := sign.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{b}, 64)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newStore opens a writable store under t.TempDir() and checks the file's
// structure when the test ends.
func newStore(t testing.TB, o Options) *Store {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "audit.db"), o)
}

// openAt opens path and registers the integrity check and close.
func openAt(t testing.TB, path string, o Options) *Store {
	t.Helper()
	s, err := Open(path, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Check(); err != nil {
			t.Errorf("bbolt check of %s: %v", path, err)
		}
		s.Close()
	})
	return s
}

// msgEntry makes an accepted entry for a message signed by key, stored at
// t0 + seq seconds.
func msgEntry(t testing.TB, seq uint64, key sign.PrivateKey, mods ...func(*sign.Message)) Entry {
	t.Helper()
	at := t0.Add(time.Duration(seq) * time.Second)
	m := &sign.Message{Kind: sign.KindMsg, Root: "remaphore", Channel: "all", Dest: "**", Verb: "ping",
		UUID: fmt.Sprintf("u%d", seq), Sent: at, Payload: []byte(fmt.Sprintf("payload %d", seq))}
	for _, mod := range mods {
		mod(m)
	}
	env, err := sign.Seal(m, key)
	if err != nil {
		t.Fatal(err)
	}
	return Entry{Seq: seq, Stored: at, Subject: "remaphore.msg." + m.Channel, HeaderID: env.ID, Body: env.Body(),
		Reason: policy.ReasonAccepted, Env: env, SenderDest: "com.example.sender"}
}

// rejected turns e into a refusal with reason r.
func rejected(e Entry, r policy.Reason) Entry {
	e.Reason, e.Detail = r, "test refusal "+r.String()
	if r == policy.ReasonUnknownSender {
		e.SenderDest = ""
	}
	return e
}

func mustAppend(t testing.TB, s *Store, entries ...Entry) AppendResult {
	t.Helper()
	res, err := s.Append(entries)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// verifyProblems runs Verify and returns its problems.
func verifyProblems(t testing.TB, s *Store) []Problem {
	t.Helper()
	var ps []Problem
	if _, err := s.Verify(func(p Problem) { ps = append(ps, p) }); err != nil {
		t.Fatal(err)
	}
	return ps
}

func seqs(t testing.TB, s *Store, q Query) []uint64 {
	t.Helper()
	var out []uint64
	if err := s.Query(q, func(r *Record) error { out = append(out, r.Seq); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// deleteIndexEntry deletes the entry with key from index bucket b, as an
// attacker who knows the format would: a key of its own is deleted, an
// entry in a chunk is taken out of it (the chunk rewritten without it).
func deleteIndexEntry(b *bolt.Bucket, key []byte) error {
	prefix, stored, seq, _ := splitIndexKey(key)
	c := b.Cursor()
	k, v := c.Seek(key)
	if !bytes.Equal(k, key) {
		if k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
	}
	if !inRun(k, prefix) {
		return nil
	}
	k = bytes.Clone(k)
	_, cs, cq, _ := splitIndexKey(k)
	es, err := decodeChunk(nil, ixEntry{cs, cq}, v)
	if err != nil {
		return err
	}
	es = slices.DeleteFunc(es, func(e ixEntry) bool { return e == ixEntry{stored, seq} })
	if err := b.Delete(k); err != nil || len(es) == 0 {
		return err
	}
	return b.Put(entryKey(nil, prefix, es[0]), appendChunk([]byte{}, es))
}
