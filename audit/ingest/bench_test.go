package ingest

// Benchmarks of the auditor's ingest against a bare consumer, with their
// sizes set by environment variables:
//
//	AUDIT_BENCH_BACKLOG  messages in the backlog (default 100000)
//	AUDIT_BENCH_FLOOD    messages in the flood from an unknown key (default
//	                     100000, with one peer message after every 100)
//	AUDIT_BENCH_BATCH, AUDIT_BENCH_WORKERS  the auditor's Batch and Workers
//	                     (default: its defaults)
//	AUDIT_BENCH_SYNC_DELAY  a pause after each commit (a duration, such as
//	                     2ms), standing for a disk whose two fsyncs per
//	                     commit take that much longer than this machine's
//
// Run them one at a time, for example:
//
//	go test ./audit/ingest -run '^$' -bench IngestBacklog -benchtime 1x
//	go test ./audit/ingest -run '^$' -bench IngestFlood -benchtime 1x

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/remaphore/remaphore/audit"
	"github.com/remaphore/remaphore/audit/metrics"
	"github.com/remaphore/remaphore/internal/cputime"
	"github.com/remaphore/remaphore/internal/natstest"
	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/sign"
	"github.com/remaphore/remaphore/transport"
)

// benchSize is the positive integer in the environment variable name, else
// def.
func benchSize(name string, def int) int {
	n, _ := strconv.Atoi(os.Getenv(name))
	return cmp.Or(max(n, 0), def)
}

// backlog is a server whose stream holds n signed messages, of which
// accepted are from peers.
type backlog struct {
	conn     *transport.Conn
	spec     transport.StreamSpec
	peers    []policy.Peer
	n        int
	accepted int
}

// stream is the backlog's stream name.
func (bl *backlog) stream() string { return strings.ToUpper(bl.spec.Root) }

var (
	backlogOnce sync.Once
	theBacklog  *backlog
	bareRate    atomic.Value // float64 msgs/s of the bare AckAll consumer, for the ratio
	bareCPU     atomic.Value // float64 CPU ns per message of the same
)

func getBacklog(b *testing.B) *backlog {
	backlogOnce.Do(func() {
		// The server outlives this sub-benchmark: it is shared by the
		// others, and stopped when the process exits.
		c := natstest.Start(&longLived{B: b})
		conn, err := transport.Connect(context.Background(), transport.Options{Servers: c.URLs(), Credentials: c.User.SeedFile})
		if err != nil {
			b.Fatal(err)
		}
		bl := &backlog{conn: conn, n: benchSize("AUDIT_BENCH_BACKLOG", 100_000)}
		bl.spec = transport.StreamSpec{Root: "remaphore", MaxAge: 24 * time.Hour, Duplicates: 2 * time.Minute,
			MaxConsumers: 1000, MaxMsgSize: sign.MaxBody + 4096}
		if _, err := conn.EnsureStream(context.Background(), bl.spec); err != nil {
			b.Fatal(err)
		}
		keys := []sign.PrivateKey{seedKey(b, 1), seedKey(b, 2), seedKey(b, 3)}
		for i, k := range keys {
			bl.peers = append(bl.peers, policy.Peer{Dest: fmt.Sprintf("com.bench.host%d", i), Key: k.Public(), Verbs: policy.AllVerbs()})
		}
		start := time.Now()
		js := conn.JetStream()
		for i := 0; i < bl.n; i++ {
			env, err := sign.Seal(&sign.Message{Kind: sign.KindMsg, Root: "remaphore", Channel: "all", Dest: "com.bench.*",
				Verb: "deploy", UUID: fmt.Sprintf("job-%d", i), Sent: time.Now(), Payload: []byte("release 1.2.3 to the fleet")}, keys[i%len(keys)])
			if err != nil {
				b.Fatal(err)
			}
			m := &nats.Msg{Subject: "remaphore.msg.all", Data: env.Body(), Header: nats.Header{}}
			m.Header.Set(jetstream.MsgIDHeader, env.ID)
			if _, err := js.PublishMsgAsync(m, jetstream.WithExpectStream("REMAPHORE")); err != nil {
				b.Fatal(err)
			}
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(5 * time.Minute):
			b.Fatal("backlog not stored after 5 minutes")
		}
		b.Logf("backlog: %d messages stored in %s", bl.n, time.Since(start).Round(time.Millisecond))
		bl.accepted = bl.n
		theBacklog = bl
	})
	if theBacklog == nil {
		b.Fatal("no backlog")
	}
	return theBacklog
}

