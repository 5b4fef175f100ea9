package ingest

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/remaphore/remaphore/audit"
	"github.com/remaphore/remaphore/audit/metrics"
	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/sign"
	"github.com/remaphore/remaphore/transport"
)

// scrape is a metrics endpoint as a scraper sees it.
type scrape struct {
	t   *testing.T
	srv *httptest.Server
}

func newScrape(t *testing.T, m *metrics.Auditor) *scrape {
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	return &scrape{t: t, srv: srv}
}

func (s *scrape) get(path string) (int, string) {
	s.t.Helper()
	resp, err := http.Get(s.srv.URL + path)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// series returns every sample line of /metrics: series -> value.
func (s *scrape) series() map[string]float64 {
	s.t.Helper()
	code, body := s.get("/metrics")
	if code != 200 {
		s.t.Fatalf("/metrics: %d %s", code, body)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			s.t.Fatalf("sample %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// waitValue waits until series has value want.
func (s *scrape) waitValue(series string, want float64) {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, ok := s.series()[series]
		if ok && got == want {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s = %v (present: %v), want %v", series, got, ok, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitHealth waits until /healthz answers code with a body holding word.
func (s *scrape) waitHealth(code int, word string) {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, body := s.get("/healthz")
		if c == code && strings.Contains(body, word) {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("/healthz: %d %q, want %d with %q", c, body, code, word)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The metrics move with traffic: an unknown sender raises the refusal
// counter under its reason, an accepted message the stored counter; the
// lag falls to 0; /healthz is 503 before the auditor consumes, 200 once
// it has caught up, 503 once it stops.
func TestMetrics_MoveWithTraffic(t *testing.T) {
	e := newNatsEnv(t)
	e.ensureStream()
	m := metrics.New(metrics.Options{DB: e.db})
	sc := newScrape(t, m)
	sc.waitHealth(503, "starting")
	sc.waitValue(`remaphore_audit_refusals_total{reason="unknown-sender"}`, 0)
	// A backlog before the start.
	for range 5 {
		e.send(e.alice)
	}
	au := e.start(func(o *RunOptions) { o.Metrics = m })
	au.waitFor(t, 5)
	sc.waitHealth(200, "ok")
	sc.waitValue(`remaphore_audit_records_stored_total{kind="msg",verdict="accepted"}`, 5)
	sc.waitValue(`remaphore_audit_lag_messages`, 0)
	sc.waitValue(`remaphore_audit_lag_seconds`, 0)

	_, seq := e.send(e.mallory)
	au.waitFor(t, seq)
	sc.waitValue(`remaphore_audit_refusals_total{reason="unknown-sender"}`, 1)
	sc.waitValue(`remaphore_audit_records_stored_total{kind="msg",verdict="refused"}`, 1)
	_, seq = e.send(e.alice)
	au.waitFor(t, seq)
	sc.waitValue(`remaphore_audit_records_stored_total{kind="msg",verdict="accepted"}`, 6)
	sc.waitValue(`remaphore_audit_last_stored_sequence`, float64(seq))
	sc.waitValue(`remaphore_audit_lag_messages`, 0)
	got := sc.series()
	if got[`remaphore_audit_commit_duration_seconds_count`] < 1 || got[`remaphore_audit_db_size_bytes`] <= 0 ||
		got[`remaphore_audit_last_commit_timestamp_seconds`] < float64(time.Now().Add(-time.Minute).Unix()) ||
		got[`remaphore_audit_consuming`] != 1 || got[`go_goroutines`] <= 0 {
		t.Fatalf("commit, size, last commit, consuming, go collector: %v", got)
	}
	lintScrape(t, sc)
	au.stop(t)
	sc.waitHealth(503, "stopped")
}

// lintScrape checks a scraped /metrics with promlint (the linter behind
// promtool check metrics) and, when REMAPHORE_METRICS_SCRAPE names a
// file, writes the body there for .ci/run to check with promtool itself.
func lintScrape(t *testing.T, sc *scrape) {
	t.Helper()
	_, body := sc.get("/metrics")
	problems, err := promlint.New(strings.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	if path := os.Getenv("REMAPHORE_METRICS_SCRAPE"); path != "" {
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// With the NATS server gone the auditor is not consuming: /healthz
// says so once no fetch has succeeded for StaleAfter.
func TestMetrics_NotConsumingWhenTheServerIsGone(t *testing.T) {
	e := newNatsEnv(t)
	e.ensureStream()
	m := metrics.New(metrics.Options{DB: e.db, StaleAfter: time.Second})
	sc := newScrape(t, m)
	e.start(func(o *RunOptions) { o.Metrics = m })
	sc.waitHealth(200, "ok")
	e.c.Stop(0)
	sc.waitHealth(503, "not consuming")
	sc.waitValue(`remaphore_audit_consuming`, 0)
}

// Hostile: label values come from fixed sets, never from what a sender
// controls. A flood of messages from distinct unknown keys, on distinct
// channels, with distinct verbs and junk bodies creates no series.
func TestHostile_MetricsLabelsAreBounded(t *testing.T) {
	e := newNatsEnv(t)
	e.ensureStream()
	m := metrics.New(metrics.Options{DB: e.db})
	sc := newScrape(t, m)
	au := e.start(func(o *RunOptions) { o.Metrics = m })
	_, seq := e.send(e.alice)
	au.waitFor(t, seq)
	ours := func() map[string]bool {
		out := map[string]bool{}
		for s := range sc.series() {
			if strings.HasPrefix(s, metrics.Namespace) {
				out[s] = true
			}
		}
		return out
	}
	before := ours()
	const n = 300
	var bogus []string
	for i := range n {
		k, err := sign.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		ch := fmt.Sprintf("chan%d", i)
		verb := fmt.Sprintf("verb%d", i)
		env := e.seal(k, func(m *sign.Message) { m.Channel, m.Verb = ch, verb })
		seq = e.publish(transport.MsgSubject("remaphore", ch), env.Body(), env.ID)
		bogus = append(bogus, k.Public().String(), ch, verb)
		if i%10 == 0 {
			seq = e.publish(fmt.Sprintf("remaphore.junk%d", i), []byte(fmt.Sprintf("junk %d", i)), fmt.Sprintf("id%d", i))
		}
	}
	au.waitFor(t, seq)
	sc.waitValue(`remaphore_audit_refusals_total{reason="unknown-sender"}`, n)
	after := ours()
	for s := range after {
		if !before[s] {
			t.Errorf("new series %s", s)
		}
	}
	if len(after) != len(before) {
		t.Errorf("%d series before the flood, %d after", len(before), len(after))
	}
	_, body := sc.get("/metrics")
	for _, b := range bogus {
		if strings.Contains(body, b) {
			t.Fatalf("a sender's string %q is in /metrics", b)
		}
	}
}

// A reload of [ Peers ] applies to the messages checked after it: a
// newly added peer's next message is accepted, one sent before the reload
// was refused; a removed peer's is refused. (That the replay caches are
// kept is policy's TestCheck_SetPeersKeepsReplayCache.)
func TestRun_ReloadPeers(t *testing.T) {
	e := newNatsEnv(t)
	e.ensureStream()
	reload := make(chan []policy.Peer)
	applied := make(chan []policy.Peer, 1)
	au := e.start(func(o *RunOptions) {
		o.Reload, o.Reloaded = reload, func(p []policy.Peer) { applied <- p }
	})
	_, before := e.send(e.mallory)
	_, accepted := e.send(e.alice)
	au.waitFor(t, accepted)
	// mallory in, bob out.
	reload <- []policy.Peer{e.peers[0], {Dest: "com.example.mallory", Key: e.mallory.Public(), Verbs: policy.AllVerbs()}}
	<-applied
	_, after := e.send(e.mallory)
	_, bobs := e.send(e.bob)
	au.waitFor(t, max(after, bobs))
	au.stop(t)
	want := map[uint64]string{before: "unknown-sender", accepted: "accepted", after: "accepted", bobs: "unknown-sender"}
	e.view(func(s *audit.Store) {
		for seq, reason := range want {
			r, err := s.Get(seq)
			if err != nil || r == nil {
				t.Fatalf("seq %d: %v %v", seq, r, err)
			}
			if r.Reason != reason {
				t.Errorf("seq %d: %s (%s), want %s", seq, r.Reason, r.Detail, reason)
			}
		}
	})
}
