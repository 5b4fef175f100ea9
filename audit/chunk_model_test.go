package audit

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/sign"
)

// modelSeeds is how many seeds TestChunkedIndexesModel runs
// (AUDIT_MODEL_SEEDS, default 3) from AUDIT_MODEL_SEED (default 1).
func modelSeeds(t *testing.T) (first, n uint64) {
	first, n = 1, 3
	if v, err := strconv.ParseUint(os.Getenv("AUDIT_MODEL_SEED"), 10, 64); err == nil {
		first = v
	}
	if v, err := strconv.ParseUint(os.Getenv("AUDIT_MODEL_SEEDS"), 10, 64); err == nil {
		n = v
	}
	if testing.Short() {
		n = 1
	}
	return first, n
}

// TestChunkedIndexesModel extends TestChunkedIndexesAnswerAsTheRecordsSay
// to what it leaves out: values that are prefixes of one another or hold
// 0x00 bytes (and 0x00 0x01), commits of more than maxChunk entries for
// one value, refused records evicted under a small cap, gap records,
// redelivered entries, records sealed ahead (in and out of step), the
// store reopened, and the file rewritten as format 1 (every chunk split)
// between commits; queries by every filter, refused records, AfterSeq,
// and Dest by node name over several patterns; Stats' first and last;
// and Verify clean.
func TestChunkedIndexesModel(t *testing.T) {
	first, n := modelSeeds(t)
	for seed := first; seed < first+n; seed++ {
		t.Run(fmt.Sprint("seed-", seed), func(t *testing.T) { modelRun(t, seed, 1200) })
	}
}

var (
	modelVerbs = []string{"de", "deploy", "de\x00", "de\x00ploy", "de\x00\x01", "\x00", "", "ping"}
	modelDests = []string{"**", "com.example.*", "com.example.host1", "org.*.db", "com.example.host1\x00", "com.example.host", ""}
	modelUUIDs = []string{"rep", "repeated", "rep\x00", ""}
	modelPeers = []string{"com.example.a", "com.example.a\x00", "com.example.ab", ""}
)

func modelRun(t *testing.T, seed uint64, n int) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	maxRej := 0
	if rng.IntN(2) == 0 {
		maxRej = 1 + rng.IntN(20)
	}
	s := newStore(t, Options{MaxRejected: maxRej})
	if maxRej == 0 {
		maxRej = DefaultMaxRejected
	}
	keys := []sign.PrivateKey{testKey(t, 1), testKey(t, 2), testKey(t, 3)}
	// Half the runs have many verbs: more chunks than verify keeps
	// decoded at once.
	many := rng.IntN(2) == 0
	var z *Sealer
	newSealer := func() {
		var err error
		if z, err = s.Sealer(); err != nil {
			t.Fatal(err)
		}
	}
	newSealer()
	var acc, rej []*Record
	var stored []Entry // every entry appended, for redeliveries
	at := t0
	seq := uint64(0)
	for seq < uint64(n) {
		size := 1 + rng.IntN(30)
		hot := ""
		if rng.IntN(8) == 0 {
			size = maxChunk + rng.IntN(2*maxChunk) // more than a chunk for one value
			hot = modelVerbs[rng.IntN(len(modelVerbs))]
		}
		if rng.IntN(6) == 0 {
			at = at.Add(-time.Duration(rng.IntN(20)) * time.Second) // back, across commits
		}
		var batch []Entry
		if len(stored) > 0 && rng.IntN(8) == 0 {
			// Redelivered: already stored, to be skipped.
			from := rng.IntN(len(stored))
			batch = append(batch, stored[from:min(len(stored), from+1+rng.IntN(5))]...)
		}
		var fresh []Entry
		for range size {
			if rng.IntN(60) == 0 {
				first := seq + 1
				seq += uint64(1 + rng.IntN(3))
				fresh = append(fresh, gapEntry(first, seq))
				continue
			}
			seq++
			switch r := rng.IntN(100); {
			case r < 3:
				at = at.Add(-time.Duration(rng.IntN(5000)) * time.Millisecond) // back, within a commit
			case r < 25:
				// the same stored time
			default:
				at = at.Add(time.Duration(1+rng.IntN(500)) * time.Millisecond)
			}
			k := rng.IntN(len(keys))
			e := msgEntry(t, seq, keys[k], func(m *sign.Message) {
				m.Verb = modelVerbs[rng.IntN(len(modelVerbs))]
				if many && rng.IntN(2) == 0 {
					m.Verb = fmt.Sprintf("v%d", rng.IntN(150))
				}
				if hot != "" && rng.IntN(4) > 0 {
					m.Verb = hot
				}
				m.Dest = modelDests[rng.IntN(len(modelDests))]
				if u := modelUUIDs[rng.IntN(len(modelUUIDs)+2)%len(modelUUIDs)]; rng.IntN(3) == 0 {
					m.UUID = u
				}
			})
			e.Stored, e.SenderDest = at, modelPeers[rng.IntN(len(modelPeers))]
			if rng.IntN(5) == 0 {
				e = rejected(e, []policy.Reason{policy.ReasonUnknownSender, policy.ReasonVerbNotAllowed, policy.ReasonStale}[rng.IntN(3)])
			}
			fresh = append(fresh, e)
		}
		batch = append(batch, fresh...)
		switch rng.IntN(6) {
		case 0:
			// Not sealed: the Sealer is out of step from here.
		case 1:
			newSealer()
			z.Seal(batch)
		default:
			z.Seal(batch)
		}
		if _, err := s.Append(batch); err != nil {
			t.Fatal(err)
		}
		for i := range fresh {
			e := &fresh[i]
			if e.Gap != nil {
				continue
			}
			r := e.record()
			if e.Reason == policy.ReasonAccepted {
				acc = append(acc, r)
			} else {
				rej = append(rej, r)
			}
		}
		if len(rej) > maxRej {
			rej = rej[len(rej)-maxRej:]
		}
		stored = append(stored, fresh...)
		switch rng.IntN(20) {
		case 0:
			reopen(t, s, Options{MaxRejected: maxRej})
			newSealer()
		case 1:
			toFormat1(t, s)
			reopen(t, s, Options{MaxRejected: maxRej})
			newSealer()
		case 2:
			modelCheck(t, s, rng, acc, rej, 30)
		}
	}
	if ps := verifyProblems(t, s); len(ps) != 0 {
		t.Fatalf("verify: %d problems, the first %v", len(ps), ps[0])
	}
	modelCheck(t, s, rng, acc, rej, 600)
	reopen(t, s, Options{ReadOnly: true})
	modelCheck(t, s, rng, acc, rej, 100)
}