// longLived keeps natstest's server and temp dir alive past the
// sub-benchmark that started it: its cleanups run in TestMain, after all
// benchmarks.
type longLived struct{ *testing.B }

var (
	lateMu       sync.Mutex
	lateCleanups []func()
)

func (l *longLived) Cleanup(f func()) {
	lateMu.Lock()
	defer lateMu.Unlock()
	lateCleanups = append(lateCleanups, f)
}

func (l *longLived) TempDir() string {
	d, err := os.MkdirTemp("", "remaphore-audit-bench-nats-")
	if err != nil {
		l.B.Fatal(err)
	}
	l.Cleanup(func() { os.RemoveAll(d) })
	return d
}

var consumerN atomic.Int64

// bare is the baseline: a durable pull consumer that only fetches batches
// of 500 and acks, with the auditor's settings.
func bare(b *testing.B, bl *backlog, ackAll bool) {
	ctx := context.Background()
	st, err := bl.conn.JetStream().Stream(ctx, bl.stream())
	if err != nil {
		b.Fatal(err)
	}
	cfg := jetstream.ConsumerConfig{Durable: fmt.Sprintf("bare-%d", consumerN.Add(1)), AckPolicy: jetstream.AckExplicitPolicy,
		FilterSubject: bl.spec.Root + ".>", MaxAckPending: 8 * DefaultBatch, AckWait: time.Minute}
	if ackAll {
		cfg.AckPolicy = jetstream.AckAllPolicy
	}
	cons, err := st.CreateConsumer(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer st.DeleteConsumer(ctx, cfg.Durable)
	n := 0
	for n < bl.n {
		batch, err := cons.Fetch(DefaultBatch, jetstream.FetchMaxWait(DefaultFetchWait))
		if err != nil {
			b.Fatal(err)
		}
		var last jetstream.Msg
		for m := range batch.Messages() {
			n++
			if !ackAll {
				m.Ack()
			}
			last = m
		}
		if ackAll && last != nil {
			last.Ack()
		}
	}
}

// bareIngest runs the bare consumer over bl b.N times and reports its rate
// and CPU per message, kept in rate and cpu (when not nil) for the
// auditor's ratios.
func bareIngest(b *testing.B, bl *backlog, ackAll bool, rate, cpu *atomic.Value) {
	b.ResetTimer()
	start, cpu0 := time.Now(), cputime.Process()
	for b.Loop() {
		bare(b, bl, ackAll)
	}
	r := float64(bl.n*b.N) / time.Since(start).Seconds()
	b.ReportMetric(r, "msgs/s")
	per := reportCPU(b, cputime.Process()-cpu0, bl.n*b.N, nil)
	if rate != nil {
		rate.Store(r)
		cpu.Store(per)
	}
}

// BenchmarkIngestBacklog reads the same backlog with a bare consumer
// (fetch and ack only) and with the auditor (fetch, policy check with
// signature verification, bbolt commit with fsync, ack), in the same run.
//
// Both run at the GC target the remaphore-audit binary sets for `run`.
func BenchmarkIngestBacklog(b *testing.B) {
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(GCPercent))
	}
	b.Run("bare-ackall", func(b *testing.B) {
		bareIngest(b, getBacklog(b), true, &bareRate, &bareCPU)
	})
	b.Run("bare-ackeach", func(b *testing.B) {
		bareIngest(b, getBacklog(b), false, nil, nil)
	})
	b.Run("auditor", func(b *testing.B) {
		auditorIngest(b, getBacklog(b), &bareRate, &bareCPU, nil)
	})
	// The same with metrics on (remaphore-audit run -metrics), in the
	// same run: what they cost the ingest. x-no-metrics is this one's
	// rate over the auditor's just before.
	b.Run("auditor-metrics", func(b *testing.B) {
		auditorIngest(b, getBacklog(b), &bareRate, &bareCPU, &auditorRate)
	})
}

// auditorRate is the last "auditor" sub-benchmark's rate.
var auditorRate atomic.Value

