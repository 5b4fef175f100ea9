// Package metrics is the auditor's Prometheus metrics and health check
// (remaphore-audit run -metrics ADDR): what it stored, what it refused and
// why, how far behind the stream it is, and how long its commits take.
//
// The ingest pipeline reports to an [Auditor] once per fetch and once per
// commit, never once per message: a commit's records are counted into
// fixed arrays and added to the counters per batch. Every label value is
// from a fixed set known here (record kinds, verdicts, policy reasons), so
// nothing a sender controls (a key, a subject, a verb) can create a series.
package metrics

import (
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/remaphore/remaphore/audit"
	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/sign"
)

// Namespace prefixes every metric's name.
const Namespace = "remaphore_audit"

// Defaults of Options.
const (
	DefaultMaxLag     = 30 * time.Second
	DefaultStaleAfter = 15 * time.Second
)

// Options configure [New].
type Options struct {
	// DB is the database file; its size is read at each scrape.
	DB string
	// MaxLag is how far behind the stream (seconds of stream time) the
	// auditor may be and still be healthy (DefaultMaxLag).
	MaxLag time.Duration
	// StaleAfter is how long without a successful fetch the auditor is
	// no longer consuming (DefaultStaleAfter): the NATS connection is
	// down, the consumer gone, or the pipeline stuck.
	StaleAfter time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Record kinds (label kind) and verdicts (label verdict).
const (
	kindMsg = iota
	kindReply
	kindReceipt
	kindUnknown // the body did not decode: no kind to tell
	numKinds
)

var kindNames = [numKinds]string{"msg", "reply", "receipt", "unknown"}

// numReasons covers the policy reasons the auditor can refuse for: every
// one before the receiver filters (destination-mismatch, uuid-filter, ...),
// which the auditor never applies, so that they export no series that is
// always 0. A filter or a reason past the last known one (a newer policy
// package) is counted as "other".
const numReasons = int(policy.ReasonDestMismatch)

// Auditor holds the metrics of one auditor. Its methods may be called on
// a nil *Auditor (metrics off): they then do nothing.
type Auditor struct {
	o   Options
	reg *prometheus.Registry

	stored     [numKinds][2]prometheus.Counter // [kind][accepted, refused]
	refusals   [numReasons]prometheus.Counter  // by reason; [0] unused
	refusedEtc prometheus.Counter              // reason "other"
	evicted    prometheus.Counter
	gaps       prometheus.Counter
	gapMsgs    prometheus.Counter
	commitDur  prometheus.Histogram
	lastCommit prometheus.Gauge
	lastSeq    prometheus.Gauge
	reloads    *prometheus.CounterVec

	// Lag, in messages: pending is what the stream had not yet
	// delivered as of the last fetch; fetched and committed count the
	// messages delivered and those written (or skipped as redeliveries).
	pending, fetched, committed atomic.Uint64
	// Lag, in time: the stream time of the newest message committed, and
	// of the first message fetched after the auditor was last caught up.
	lastStored, burstStart atomic.Int64 // unix nanoseconds; 0 = none
	lastFetchOK            atomic.Int64 // unix nanoseconds; 0 = never
	ready, stopped         atomic.Bool

	mu       sync.Mutex // prevLast
	prevLast uint64     // the highest sequence stored, for skipped entries
}

// New returns an Auditor with its own registry holding its metrics and
// the Go runtime's and the process's.
func New(o Options) *Auditor {
	if o.MaxLag <= 0 {
		o.MaxLag = DefaultMaxLag
	}
	if o.StaleAfter <= 0 {
		o.StaleAfter = DefaultStaleAfter
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	a := &Auditor{o: o, reg: prometheus.NewRegistry()}
	f := promauto{a.reg}
	stored := f.counterVec("records_stored_total", "Records written to the database, by kind (msg, reply, receipt, unknown: the body did not decode) and verdict (accepted, refused).", "kind", "verdict")
	for k := range numKinds {
		a.stored[k][0] = stored.WithLabelValues(kindNames[k], "accepted")
		a.stored[k][1] = stored.WithLabelValues(kindNames[k], "refused")
	}
	refusals := f.counterVec("refusals_total", "Refused records written, by the policy's reason (unknown-sender, bad-signature, replay, ...).", "reason")
	for r := policy.ReasonMalformed; int(r) < numReasons; r++ {
		a.refusals[r] = refusals.WithLabelValues(r.String())
	}
	a.refusedEtc = refusals.WithLabelValues("other")
	a.evicted = f.counter("refused_evicted_total", "Oldest refused records dropped by the cap on refused records (-max-rejected, audit_refused_max_bytes).")
	a.gaps = f.counter("gaps_total", "Gap records written: runs of stream sequences gone before the auditor read them.")
	a.gapMsgs = f.counter("gap_messages_total", "Stream sequences recorded as gone (the sum of the gap records' lengths).")
	a.commitDur = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "commit_duration_seconds",
		Help:    "Time to write one batch to the database (one transaction, one fsync).",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12)}) // 0.5 ms to ~30 s
	a.reg.MustRegister(a.commitDur)
	a.lastCommit = f.gauge("last_commit_timestamp_seconds", "When the last batch was written (Unix time, the auditor's clock).")
	a.lastSeq = f.gauge("last_stored_sequence", "The highest stream sequence stored.")
	a.reloads = f.counterVec("config_reloads_total", "Config reloads on SIGHUP, by result (ok, failed: the old config is kept).", "result")
	a.reloads.WithLabelValues("ok")
	a.reloads.WithLabelValues("failed")
	f.gaugeFunc("lag_messages", "Messages in the stream not yet stored: not yet delivered as of the last fetch, plus delivered and not yet written.", func() float64 {
		return float64(a.lagMessages())
	})
	f.gaugeFunc("lag_seconds", "How far behind the stream the auditor is: the stream time since the oldest message not yet stored was stored (0 when caught up).", func() float64 {
		return a.lagSeconds().Seconds()
	})
	f.gaugeFunc("consuming", "1 while the auditor is fetching from its consumer (a fetch succeeded within the last "+o.StaleAfter.String()+"), else 0.", func() float64 {
		if a.consuming() {
			return 1
		}
		return 0
	})
	f.gaugeFunc("db_size_bytes", "Size of the database file.", func() float64 {
		if fi, err := os.Stat(a.o.DB); err == nil {
			return float64(fi.Size())
		}
		return 0
	})
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return a
}

