package audit

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/sign"
)

// chainStore holds accepted records 1..10 and refused 11..13.
func chainStore(t *testing.T) *Store {
	t.Helper()
	s := newStore(t, Options{})
	k, mallory := testKey(t, 1), testKey(t, 3)
	var es []Entry
	for seq := uint64(1); seq <= 10; seq++ {
		es = append(es, msgEntry(t, seq, k))
	}
	for seq := uint64(11); seq <= 13; seq++ {
		es = append(es, rejected(msgEntry(t, seq, mallory), policy.ReasonUnknownSender))
	}
	mustAppend(t, s, es...)
	if ps := verifyProblems(t, s); len(ps) > 0 {
		t.Fatalf("fresh store: %v", ps)
	}
	return s
}

func rawUpdate(t *testing.T, s *Store, fn func(tx *bolt.Tx) error) {
	t.Helper()
	if err := s.DB().Update(fn); err != nil {
		t.Fatal(err)
	}
}

// rewrite changes record seq of kind k with mutate and stores it with a
// correct hash; with rechain every later record of the chain and the head
// are re-linked too (an attacker who rewrites the rest of the chain).
func rewrite(t *testing.T, s *Store, k *kind, seq uint64, mutate func(*Record), rechain bool) {
	t.Helper()
	rawUpdate(t, s, func(tx *bolt.Tx) error {
		b := tx.Bucket(k.rec)
		c := b.Cursor()
		var prev *link
		for key, v := c.Seek(seqKey(seq)); key != nil; key, v = c.Next() {
			r, err := decodeRecord(v, true)
			if err != nil {
				return err
			}
			if r.Seq == seq {
				mutate(r)
			} else if !rechain {
				break
			}
			if prev != nil {
				r.PrevSeq, r.PrevHash = prev.seq, prev.hash
			}
			nv, h := appendRecord(nil, r)
			if err := b.Put(slices.Clone(key), nv); err != nil {
				return err
			}
			prev = &link{r.Seq, h}
		}
		if rechain {
			head := metaHeadA
			if k == kindRejected {
				head = metaHeadR
			}
			return tx.Bucket(bucketMeta).Put(head, prev.bytes())
		}
		return nil
	})
}

func only(t *testing.T, ps []Problem, what string, seq uint64, detail ...string) {
	t.Helper()
	found := false
	for _, p := range ps {
		if p.What == what && p.Seq == seq {
			found = true
			for _, d := range detail {
				if !strings.Contains(p.Detail, d) {
					t.Errorf("problem %q does not say %q", p, d)
				}
			}
		}
	}
	if !found {
		t.Fatalf("no %s problem for seq %d in %v", what, seq, ps)
	}
}

func TestVerify_ChangedByte(t *testing.T) {
	for _, field := range []string{"body", "payload", "verb", "reason"} {
		t.Run(field, func(t *testing.T) {
			s := chainStore(t)
			rawUpdate(t, s, func(tx *bolt.Tx) error {
				b := tx.Bucket(kindAccepted.rec)
				v := slices.Clone(b.Get(seqKey(4)))
				var i int
				switch field {
				case "body":
					i = bytes.LastIndex(v, []byte("payload 4")) // the copy in the body
				case "payload":
					i = bytes.Index(v, []byte("payload 4")) // the decoded field
				case "verb":
					i = bytes.Index(v, []byte("ping"))
				case "reason":
					i = bytes.Index(v, []byte("accepted"))
				}
				v[i+1] ^= 0x20
				return b.Put(seqKey(4), v)
			})
			ps := verifyProblems(t, s)
			only(t, ps, "edited", 4, "hash does not match")
			for _, p := range ps {
				if p.Seq != 4 {
					t.Errorf("problem outside seq 4: %v", p)
				}
			}
		})
	}
}

func TestVerify_DeletedRecordIsAGap(t *testing.T) {
	s := chainStore(t)
	// The attacker deletes seq 5 and 6 with their index entries and fixes
	// the count: only the chain tells.
	rawUpdate(t, s, func(tx *bolt.Tx) error {
		w := openKind(tx, kindAccepted)
		for _, seq := range []uint64{5, 6} {
			r, _ := decodeRecord(w.rec.Get(seqKey(seq)), true)
			for i := range w.ix {
				if k, ok := indexKey(nil, r, i); ok {
					if err := deleteIndexEntry(w.ix[i], k); err != nil {
						return err
					}
				}
			}
			w.rec.Delete(seqKey(seq))
		}
		return putU64(tx.Bucket(bucketMeta), metaCountA, 8)
	})
	ps := verifyProblems(t, s)
	if len(ps) != 1 {
		t.Fatalf("problems %v, want one gap", ps)
	}
	only(t, ps, "gap", 7, "between seq 4 and seq 7", "follows seq 6")
}

func TestVerify_DeletedRecordLeavesIndexEntries(t *testing.T) {
	s := chainStore(t)
	rawUpdate(t, s, func(tx *bolt.Tx) error { return tx.Bucket(kindAccepted.rec).Delete(seqKey(3)) })
	ps := verifyProblems(t, s)
	only(t, ps, "gap", 4, "between seq 2 and seq 4")
	only(t, ps, "index", 3, "not there")
	only(t, ps, "head", 0, "counts 10 records, 9 found")
}