// auditorIngest runs the auditor over bl's backlog b.N times, each into a
// new database, and reports its rate and the ratio to the bare consumer's
// (bareRate, when that ran first), and its CPU per message beside the
// bare consumer's (bareCPU). Every peer message must be stored.
//
// With noMetrics set (the rate of the run without metrics) the auditor
// runs with metrics on, reports x-no-metrics (its rate over that one),
// and the metrics must have counted every record.
func auditorIngest(b *testing.B, bl *backlog, bareRate, bareCPU, noMetrics *atomic.Value) {
	{
		var elapsed, cpu time.Duration
		var commits, busy atomic.Int64
		syncDelay, _ := time.ParseDuration(os.Getenv("AUDIT_BENCH_SYNC_DELAY"))
		for b.Loop() {
			b.StopTimer()
			db := filepath.Join(b.TempDir(), "audit.db")
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			var begin time.Time
			caught := make(chan struct{})
			var once sync.Once
			o := RunOptions{Conn: bl.conn, Stream: bl.spec, Peers: bl.peers, AllowSkew: 5 * time.Second,
				Consumer: fmt.Sprintf("audit-%d", consumerN.Add(1)), DB: db,
				Workers: benchSize("AUDIT_BENCH_WORKERS", 0), Batch: benchSize("AUDIT_BENCH_BATCH", 0),
				OnCommit: func(c CommitInfo) {
					commits.Add(1)
					busy.Add(int64(c.Busy))
					if c.Last >= uint64(bl.n) {
						once.Do(func() { close(caught) })
					}
				}}
			if noMetrics != nil {
				o.Metrics = metrics.New(metrics.Options{DB: db})
			}
			if syncDelay > 0 {
				o.afterAppend = func() { time.Sleep(syncDelay) }
			}
			b.StartTimer()
			begin, cpu0 := time.Now(), cputime.Process()
			go func() { done <- Run(ctx, o) }()
			select {
			case <-caught:
			case err := <-done:
				b.Fatalf("auditor stopped: %v", err)
			}
			elapsed += time.Since(begin)
			cpu += cputime.Process() - cpu0
			b.StopTimer()
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			s, err := audit.Open(db, audit.Options{ReadOnly: true})
			if err != nil {
				b.Fatal(err)
			}
			st, _ := s.Stats()
			s.Close()
			if st.Accepted != uint64(bl.accepted) || st.Accepted+st.Rejected+st.Evicted != uint64(bl.n) || st.Gaps != 0 {
				b.Fatalf("stored %d accepted, %d refused, %d evicted, %d gaps; want %d accepted of %d",
					st.Accepted, st.Rejected, st.Evicted, st.Gaps, bl.accepted, bl.n)
			}
			if o.Metrics != nil {
				if got := counted(b, o.Metrics); got != float64(bl.n) {
					b.Fatalf("the metrics counted %v records, want %d", got, bl.n)
				}
			}
			b.StartTimer()
		}
		rate := float64(bl.n*b.N) / elapsed.Seconds()
		b.ReportMetric(rate, "msgs/s")
		// Records per transaction: each costs two fdatasyncs and the
		// rewrite of the B-trees' right edges, whatever its size.
		if n := commits.Load(); n > 0 {
			b.ReportMetric(float64(bl.n*b.N)/float64(n), "msgs/commit")
		}
		// The single writer's share: writer-µs/msg is its busy time per
		// message, writer-share the part of the run it was busy. With
		// enough cores for everything else the rate can reach, and not
		// pass, 1/writer-µs/msg (x-bare-ceiling: that over the bare
		// consumer's rate in the same run).
		if w := time.Duration(busy.Load()); w > 0 {
			per := w.Seconds() * 1e6 / float64(bl.n*b.N)
			b.ReportMetric(per, "writer-µs/msg")
			b.ReportMetric(w.Seconds()/elapsed.Seconds(), "writer-share")
			if br, ok := bareRate.Load().(float64); ok {
				b.ReportMetric(1e6/per/br, "x-bare-ceiling")
			}
		}
		if noMetrics == nil {
			auditorRate.Store(rate)
		} else if r, ok := noMetrics.Load().(float64); ok {
			b.ReportMetric(rate/r, "x-no-metrics")
		}
		if br, ok := bareRate.Load().(float64); ok {
			b.ReportMetric(rate/br, "x-bare")
		}
		reportCPU(b, cpu, bl.n*b.N, bareCPU)
	}
}

var (
	floodOnce     sync.Once
	theFlood      *backlog
	floodBareRate atomic.Value
	floodBareCPU  atomic.Value
)

