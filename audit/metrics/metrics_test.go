package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/remaphore/remaphore/audit"
	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/sign"
)

// clock is a settable Now.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTest(t *testing.T) (*Auditor, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	return New(Options{DB: t.TempDir() + "/none.db", Now: c.now, StaleAfter: 10 * time.Second, MaxLag: 30 * time.Second}), c
}

func gauge(t *testing.T, a *Auditor, name string) float64 {
	t.Helper()
	mfs, err := a.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == Namespace+"_"+name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func health(t *testing.T, a *Auditor) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	body, _ := io.ReadAll(rec.Body)
	return rec.Code, strings.TrimSpace(string(body))
}

func entry(seq uint64, stored time.Time, kind sign.Kind, r policy.Reason) audit.Entry {
	return audit.Entry{Seq: seq, Stored: stored, Reason: r, Env: &sign.Envelope{Message: sign.Message{Kind: kind}}}
}

// Lag in messages and seconds follows fetches and commits, and falls to
// 0 once the auditor has stored everything the stream had; /healthz
// follows: starting, behind, ok, not consuming, stopped.
func TestLagAndHealth(t *testing.T) {
	a, c := newTest(t)
	if code, why := health(t, a); code != 503 || !strings.Contains(why, "starting") {
		t.Fatalf("before ready: %d %q", code, why)
	}
	a.Ready(0)
	if code, why := health(t, a); code != 503 || !strings.Contains(why, "no fetch") {
		t.Fatalf("ready, no fetch yet: %d %q", code, why)
	}
	// A backlog: 100 messages delivered, 900 more waiting; the first was
	// stored two minutes ago.
	t0 := c.t.Add(-2 * time.Minute)
	a.Fetched(100, t0, 900, true)
	if got := gauge(t, a, "lag_messages"); got != 1000 {
		t.Fatalf("lag_messages = %v, want 1000", got)
	}
	if got := gauge(t, a, "lag_seconds"); got != 120 {
		t.Fatalf("lag_seconds = %v, want 120", got)
	}
	if code, why := health(t, a); code != 503 || !strings.Contains(why, "behind: 1000 messages") {
		t.Fatalf("behind: %d %q", code, why)
	}
	entries := make([]audit.Entry, 100)
	for i := range entries {
		entries[i] = entry(uint64(i+1), t0.Add(time.Duration(i)*time.Second), sign.KindMsg, policy.ReasonAccepted)
	}
	a.Committed(100, entries, audit.AppendResult{Accepted: 100, Last: 100}, 3*time.Millisecond)
	if got := gauge(t, a, "lag_messages"); got != 900 {
		t.Fatalf("lag_messages after a commit = %v, want 900", got)
	}
	if got := gauge(t, a, "lag_seconds"); got != 21 { // the newest stored: t0+99s
		t.Fatalf("lag_seconds after a commit = %v, want 21", got)
	}
	a.Fetched(900, t0.Add(100*time.Second), 0, true)
	a.Committed(900, nil, audit.AppendResult{}, 0) // all redeliveries, say
	a.Fetched(0, time.Time{}, 0, true)
	if got := gauge(t, a, "lag_messages"); got != 0 {
		t.Fatalf("lag_messages caught up = %v", got)
	}
	if got := gauge(t, a, "lag_seconds"); got != 0 {
		t.Fatalf("lag_seconds caught up = %v", got)
	}
	if code, why := health(t, a); code != 200 || !strings.HasPrefix(why, "ok") {
		t.Fatalf("caught up: %d %q", code, why)
	}
	if got := gauge(t, a, "last_stored_sequence"); got != 100 {
		t.Fatalf("last_stored_sequence = %v", got)
	}
	if got := gauge(t, a, "last_commit_timestamp_seconds"); got != float64(c.t.Unix()) {
		t.Fatalf("last_commit_timestamp_seconds = %v, want %d", got, c.t.Unix())
	}
	// Idle for a minute after catching up: still caught up, not behind.
	c.t = c.t.Add(5 * time.Second)
	a.Fetched(0, time.Time{}, 0, true)
	c.t = c.t.Add(5 * time.Second)
	if code, _ := health(t, a); code != 200 {
		t.Fatalf("idle: %d", code)
	}
	// Failed fetches (NATS down) do not count; after StaleAfter the
	// auditor is not consuming.
	c.t = c.t.Add(6 * time.Second)
	a.Fetched(0, time.Time{}, 0, false)
	if code, why := health(t, a); code != 503 || !strings.Contains(why, "not consuming: no fetch has succeeded for 11s") {
		t.Fatalf("stale: %d %q", code, why)
	}
	if got := gauge(t, a, "consuming"); got != 0 {
		t.Fatalf("consuming = %v", got)
	}
	a.Fetched(0, time.Time{}, 0, true)
	if got := gauge(t, a, "consuming"); got != 1 {
		t.Fatalf("consuming again = %v", got)
	}
	a.Stopped()
	if code, why := health(t, a); code != 503 || why != "stopped" {
		t.Fatalf("stopped: %d %q", code, why)
	}
}