// promauto registers what it makes on one registry.
type promauto struct{ reg *prometheus.Registry }

func (f promauto) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help})
	f.reg.MustRegister(c)
	return c
}

func (f promauto) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
	f.reg.MustRegister(c)
	return c
}

func (f promauto) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help})
	f.reg.MustRegister(g)
	return g
}

func (f promauto) gaugeFunc(name, help string, fn func() float64) {
	f.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, fn))
}

// Registry is where the metrics are registered.
func (a *Auditor) Registry() *prometheus.Registry { return a.reg }

// Handler serves /metrics (the registry, in the text or OpenMetrics
// format as the scraper asks) and /healthz; anything else is 404.
func (a *Auditor) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{Registry: a.reg, EnableOpenMetrics: true}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		ok, why := a.Health()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, why)
	})
	return mux
}

// Health reports whether the auditor is consuming and caught up, and
// why not in a few words.
func (a *Auditor) Health() (ok bool, why string) {
	switch {
	case a.stopped.Load():
		return false, "stopped"
	case !a.ready.Load():
		return false, "starting: the consumer is not ready yet"
	case !a.consuming():
		last := a.lastFetchOK.Load()
		if last == 0 {
			return false, "not consuming: no fetch has succeeded yet"
		}
		return false, fmt.Sprintf("not consuming: no fetch has succeeded for %s", a.o.Now().Sub(time.Unix(0, last)).Round(time.Second))
	}
	if lag := a.lagSeconds(); lag > a.o.MaxLag {
		return false, fmt.Sprintf("behind: %d messages, %s behind the stream (at most %s)", a.lagMessages(), lag.Round(time.Second), a.o.MaxLag)
	}
	return true, fmt.Sprintf("ok: consuming, %d messages behind", a.lagMessages())
}

func (a *Auditor) consuming() bool {
	last := a.lastFetchOK.Load()
	return last != 0 && !a.stopped.Load() && a.o.Now().Sub(time.Unix(0, last)) <= a.o.StaleAfter
}

