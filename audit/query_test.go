package audit

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/sign"
)

// queryStore holds 300 records with a mix of verbs, senders, uuids and
// destinations, a third of them refused; all returns every record.
func queryStore(t *testing.T) (s *Store, all []*Record) {
	t.Helper()
	s = newStore(t, Options{})
	keys := []sign.PrivateKey{testKey(t, 1), testKey(t, 2), testKey(t, 3)}
	dests := []string{"**", "com.example.*", "com.example.host1", "com.other.host2", "com.example.host1.**", "a\x00b"}
	verbs := []string{"ping", "deploy", "status", "Ping", "ping\x00x"}
	rng := rand.New(rand.NewPCG(1, 2))
	var es []Entry
	for seq := uint64(1); seq <= 300; seq++ {
		ki := rng.IntN(len(keys))
		e := msgEntry(t, seq, keys[ki], func(m *sign.Message) {
			m.Verb = verbs[rng.IntN(len(verbs))]
			m.Dest = dests[rng.IntN(len(dests))]
			m.UUID = fmt.Sprintf("u%d", rng.IntN(40))
			if rng.IntN(5) == 0 {
				m.UUID = ""
			}
		})
		e.SenderDest = fmt.Sprintf("com.example.peer%d", ki)
		// Stream time is not strictly increasing: some ties, some steps back.
		e.Stored = t0.Add(time.Duration(seq/2) * time.Second)
		if seq%17 == 0 {
			e.Stored = e.Stored.Add(-5 * time.Second)
		}
		switch rng.IntN(3) {
		case 0:
			e = rejected(e, policy.ReasonUnknownSender)
		case 1:
			if rng.IntN(10) == 0 {
				e = Entry{Seq: seq, Stored: e.Stored, Subject: "remaphore.msg.all", Body: []byte("junk"), Reason: policy.ReasonMalformed}
			}
		}
		es = append(es, e)
	}
	for i := 0; i < len(es); i += 50 {
		mustAppend(t, s, es[i:i+50]...)
	}
	for i := range es {
		r := es[i].record()
		all = append(all, r)
	}
	return s, all
}

// brute is what Query must return: a filter over every record, in
// (stream time, seq) order.
func brute(all []*Record, q Query) []uint64 {
	dm := newDestMatcher(q.Dest)
	var rs []*Record
	for _, r := range all {
		if r.Accepted() == q.Rejected || !q.matches(r, dm) || (q.AfterSeq > 0 && r.Seq <= q.AfterSeq) {
			continue
		}
		rs = append(rs, r)
	}
	if q.AfterSeq == 0 {
		slices.SortStableFunc(rs, func(a, b *Record) int {
			if c := a.Stored.Compare(b.Stored); c != 0 {
				return c
			}
			return int(a.Seq) - int(b.Seq)
		})
		if q.Reverse {
			slices.Reverse(rs)
		}
	}
	var out []uint64
	for _, r := range rs {
		if q.Limit > 0 && len(out) == q.Limit {
			break
		}
		out = append(out, r.Seq)
	}
	return out
}

func TestQuery_EachFilter(t *testing.T) {
	s, all := queryStore(t)
	senderKey := testKey(t, 2).Public()
	cases := map[string]Query{
		"all":            {},
		"rejected":       {Rejected: true},
		"since":          {Since: t0.Add(100 * time.Second)},
		"until":          {Until: t0.Add(20 * time.Second)},
		"since-until":    {Since: t0.Add(30 * time.Second), Until: t0.Add(60 * time.Second)},
		"verb":           {Verb: "deploy"},
		"verb-case":      {Verb: "Ping"},
		"verb-nul":       {Verb: "ping\x00x"},
		"uuid":           {UUID: "u7"},
		"sender-key":     {Sender: senderKey},
		"sender-dest":    {SenderDest: "com.example.peer0"},
		"dest-pattern":   {Dest: "com.example.*"},
		"dest-name":      {Dest: "com.example.host1"},
		"dest-nul":       {Dest: "a\x00b"},
		"limit":          {Limit: 7},
		"reverse-limit":  {Reverse: true, Limit: 9},
		"after-seq":      {AfterSeq: 250},
		"rejected-verb":  {Rejected: true, Verb: "status"},
		"rejected-uuid":  {Rejected: true, UUID: "u3", Since: t0.Add(10 * time.Second)},
		"verb-time":      {Verb: "ping", Since: t0.Add(40 * time.Second), Until: t0.Add(90 * time.Second)},
		"uuid-sender":    {UUID: "u12", Sender: senderKey},
		"dest-name-time": {Dest: "com.example.host1", Since: t0.Add(50 * time.Second), Reverse: true, Limit: 5},
		"nothing":        {UUID: "no such uuid"},
	}
	for name, q := range cases {
		t.Run(name, func(t *testing.T) {
			want := brute(all, q)
			got := seqs(t, s, q)
			if !slices.Equal(got, want) {
				t.Fatalf("query %+v:\n got %v\nwant %v", q, got, want)
			}
			if name != "nothing" && len(got) == 0 {
				t.Fatalf("query %+v selects nothing: a weak test", q)
			}
		})
	}
}