// getFlood is a server whose stream (root "flood") holds a flood from a
// key that is not a peer: AUDIT_BENCH_FLOOD small signed messages (default
// 100,000), with one peer message after every 100 of them.
func getFlood(b *testing.B) *backlog {
	floodOnce.Do(func() {
		c := natstest.Start(&longLived{B: b})
		conn, err := transport.Connect(context.Background(), transport.Options{Servers: c.URLs(), Credentials: c.User.SeedFile})
		if err != nil {
			b.Fatal(err)
		}
		bl := &backlog{conn: conn}
		bl.spec = transport.StreamSpec{Root: "flood", MaxAge: 24 * time.Hour, Duplicates: 2 * time.Minute,
			MaxConsumers: 1000, MaxMsgSize: sign.MaxBody + 4096}
		if _, err := conn.EnsureStream(context.Background(), bl.spec); err != nil {
			b.Fatal(err)
		}
		peer, stranger := seedKey(b, 1), seedKey(b, 9)
		bl.peers = []policy.Peer{{Dest: "com.bench.host0", Key: peer.Public(), Verbs: policy.AllVerbs()}}
		junk := benchSize("AUDIT_BENCH_FLOOD", 100_000)
		start := time.Now()
		js := conn.JetStream()
		for i := 0; i < junk+junk/100; i++ {
			key := stranger
			if i%101 == 100 {
				key = peer
				bl.accepted++
			}
			env, err := sign.Seal(&sign.Message{Kind: sign.KindMsg, Root: "flood", Channel: "all", Dest: "com.bench.*",
				Verb: "deploy", UUID: fmt.Sprintf("job-%d", i), Sent: time.Now(), Payload: []byte("release 1.2.3 to the fleet")}, key)
			if err != nil {
				b.Fatal(err)
			}
			m := &nats.Msg{Subject: "flood.msg.all", Data: env.Body(), Header: nats.Header{}}
			m.Header.Set(jetstream.MsgIDHeader, env.ID)
			if _, err := js.PublishMsgAsync(m, jetstream.WithExpectStream("FLOOD")); err != nil {
				b.Fatal(err)
			}
			bl.n++
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(5 * time.Minute):
			b.Fatal("flood not stored after 5 minutes")
		}
		b.Logf("flood: %d messages (%d from a peer) stored in %s", bl.n, bl.accepted, time.Since(start).Round(time.Millisecond))
		theFlood = bl
	})
	if theFlood == nil {
		b.Fatal("no flood")
	}
	return theFlood
}

// BenchmarkIngestFlood reads a flood from a key that is not a peer, with
// peer messages among it, with a bare consumer (fetch and ack only) and
// with the auditor, in the same run: every flood message is refused as
// unknown-sender before any signature work and stored as a bounded refused
// record; every peer message is verified and stored.
func BenchmarkIngestFlood(b *testing.B) {
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(GCPercent))
	}
	b.Run("bare-ackall", func(b *testing.B) {
		bareIngest(b, getFlood(b), true, &floodBareRate, &floodBareCPU)
	})
	b.Run("auditor", func(b *testing.B) {
		auditorIngest(b, getFlood(b), &floodBareRate, &floodBareCPU, nil)
	})
}

func TestMain(m *testing.M) {
	code := m.Run()
	if theBacklog != nil {
		theBacklog.conn.Close()
	}
	if theFlood != nil {
		theFlood.conn.Close()
	}
	lateMu.Lock()
	for i := len(lateCleanups) - 1; i >= 0; i-- {
		lateCleanups[i]()
	}
	lateMu.Unlock()
	os.Exit(code)
}

// counted is the sum of the metrics' records_stored_total.
func counted(b *testing.B, m *metrics.Auditor) float64 {
	mfs, err := m.Registry().Gather()
	if err != nil {
		b.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() == metrics.Namespace+"_records_stored_total" {
			for _, s := range mf.GetMetric() {
				n += s.GetCounter().GetValue()
			}
		}
	}
	return n
}

// reportCPU reports cpu over n messages as cpu-ns/msg and returns it.
// With bare holding the bare consumer's figure (nil for the bare consumer
// itself) it also reports x-bare-cpu, the bare consumer's CPU per message
// over this one's: the CPU-bound counterpart of x-bare, which stays put
// when other processes load the machine and the wall-clock rate does not.
func reportCPU(b *testing.B, cpu time.Duration, n int, bare *atomic.Value) float64 {
	if cpu <= 0 || n <= 0 {
		return 0
	}
	per := float64(cpu.Nanoseconds()) / float64(n)
	b.ReportMetric(per, "cpu-ns/msg")
	if bare == nil {
		return per
	}
	if v, ok := bare.Load().(float64); ok && v > 0 {
		b.ReportMetric(v/per, "x-bare-cpu")
	}
	return per
}
