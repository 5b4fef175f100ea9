package audit

import (
	"slices"
	"testing"

	"github.com/remaphore/remaphore/policy"
)

// TestSealer: records sealed ahead are stored as Append would encode them;
// a Sealer out of step with the store (another write between, a skipped
// entry) only costs Append the encoding, never a wrong link.
func TestSealer(t *testing.T) {
	k, mallory := testKey(t, 1), testKey(t, 3)
	batch := func(from, to uint64) []Entry {
		var es []Entry
		for seq := from; seq <= to; seq++ {
			e := msgEntry(t, seq, k)
			if seq%4 == 0 {
				e = rejected(msgEntry(t, seq, mallory), policy.ReasonUnknownSender)
			}
			es = append(es, e)
		}
		return es
	}
	plain, sealed := newStore(t, Options{}), newStore(t, Options{})
	z, err := sealed.Sealer()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range [][2]uint64{{1, 10}, {11, 30}, {31, 31}} {
		es := batch(r[0], r[1])
		mustAppend(t, plain, slices.Clone(es)...)
		z.Seal(es)
		for i := range es {
			if es[i].sealed == nil {
				t.Fatalf("seq %d not sealed", es[i].Seq)
			}
		}
		mustAppend(t, sealed, es...)
	}
	a, _ := plain.Stats()
	b, _ := sealed.Stats()
	if a.Head != b.Head || a.RejectedHead != b.RejectedHead || a.Accepted != b.Accepted || a.Rejected != b.Rejected {
		t.Fatalf("sealed store differs: heads %v %v, want %v %v", b.Head, b.RejectedHead, a.Head, a.RejectedHead)
	}

	// Out of step: an entry appended that the Sealer did not see, and a
	// sealed entry that is skipped (already stored).
	es := batch(32, 40)
	mustAppend(t, plain, slices.Clone(es)...)
	mustAppend(t, sealed, slices.Clone(es[:1])...)
	z.Seal(es)
	res := mustAppend(t, sealed, es...)
	if res.Skipped != 1 || res.Accepted+res.Rejected != 8 {
		t.Fatalf("append: %+v", res)
	}
	a, _ = plain.Stats()
	b, _ = sealed.Stats()
	if a.Head != b.Head || a.RejectedHead != b.RejectedHead {
		t.Fatalf("after the Sealer fell out of step: heads %v %v, want %v %v", b.Head, b.RejectedHead, a.Head, a.RejectedHead)
	}
	if ps := verifyProblems(t, sealed); len(ps) != 0 {
		t.Fatalf("verify: %v", ps)
	}
}

// TestSealedValueIsWhatIsStored: Append stores the sealed encoding itself
// (not a new one): spoiling one sealed value before Append shows in
// verify, at that record only.
func TestSealedValueIsWhatIsStored(t *testing.T) {
	s := newStore(t, Options{})
	z, err := s.Sealer()
	if err != nil {
		t.Fatal(err)
	}
	k := testKey(t, 1)
	var es []Entry
	for seq := uint64(1); seq <= 5; seq++ {
		es = append(es, msgEntry(t, seq, k))
	}
	z.Seal(es)
	v := es[2].sealed.value
	v[len(v)-HashSize-1] ^= 1 // the last byte of the body
	mustAppend(t, s, es...)
	only(t, verifyProblems(t, s), "edited", 3, "hash does not match")
}