func TestQuery_RandomCombinations(t *testing.T) {
	s, all := queryStore(t)
	rng := rand.New(rand.NewPCG(3, 4))
	pick := func(vs ...string) string { return vs[rng.IntN(len(vs))] }
	for i := range 300 {
		q := Query{
			Rejected: rng.IntN(2) == 0,
			Verb:     pick("", "", "ping", "deploy", "status"),
			UUID:     pick("", "", "", "u1", "u2", "u5"),
			Dest:     pick("", "", "**", "com.example.host1", "com.example.*", "com.other.host2"),
			Limit:    rng.IntN(4) * 5,
			Reverse:  rng.IntN(2) == 0,
		}
		if rng.IntN(3) == 0 {
			q.SenderDest = pick("com.example.peer0", "com.example.peer1")
		}
		if rng.IntN(3) == 0 {
			q.Since = t0.Add(time.Duration(rng.IntN(150)) * time.Second)
		}
		if rng.IntN(3) == 0 {
			q.Until = t0.Add(time.Duration(100+rng.IntN(60)) * time.Second)
		}
		if q.Until.Before(q.Since) && !q.Until.IsZero() {
			q.Until = time.Time{}
		}
		if got, want := seqs(t, s, q), brute(all, q); !slices.Equal(got, want) {
			t.Fatalf("#%d query %+v:\n got %v\nwant %v", i, q, got, want)
		}
	}
}

func TestQuery_BadRange(t *testing.T) {
	s := newStore(t, Options{})
	err := s.Query(Query{Since: t0, Until: t0.Add(-time.Second)}, func(*Record) error { return nil })
	if !errors.Is(err, ErrBadQuery) {
		t.Fatalf("until before since: %v, want ErrBadQuery", err)
	}
}

func TestQuery_EscapedPrefixes(t *testing.T) {
	// "a" must not find "a\x00b", whose escaped form starts with "a".
	for _, c := range []struct{ v, other string }{{"a", "a\x00b"}, {"a\x00", "a"}, {"", "x"}} {
		p, o := appendValuePrefix(nil, []byte(c.v)), appendValuePrefix(nil, []byte(c.other))
		if len(o) >= len(p) && string(o[:len(p)]) == string(p) {
			t.Errorf("prefix of %q is a prefix of %q's", c.v, c.other)
		}
		if got := string(unescape(p)); got != c.v {
			t.Errorf("unescape(%q) = %q", p, got)
		}
	}
}

// TestQuery_BoundsPastNanoseconds: a Since or Until after 2262, which
// int64 nanoseconds since 1970 cannot hold, bounds as the time it is
// (until 2300 is everything, since 2300 nothing), and one before 1970 as
// well.
func TestQuery_BoundsPastNanoseconds(t *testing.T) {
	s := chainStore(t)
	late, early := time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)
	all := []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, c := range []struct {
		q    Query
		want []uint64
	}{
		{Query{Until: late}, all},
		{Query{Until: late, Reverse: true}, []uint64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}},
		{Query{Until: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), Verb: "ping"}, all},
		{Query{Since: early, Until: late}, all},
		{Query{Since: late}, []uint64{}},
		{Query{Since: late, Reverse: true}, []uint64{}},
		{Query{Since: early}, all},
		{Query{Until: early}, []uint64{}},
	} {
		if got := seqs(t, s, c.q); !slices.Equal(append([]uint64{}, got...), c.want) {
			t.Errorf("since %d until %d reverse %v: %v, want %v", c.q.Since.Year(), c.q.Until.Year(), c.q.Reverse, got, c.want)
		}
	}
}