func TestVerify_DeletedFirstAndLast(t *testing.T) {
	s := chainStore(t)
	rawUpdate(t, s, func(tx *bolt.Tx) error {
		b := tx.Bucket(kindAccepted.rec)
		b.Delete(seqKey(1))
		return b.Delete(seqKey(10))
	})
	ps := verifyProblems(t, s)
	only(t, ps, "gap", 2, "before seq 2")
	only(t, ps, "gap", 0, "after seq 9", "head is seq 10")
}

func TestVerify_RehashedEditBreaksTheNextLink(t *testing.T) {
	s := chainStore(t)
	rewrite(t, s, kindAccepted, 6, func(r *Record) { r.Detail = "nothing to see" }, false)
	ps := verifyProblems(t, s)
	only(t, ps, "link", 7, "seq 6 was changed")
}

func TestVerify_RewrittenChainStillFailsTheSignature(t *testing.T) {
	s := chainStore(t)
	// Change the payload in the body and in the field, and re-link the
	// whole rest of the chain and the head: only the signature tells.
	rewrite(t, s, kindAccepted, 5, func(r *Record) {
		i := bytes.Index(r.Body, []byte("payload 5"))
		r.Body[i] = 'P'
		r.Payload[0] = 'P'
	}, true)
	ps := verifyProblems(t, s)
	if len(ps) != 1 {
		t.Fatalf("problems %v", ps)
	}
	only(t, ps, "signature", 5, "does not verify")
}

func TestVerify_FieldsMustMatchTheBody(t *testing.T) {
	s := chainStore(t)
	rewrite(t, s, kindAccepted, 2, func(r *Record) { r.Verb = "deploy" }, true)
	rewrite(t, s, kindRejected, 12, func(r *Record) { r.UUID = "other" }, true)
	ps := verifyProblems(t, s)
	// The index entries no longer match the records either.
	only(t, ps, "fields", 2, "stored verb")
	only(t, ps, "fields", 12, "stored uuid")
	only(t, ps, "index", 2, "verb index")
}

func TestVerify_AcceptedRecordWithForgedBody(t *testing.T) {
	s := chainStore(t)
	mallory := testKey(t, 3)
	forged := msgEntry(t, 3, mallory)
	rewrite(t, s, kindAccepted, 3, func(r *Record) {
		// Mallory's own valid signature, but claiming alice's key.
		sig := forged.Body[len(forged.Body)-64:]
		e := *forged.Env
		e.Sender = testKey(t, 1).Public()
		signed, _ := e.Message.Marshal()
		r.Body = append(signed, sig...)
		r.Sender = e.Sender
		r.Payload = e.Payload
	}, true)
	only(t, verifyProblems(t, s), "signature", 3)
}

func TestVerify_RejectedChain(t *testing.T) {
	s := chainStore(t)
	rawUpdate(t, s, func(tx *bolt.Tx) error { return tx.Bucket(kindRejected.rec).Delete(seqKey(12)) })
	ps := verifyProblems(t, s)
	only(t, ps, "gap", 13, "between seq 11 and seq 13")
	for _, p := range ps {
		if p.Kind != "rejected" {
			t.Errorf("problem in the accepted chain: %v", p)
		}
	}
}

func TestVerify_StrayIndexEntry(t *testing.T) {
	s := chainStore(t)
	rawUpdate(t, s, func(tx *bolt.Tx) error {
		k := appendTimeSeq(appendValuePrefix(nil, []byte("ping")), 1, 99)
		return tx.Bucket(kindAccepted.ix[ixVerb]).Put(k, []byte{})
	})
	only(t, verifyProblems(t, s), "index", 99, "verb index")
}

func TestVerify_ProblemStrings(t *testing.T) {
	for _, c := range []struct {
		p    Problem
		want string
	}{
		{Problem{Kind: "accepted", Seq: 4, What: "edited", Detail: "x"}, "accepted record seq 4: edited: x"},
		{Problem{Kind: "accepted", What: "gap", Detail: "y"}, "accepted chain: gap: y"},
		{Problem{What: "structure", Detail: "z"}, "structure: z"},
	} {
		if got := c.p.String(); got != c.want {
			t.Errorf("%q, want %q", got, c.want)
		}
	}
}

func TestVerify_Signatures(t *testing.T) {
	// A larger store, so the workers share the signatures out.
	s := newStore(t, Options{})
	k := testKey(t, 1)
	var es []Entry
	for seq := uint64(1); seq <= 500; seq++ {
		es = append(es, msgEntry(t, seq, k, func(m *sign.Message) { m.Verb = fmt.Sprintf("v%d", seq%7) }))
	}
	mustAppend(t, s, es...)
	res, err := s.Verify(func(p Problem) { t.Errorf("problem: %v", p) })
	if err != nil || res.Accepted != 500 || res.Head.Seq != 500 {
		t.Fatalf("verify: %+v %v", res, err)
	}
}