func (a *Auditor) lagMessages() uint64 {
	// committed is loaded first: it never passes fetched, so a commit
	// between the loads cannot make the difference wrap.
	c := a.committed.Load()
	f := a.fetched.Load()
	return a.pending.Load() + f - min(c, f)
}

func (a *Auditor) lagSeconds() time.Duration {
	if a.lagMessages() == 0 {
		return 0
	}
	since := max(a.lastStored.Load(), a.burstStart.Load())
	if since == 0 {
		return 0
	}
	return max(0, a.o.Now().Sub(time.Unix(0, since)))
}

// Ready is called once the consumer exists; last is the highest sequence
// the database holds.
func (a *Auditor) Ready(last uint64) {
	if a == nil {
		return
	}
	a.mu.Lock()
	a.prevLast = last
	a.mu.Unlock()
	a.lastSeq.Set(float64(last))
	a.ready.Store(true)
}

// Stopped is called when the auditor stops.
func (a *Auditor) Stopped() {
	if a != nil {
		a.stopped.Store(true)
	}
}

// Fetched is called after each successful fetch (n may be 0: nothing
// new): n messages delivered, the first stored by the stream at first,
// pending not yet delivered after the last of them.
//
// ok says the fetch succeeded with the connection up: only then is
// pending what the server said, and the auditor known to be consuming.
func (a *Auditor) Fetched(n int, first time.Time, pending uint64, ok bool) {
	if a == nil {
		return
	}
	if n > 0 && !first.IsZero() && a.lagMessages() == 0 {
		a.burstStart.Store(first.UnixNano())
	}
	a.fetched.Add(uint64(n))
	if ok {
		a.pending.Store(pending)
		a.lastFetchOK.Store(a.o.Now().UnixNano())
	}
}

// Committed is called after each batch is written and acked: msgs
// delivered messages (redeliveries included) became entries, written in
// took; res is what the store said.
func (a *Auditor) Committed(msgs int, entries []audit.Entry, res audit.AppendResult, took time.Duration) {
	if a == nil {
		return
	}
	if len(entries) > 0 {
		a.mu.Lock()
		prev := a.prevLast
		a.prevLast = max(prev, res.Last)
		a.mu.Unlock()
		var stored [numKinds][2]int
		var reasons [numReasons]int
		var other, gapMsgs int
		var newest time.Time
		for i := range entries {
			e := &entries[i]
			if e.Seq <= prev {
				continue // skipped by the store: already there
			}
			if e.Gap != nil {
				gapMsgs += int(e.Gap.Last - e.Gap.First + 1)
				continue
			}
			newest = e.Stored
			k := kindUnknown
			if e.Env != nil {
				switch e.Env.Kind {
				case sign.KindMsg:
					k = kindMsg
				case sign.KindReply:
					k = kindReply
				case sign.KindReceipt:
					k = kindReceipt
				}
			}
			if e.Reason == policy.ReasonAccepted {
				stored[k][0]++
				continue
			}
			stored[k][1]++
			if r := int(e.Reason); r > 0 && r < numReasons {
				reasons[r]++
			} else {
				other++
			}
		}
		for k := range numKinds {
			for v := range 2 {
				if stored[k][v] > 0 {
					a.stored[k][v].Add(float64(stored[k][v]))
				}
			}
		}
		for r, n := range reasons {
			if n > 0 {
				a.refusals[r].Add(float64(n))
			}
		}
		if other > 0 {
			a.refusedEtc.Add(float64(other))
		}
		if res.Evicted > 0 {
			a.evicted.Add(float64(res.Evicted))
		}
		if res.Gaps > 0 {
			a.gaps.Add(float64(res.Gaps))
			a.gapMsgs.Add(float64(gapMsgs))
		}
		a.commitDur.Observe(took.Seconds())
		a.lastCommit.Set(float64(a.o.Now().UnixNano()) / 1e9)
		a.lastSeq.Set(float64(a.prevLast))
		if !newest.IsZero() {
			a.lastStored.Store(newest.UnixNano())
		}
	}
	a.committed.Add(uint64(msgs))
}

// Reloaded counts a config reload on SIGHUP.
func (a *Auditor) Reloaded(ok bool) {
	if a == nil {
		return
	}
	if ok {
		a.reloads.WithLabelValues("ok").Inc()
	} else {
		a.reloads.WithLabelValues("failed").Inc()
	}
}