// modelCheck compares Stats and nq random queries with the records.
func modelCheck(t *testing.T, s *Store, rng *rand.Rand, acc, rej []*Record, nq int) {
	t.Helper()
	all := append(slices.Clone(acc), rej...)
	if len(all) == 0 {
		return
	}
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := all[0].Stored, all[0].Stored
	for _, r := range all {
		lo, hi = minTime(lo, r.Stored), maxTime(hi, r.Stored)
	}
	if !st.First.Equal(lo) || !st.Last.Equal(hi) {
		t.Fatalf("stats: first %s last %s, want %s and %s", st.First, st.Last, lo, hi)
	}
	if st.Accepted != uint64(len(acc)) || st.Rejected != uint64(len(rej)) {
		t.Fatalf("stats: %d accepted %d refused, want %d and %d", st.Accepted, st.Rejected, len(acc), len(rej))
	}
	span := hi.Sub(lo) + 2*time.Second
	at := func() time.Time {
		switch rng.IntN(40) {
		case 0:
			return time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) // past int64 nanoseconds
		case 1:
			return time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)
		}
		return lo.Add(-time.Second + time.Duration(rng.Int64N(int64(span))))
	}
	for i := range nq {
		q := Query{Reverse: rng.IntN(2) == 0, Rejected: rng.IntN(5) == 0}
		switch rng.IntN(9) {
		case 0:
			q.Verb = append(slices.Clone(modelVerbs), "v7", "v149")[rng.IntN(len(modelVerbs)+2)]
		case 1:
			q.Sender = testKey(t, byte(1+rng.IntN(3))).Public()
		case 2:
			q.SenderDest = modelPeers[rng.IntN(len(modelPeers))]
		case 3:
			q.Dest = append(slices.Clone(modelDests), "org.x.db", "com.example.host2")[rng.IntN(len(modelDests)+2)]
		case 4:
			q.UUID = modelUUIDs[rng.IntN(len(modelUUIDs))]
		case 5:
			q.Verb, q.SenderDest = modelVerbs[rng.IntN(len(modelVerbs))], modelPeers[rng.IntN(len(modelPeers))]
		case 6:
			q.Dest, q.Verb = "com.example.host1", modelVerbs[rng.IntN(len(modelVerbs))]
		}
		if rng.IntN(3) > 0 {
			q.Since = at()
		}
		if rng.IntN(3) > 0 {
			q.Until = at()
			if !q.Since.IsZero() && q.Until.Before(q.Since) {
				q.Since, q.Until = q.Until, q.Since
			}
		}
		if rng.IntN(3) == 0 {
			q.Limit = 1 + rng.IntN(50)
		}
		if rng.IntN(10) == 0 {
			q.AfterSeq = uint64(rng.IntN(int(all[len(all)-1].Seq) + 2))
		}
		from := acc
		if q.Rejected {
			from = rej
		}
		got := seqs(t, s, q)
		want := model(from, q)
		if q.AfterSeq > 0 {
			want = afterModel(from, q)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("query %d %+q:\n got %v\nwant %v", i, fmt.Sprintf("%+v", q), got, want)
		}
	}
}

// afterModel answers a query with AfterSeq: the records after it, in
// sequence order, filtered and limited.
func afterModel(all []*Record, q Query) []uint64 {
	dm := newDestMatcher(q.Dest)
	rs := slices.Clone(all)
	slices.SortFunc(rs, func(a, b *Record) int { return cmp.Compare(a.Seq, b.Seq) })
	out := []uint64{}
	for _, r := range rs {
		if r.Seq <= q.AfterSeq || !q.matches(r, dm) {
			continue
		}
		if q.Limit > 0 && len(out) == q.Limit {
			break
		}
		out = append(out, r.Seq)
	}
	return out
}
