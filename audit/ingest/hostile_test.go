package ingest

import (
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/remaphore/remaphore/audit"
)

// Attacks on the ingester through a real server. Those on the store are in
// audit/hostile_test.go, the flood through the binary in
// cmd/remaphore-audit/hostile_test.go.

// Issue 13: a message lost on the way twice at the same place (a server
// cutting off a slow consumer again) used to be taken as gone from the
// stream the second time, without asking it: the auditor skipped
// sequences the stream still held. Each time the stream is asked, and
// what it holds is read again, however often it is lost.
func TestHostile_LostTwiceAtTheSamePlaceIsNotAGap(t *testing.T) {
	e := newNatsEnv(t)
	for range 12 {
		e.send(e.alice)
	}
	var mu sync.Mutex
	lost := map[uint64]int{}
	var logs logBuf
	au := e.start(func(o *RunOptions) {
		o.Batch = 4
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		o.lose = func(m jetstream.Msg) bool {
			md, _ := m.Metadata()
			mu.Lock()
			defer mu.Unlock()
			if seq := md.Sequence.Stream; seq == 5 && lost[seq] < 3 {
				lost[seq]++
				return true
			}
			return false
		}
	})
	au.waitFor(t, 12)
	au.stop(t)
	if n := strings.Count(logs.String(), "delivered but not received"); n != 3 || strings.Contains(logs.String(), "recorded as a gap") {
		t.Errorf("%d re-reads, want 3, and no gap:\n%s", n, logs.String())
	}
	e.view(func(s *audit.Store) {
		if got := recordSeqs(t, s, audit.Query{}); len(got) != 12 {
			t.Fatalf("records %v, want 1..12", got)
		}
		if st, _ := s.Stats(); st.Gaps != 0 {
			t.Fatalf("%d gaps", st.Gaps)
		}
	})
}
