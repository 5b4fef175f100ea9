package audit_test

// Benchmarks, with their sizes set by environment variables:
//
//	AUDIT_BENCH_BACKLOG  messages in the ingest backlog (default 100000)
//	AUDIT_BENCH_RECORDS  records in the query store (default 1000000)
//	AUDIT_BENCH_VERIFY   records in the verify store (default 20000)
//	AUDIT_BENCH_BATCH, AUDIT_BENCH_WORKERS  the auditor's Batch and Workers
//	                     (default: its defaults)
//
// The query store is built once through the audit API and cached in the
// system temp directory (remaphore-audit-bench-<records>-v2.db); delete it
// to build it again. Run them one at a time, for example:
//
//	go test ./audit -run '^$' -bench IngestBacklog -benchtime 1x
//	go test ./audit -run '^$' -bench 'Query' -benchtime 2000x
//	go test ./audit -run '^$' -bench Verify -benchtime 1x

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
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
	"github.com/remaphore/remaphore/audit/ingest"
	"github.com/remaphore/remaphore/audit/metrics"
	"github.com/remaphore/remaphore/auditcli"
	"github.com/remaphore/remaphore/internal/natstest"
	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/sign"
	"github.com/remaphore/remaphore/transport"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func benchKey(b testing.TB, seed byte) sign.PrivateKey {
	k, err := sign.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{seed}, 64)))
	if err != nil {
		b.Fatal(err)
	}
	return k
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
		bl := &backlog{conn: conn, n: envInt("AUDIT_BENCH_BACKLOG", 100_000)}
		bl.spec = transport.StreamSpec{Root: "remaphore", MaxAge: 24 * time.Hour, Duplicates: 2 * time.Minute,
			MaxConsumers: 1000, MaxMsgSize: sign.MaxBody + 4096}
		if _, err := conn.EnsureStream(context.Background(), bl.spec); err != nil {
			b.Fatal(err)
		}
		keys := []sign.PrivateKey{benchKey(b, 1), benchKey(b, 2), benchKey(b, 3)}
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
	if vsPath != "" {
		os.RemoveAll(filepath.Dir(vsPath))
	}
	os.Exit(code)
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
		FilterSubject: bl.spec.Root + ".>", MaxAckPending: 8 * ingest.DefaultBatch, AckWait: time.Minute}
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
		batch, err := cons.Fetch(ingest.DefaultBatch, jetstream.FetchMaxWait(ingest.DefaultFetchWait))
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
	start, cpu0 := time.Now(), processCPU()
	for b.Loop() {
		bare(b, bl, ackAll)
	}
	r := float64(bl.n*b.N) / time.Since(start).Seconds()
	b.ReportMetric(r, "msgs/s")
	per := reportCPU(b, processCPU()-cpu0, bl.n*b.N, nil)
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
		defer debug.SetGCPercent(debug.SetGCPercent(auditcli.RunGCPercent))
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
		for b.Loop() {
			b.StopTimer()
			db := filepath.Join(b.TempDir(), "audit.db")
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			var begin time.Time
			caught := make(chan struct{})
			var once sync.Once
			o := ingest.RunOptions{Conn: bl.conn, Stream: bl.spec, Peers: bl.peers, AllowSkew: 5 * time.Second,
				Consumer: fmt.Sprintf("audit-%d", consumerN.Add(1)), DB: db,
				Workers: envInt("AUDIT_BENCH_WORKERS", 0), Batch: envInt("AUDIT_BENCH_BATCH", 0),
				OnCommit: func(c ingest.CommitInfo) {
					if c.Last >= uint64(bl.n) {
						once.Do(func() { close(caught) })
					}
				}}
			if noMetrics != nil {
				o.Metrics = metrics.New(metrics.Options{DB: db})
			}
			b.StartTimer()
			begin, cpu0 := time.Now(), processCPU()
			go func() { done <- ingest.Run(ctx, o) }()
			select {
			case <-caught:
			case err := <-done:
				b.Fatalf("auditor stopped: %v", err)
			}
			elapsed += time.Since(begin)
			cpu += processCPU() - cpu0
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
		peer, stranger := benchKey(b, 1), benchKey(b, 9)
		bl.peers = []policy.Peer{{Dest: "com.bench.host0", Key: peer.Public(), Verbs: policy.AllVerbs()}}
		junk := envInt("AUDIT_BENCH_FLOOD", 100_000)
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
		defer debug.SetGCPercent(debug.SetGCPercent(auditcli.RunGCPercent))
	}
	b.Run("bare-ackall", func(b *testing.B) {
		bareIngest(b, getFlood(b), true, &floodBareRate, &floodBareCPU)
	})
	b.Run("auditor", func(b *testing.B) {
		auditorIngest(b, getFlood(b), &floodBareRate, &floodBareCPU, nil)
	})
}

// queryStore is the cached store of AUDIT_BENCH_RECORDS records: one per
// 10ms of stream time, 5 verbs, 50 senders, 100 destination patterns,
// one uuid per record.
type queryStore struct {
	path  string
	n     int
	first time.Time
}

var (
	qsOnce sync.Once
	theQS  *queryStore
)