// A burst after a long idle time is measured from its own first message,
// not from the last one stored before the pause.
func TestLagSecondsAfterIdle(t *testing.T) {
	a, c := newTest(t)
	a.Ready(0)
	a.Fetched(1, c.t.Add(-time.Hour), 0, true)
	a.Committed(1, []audit.Entry{entry(1, c.t.Add(-time.Hour), sign.KindMsg, policy.ReasonAccepted)}, audit.AppendResult{Accepted: 1, Last: 1}, time.Millisecond)
	a.Fetched(10, c.t.Add(-2*time.Second), 5, true)
	if got := gauge(t, a, "lag_seconds"); got != 2 {
		t.Fatalf("lag_seconds = %v, want 2", got)
	}
}

// Records are counted by kind and verdict, refusals by reason, gaps and
// evictions from the store's result; entries the store skipped (at or
// below what it held) are not counted.
func TestCommittedCounts(t *testing.T) {
	a, c := newTest(t)
	a.Ready(10)
	entries := []audit.Entry{
		entry(9, c.t, sign.KindMsg, policy.ReasonAccepted), // skipped: already stored
		entry(11, c.t, sign.KindMsg, policy.ReasonAccepted),
		entry(12, c.t, sign.KindReply, policy.ReasonAccepted),
		entry(13, c.t, sign.KindMsg, policy.ReasonUnknownSender),
		entry(14, c.t, sign.KindMsg, policy.ReasonBadSignature),
		{Seq: 15, Stored: c.t, Reason: policy.ReasonMalformed},
		{Seq: 19, Gap: &audit.Gap{First: 16, Last: 19}},
		entry(20, c.t, sign.KindMsg, policy.Reason(99)), // a reason this package does not know
		entry(21, c.t, sign.KindReceipt, policy.ReasonAccepted),
		entry(22, c.t, sign.KindReceipt, policy.ReasonWrongResponder),
		entry(23, c.t, sign.KindMsg, policy.ReasonDestMismatch), // a receiver filter: the auditor never refuses for it
	}
	a.Committed(len(entries), entries, audit.AppendResult{Accepted: 3, Rejected: 6, Skipped: 1, Evicted: 3, Gaps: 1, Last: 23}, time.Millisecond)
	for _, tc := range []struct {
		name string
		got  float64
		want float64
	}{
		{"msg accepted", testutil.ToFloat64(a.stored[kindMsg][0]), 1},
		{"reply accepted", testutil.ToFloat64(a.stored[kindReply][0]), 1},
		{"msg refused", testutil.ToFloat64(a.stored[kindMsg][1]), 4},
		{"receipt accepted", testutil.ToFloat64(a.stored[kindReceipt][0]), 1},
		{"receipt refused", testutil.ToFloat64(a.stored[kindReceipt][1]), 1},
		{"wrong-responder", testutil.ToFloat64(a.refusals[policy.ReasonWrongResponder]), 1},
		{"unknown refused", testutil.ToFloat64(a.stored[kindUnknown][1]), 1},
		{"unknown-sender", testutil.ToFloat64(a.refusals[policy.ReasonUnknownSender]), 1},
		{"bad-signature", testutil.ToFloat64(a.refusals[policy.ReasonBadSignature]), 1},
		{"malformed", testutil.ToFloat64(a.refusals[policy.ReasonMalformed]), 1},
		{"other", testutil.ToFloat64(a.refusedEtc), 2},
		{"gaps", testutil.ToFloat64(a.gaps), 1},
		{"gap messages", testutil.ToFloat64(a.gapMsgs), 4},
		{"evicted", testutil.ToFloat64(a.evicted), 3},
		{"commits", float64(testutil.CollectAndCount(a.commitDur)), 1},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if got := gauge(t, a, "last_stored_sequence"); got != 23 {
		t.Errorf("last_stored_sequence = %v", got)
	}
}

// The series exported from the start are the fixed label sets: every
// record kind (receipt included) and every reason the auditor can refuse
// for (wrong-responder included), but none of the receiver filters, which
// the auditor never applies and which would only be series always at 0.
func TestExportedLabels(t *testing.T) {
	a, _ := newTest(t)
	mfs, err := a.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]map[string]bool{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				key := mf.GetName() + "/" + l.GetName()
				if labels[key] == nil {
					labels[key] = map[string]bool{}
				}
				labels[key][l.GetValue()] = true
			}
		}
	}
	kinds, reasons := labels[Namespace+"_records_stored_total/kind"], labels[Namespace+"_refusals_total/reason"]
	for _, k := range []string{"msg", "reply", "receipt", "unknown"} {
		if !kinds[k] {
			t.Errorf("records_stored_total has no kind %q: %v", k, kinds)
		}
	}
	for _, r := range []string{"malformed", "unknown-sender", "wrong-request", "nul-byte", "wrong-responder", "other"} {
		if !reasons[r] {
			t.Errorf("refusals_total has no reason %q: %v", r, reasons)
		}
	}
	for _, r := range []string{"accepted", "destination-mismatch", "uuid-filter", "verb-filter", "sender-filter"} {
		if reasons[r] {
			t.Errorf("refusals_total exports reason %q, which the auditor never refuses for", r)
		}
	}
}

// Methods on a nil *Auditor (metrics off) do nothing.
func TestNilAuditor(t *testing.T) {
	var a *Auditor
	a.Ready(1)
	a.Fetched(1, time.Now(), 1, true)
	a.Committed(1, []audit.Entry{{Seq: 2}}, audit.AppendResult{}, time.Millisecond)
	a.Reloaded(true)
	a.Stopped()
}

// Only /metrics and /healthz are served, and only to GET.
func TestHandlerRoutes(t *testing.T) {
	a, _ := newTest(t)
	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{"GET", "/metrics", 200}, {"GET", "/healthz", 503}, {"GET", "/", 404}, {"GET", "/debug/pprof/", 404},
		{"POST", "/metrics", 405},
	} {
		rec := httptest.NewRecorder()
		a.Handler().ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != tc.code {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, rec.Code, tc.code)
		}
	}
}

// BenchmarkCommitted is the metrics' cost per commit of a full batch of
// 500 records (accepted messages and replies, refusals under several
// reasons): the only per-record work they add to the ingest.
func BenchmarkCommitted(b *testing.B) {
	a := New(Options{DB: b.TempDir() + "/none.db"})
	now := time.Now()
	entries := make([]audit.Entry, 500)
	reasons := []policy.Reason{policy.ReasonAccepted, policy.ReasonAccepted, policy.ReasonAccepted, policy.ReasonUnknownSender, policy.ReasonBadSignature, policy.ReasonStale}
	for i := range entries {
		k := sign.KindMsg
		if i%4 == 0 {
			k = sign.KindReply
		}
		entries[i] = entry(0, now, k, reasons[i%len(reasons)])
	}
	a.Ready(0)
	var seq uint64
	for b.Loop() {
		for i := range entries {
			seq++
			entries[i].Seq = seq
		}
		a.Fetched(len(entries), now, 0, true)
		a.Committed(len(entries), entries, audit.AppendResult{Last: seq}, time.Millisecond)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(entries)), "ns/record")
}