func getQueryStore(b *testing.B) *queryStore {
	qsOnce.Do(func() {
		n := envInt("AUDIT_BENCH_RECORDS", 1_000_000)
		qs := &queryStore{n: n, first: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
			path: filepath.Join(os.TempDir(), fmt.Sprintf("remaphore-audit-bench-%d-v2.db", n))}
		if s, err := audit.Open(qs.path, audit.Options{ReadOnly: true, Timeout: time.Second}); err == nil {
			st, _ := s.Stats()
			s.Close()
			if st.Accepted == uint64(n) {
				theQS = qs
				return
			}
		}
		os.Remove(qs.path)
		start := time.Now()
		if err := buildQueryStore(qs); err != nil {
			os.Remove(qs.path)
			b.Fatal(err)
		}
		fi, _ := os.Stat(qs.path)
		b.Logf("built %s: %d records, %d MB, in %s", qs.path, n, fi.Size()>>20, time.Since(start).Round(time.Second))
		theQS = qs
	})
	if theQS == nil {
		b.Fatal("no query store")
	}
	return theQS
}

// buildQueryStore writes the records through Store.Append, in batches.
// Bodies are real v1 envelopes; their signatures are a fixed filler,
// since queries never look at them (signing a million messages would
// only make the setup slower).
func buildQueryStore(qs *queryStore) error {
	s, err := audit.Open(qs.path, audit.Options{NoSync: true})
	if err != nil {
		return err
	}
	defer s.Close()
	var senders []sign.PublicKey
	for i := range 50 {
		var k sign.PublicKey
		k[0], k[1] = byte(i), 0xaa
		senders = append(senders, k)
	}
	verbs := []string{"ping", "deploy", "status", "restart", "backup"}
	sig := bytes.Repeat([]byte{7}, ed25519.SignatureSize)
	const batch = 10_000
	es := make([]audit.Entry, 0, batch)
	for i := 0; i < qs.n; i++ {
		at := qs.first.Add(time.Duration(i) * 10 * time.Millisecond)
		m := sign.Message{Kind: sign.KindMsg, Root: "remaphore", Channel: "all", Sender: senders[i%50],
			Dest: fmt.Sprintf("com.bench.host%d", i%100), Verb: verbs[i%5], UUID: fmt.Sprintf("job-%d", i),
			Sent: at, Payload: []byte("release 1.2.3 to the fleet")}
		signed, err := m.Marshal()
		if err != nil {
			return err
		}
		env := &sign.Envelope{Message: m, Signed: signed, ID: sign.MessageID(signed)}
		copy(env.Signature[:], sig)
		es = append(es, audit.Entry{Seq: uint64(i + 1), Stored: at, Subject: "remaphore.msg.all", HeaderID: env.ID,
			Body: env.Body(), Env: env, SenderDest: fmt.Sprintf("com.bench.sender%d", i%50)})
		if len(es) == batch {
			if _, err := s.Append(es); err != nil {
				return err
			}
			es = es[:0]
		}
	}
	if len(es) > 0 {
		_, err = s.Append(es)
	}
	return err
}

func openQS(b *testing.B) (*queryStore, *audit.Store) {
	qs := getQueryStore(b)
	s, err := audit.Open(qs.path, audit.Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return qs, s
}

// BenchmarkQueryUUID is query -uuid over the store: one index seek and
// one record.
func BenchmarkQueryUUID(b *testing.B) {
	qs, s := openQS(b)
	rng := rand.New(rand.NewPCG(1, 1))
	b.ResetTimer()
	for b.Loop() {
		uuid := fmt.Sprintf("job-%d", rng.IntN(qs.n))
		n := 0
		if err := s.Query(audit.Query{UUID: uuid}, func(*audit.Record) error { n++; return nil }); err != nil || n != 1 {
			b.Fatalf("uuid %s: %d records, %v", uuid, n, err)
		}
	}
}

// BenchmarkQueryTimePage is a 100-record page of a time range anywhere in
// the store.
func BenchmarkQueryTimePage(b *testing.B) {
	qs, s := openQS(b)
	rng := rand.New(rand.NewPCG(2, 2))
	span := time.Duration(qs.n) * 10 * time.Millisecond
	b.ResetTimer()
	for b.Loop() {
		since := qs.first.Add(time.Duration(rng.Int64N(int64(span - 2*time.Second))))
		n := 0
		err := s.Query(audit.Query{Since: since, Until: since.Add(time.Hour), Limit: 100}, func(*audit.Record) error { n++; return nil })
		if err != nil || n != 100 {
			b.Fatalf("page at %s: %d records, %v", since, n, err)
		}
	}
}

// BenchmarkQueryVerbTimePage is a 100-record page of one verb in a time
// range: served by the verb index alone.
func BenchmarkQueryVerbTimePage(b *testing.B) {
	qs, s := openQS(b)
	rng := rand.New(rand.NewPCG(3, 3))
	span := time.Duration(qs.n) * 10 * time.Millisecond
	b.ResetTimer()
	for b.Loop() {
		since := qs.first.Add(time.Duration(rng.Int64N(int64(span - 10*time.Second))))
		n := 0
		err := s.Query(audit.Query{Verb: "restart", Since: since, Limit: 100}, func(*audit.Record) error { n++; return nil })
		if err != nil || n != 100 {
			b.Fatalf("page at %s: %d records, %v", since, n, err)
		}
	}
}

// BenchmarkQueryCommand is the whole remaphore-audit query command, in
// process: read-only open of the file, the query, the table or JSON.
func BenchmarkQueryCommand(b *testing.B) {
	qs := getQueryStore(b)
	rng := rand.New(rand.NewPCG(4, 4))
	span := time.Duration(qs.n) * 10 * time.Millisecond
	for _, c := range []struct {
		name string
		args func() []string
	}{
		{"uuid", func() []string { return []string{"-uuid", fmt.Sprintf("job-%d", rng.IntN(qs.n))} }},
		{"time-page-100", func() []string {
			since := qs.first.Add(time.Duration(rng.Int64N(int64(span - 2*time.Second))))
			return []string{"-since", since.Format(time.RFC3339Nano), "-limit", "100"}
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				var out, errb bytes.Buffer
				args := append([]string{"query", "-db", qs.path}, c.args()...)
				if code := auditcli.Run(context.Background(), args, &out, &errb); code != 0 || out.Len() == 0 {
					b.Fatalf("exit %d: %s", code, errb.String())
				}
			}
		})
	}
}

// verifyStore is AUDIT_BENCH_VERIFY really signed records.
var (
	vsOnce   sync.Once
	vsPath   string
	vsBodies [][]byte
	vsKeys   []sign.PublicKey
)

func getVerifyStore(b *testing.B) string {
	vsOnce.Do(func() {
		n := envInt("AUDIT_BENCH_VERIFY", 20_000)
		dir, err := os.MkdirTemp("", "remaphore-audit-bench-verify-")
		if err != nil {
			b.Fatal(err)
		}
		vsPath = filepath.Join(dir, "audit.db")
		s, err := audit.Open(vsPath, audit.Options{NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		key := benchKey(b, 9)
		var es []audit.Entry
		t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := 0; i < n; i++ {
			at := t0.Add(time.Duration(i) * time.Millisecond)
			env, err := sign.Seal(&sign.Message{Kind: sign.KindMsg, Root: "remaphore", Channel: "all", Dest: "**",
				Verb: "deploy", UUID: fmt.Sprintf("job-%d", i), Sent: at, Payload: []byte("release 1.2.3 to the fleet")}, key)
			if err != nil {
				b.Fatal(err)
			}
			es = append(es, audit.Entry{Seq: uint64(i + 1), Stored: at, Subject: "remaphore.msg.all", HeaderID: env.ID,
				Body: env.Body(), Env: env, SenderDest: "com.bench.sender"})
			vsBodies = append(vsBodies, env.Body())
			vsKeys = append(vsKeys, env.Sender)
		}
		if _, err := s.Append(es); err != nil {
			b.Fatal(err)
		}
		s.Close()
	})
	return vsPath
}

// BenchmarkVerify is Store.Verify over the store (hash chain, indexes,
// every signature on all CPUs) beside bare ed25519 verification of the
// same bodies, on one CPU and on all.
func BenchmarkVerify(b *testing.B) {
	b.Run("store", func(b *testing.B) {
		path := getVerifyStore(b)
		s, err := audit.Open(path, audit.Options{ReadOnly: true})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		b.ResetTimer()
		start := time.Now()
		for b.Loop() {
			res, err := s.Verify(func(p audit.Problem) { b.Fatalf("problem: %v", p) })
			if err != nil || res.Accepted != uint64(len(vsBodies)) {
				b.Fatal(res, err)
			}
		}
		b.ReportMetric(float64(len(vsBodies)*b.N)/time.Since(start).Seconds(), "records/s")
	})
	bareVerify := func(bodies [][]byte, keys []sign.PublicKey) {
		for i, body := range bodies {
			n := len(body) - ed25519.SignatureSize
			if !ed25519.Verify(keys[i][:], body[:n], body[n:]) {
				panic("bad signature")
			}
		}
	}
	b.Run("bare-ed25519-1cpu", func(b *testing.B) {
		getVerifyStore(b)
		b.ResetTimer()
		start := time.Now()
		for b.Loop() {
			bareVerify(vsBodies, vsKeys)
		}
		b.ReportMetric(float64(len(vsBodies)*b.N)/time.Since(start).Seconds(), "records/s")
	})
	b.Run("bare-ed25519-allcpus", func(b *testing.B) {
		getVerifyStore(b)
		b.ResetTimer()
		start := time.Now()
		procs := runtime.GOMAXPROCS(0)
		for b.Loop() {
			var wg sync.WaitGroup
			chunk := (len(vsBodies) + procs - 1) / procs
			for i := 0; i < len(vsBodies); i += chunk {
				j := min(i+chunk, len(vsBodies))
				wg.Go(func() { bareVerify(vsBodies[i:j], vsKeys[i:j]) })
			}
			wg.Wait()
		}
		b.ReportMetric(float64(len(vsBodies)*b.N)/time.Since(start).Seconds(), "records/s")
	})
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
