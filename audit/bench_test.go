package audit_test

// Benchmarks of the store (those of the ingest are in audit/ingest), with their sizes set by environment variables:
//
//	AUDIT_BENCH_RECORDS  records in the query store (default 1000000)
//	AUDIT_BENCH_VERIFY   records in the verify store (default 20000)
//
// The query store is built once through the audit API and cached in the
// system temp directory (remaphore-audit-bench-<records>-v3.db); delete it
// to build it again. Run them one at a time, for example:
//
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
	"sync"
	"testing"
	"time"

	"github.com/remaphore/remaphore/audit"
	"github.com/remaphore/remaphore/audit/ingest"
	"github.com/remaphore/remaphore/auditcli"
	"github.com/remaphore/remaphore/internal/cputime"
	"github.com/remaphore/remaphore/sign"
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
			path: filepath.Join(os.TempDir(), fmt.Sprintf("remaphore-audit-bench-%d-v3.db", n))}
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

func TestMain(m *testing.M) {
	code := m.Run()
	if vsPath != "" {
		os.RemoveAll(filepath.Dir(vsPath))
	}
	os.Exit(code)
}

// BenchmarkAppend is the auditor's single writer alone: Store.Append of
// accepted records (real envelopes, 3 senders and verbs, one uuid each) in
// batches of 500 (one fetch) to 8000 (the largest group commit), with fsync,
// into a store that already holds AUDIT_BENCH_APPEND_BASE records
// (default 100000). rec/s is the most the writer can take whatever the
// number of cores; busy-µs/rec is the wall time a record holds it.
func BenchmarkAppend(b *testing.B) {
	if os.Getenv("GOGC") == "" { // as remaphore-audit run
		defer debug.SetGCPercent(debug.SetGCPercent(ingest.GCPercent))
	}
	for _, batch := range []int{500, 2000} {
		b.Run(fmt.Sprintf("batch-%d", batch), func(b *testing.B) {
			benchAppend(b, batch, envInt("AUDIT_BENCH_APPEND_BASE", 100_000), false)
		})
	}
	// Sealed ahead, as the auditor does on another goroutine: what is
	// left to the writer, at one fetch, a few, and the largest group
	// commit (a writer that has fallen behind).
	for _, batch := range []int{500, 2000, 8000} {
		b.Run(fmt.Sprintf("batch-%d-sealed", batch), func(b *testing.B) {
			benchAppend(b, batch, envInt("AUDIT_BENCH_APPEND_BASE", 100_000), true)
		})
	}
}

func benchAppend(b *testing.B, batch, base int, seal bool) {
	s, err := audit.Open(filepath.Join(b.TempDir(), "audit.db"), audit.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	keys := []sign.PrivateKey{benchKey(b, 1), benchKey(b, 2), benchKey(b, 3)}
	verbs := []string{"deploy", "status", "backup"}
	first := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	seq := 0
	// entries returns the next n records; their envelopes are signed
	// once and reused, as the writer never looks at signatures.
	envs := make([]*sign.Envelope, 0, 64)
	for i := range 64 {
		env, err := sign.Seal(&sign.Message{Kind: sign.KindMsg, Root: "remaphore", Channel: "all", Dest: "com.bench.*",
			Verb: verbs[i%3], UUID: fmt.Sprintf("job-%d", i), Sent: first, Payload: []byte("release 1.2.3 to the fleet")}, keys[i%3])
		if err != nil {
			b.Fatal(err)
		}
		envs = append(envs, env)
	}
	entries := func(n int) []audit.Entry {
		es := make([]audit.Entry, n)
		for i := range es {
			seq++
			env := *envs[seq%len(envs)]
			env.UUID = fmt.Sprintf("job-%d", seq)
			es[i] = audit.Entry{Seq: uint64(seq), Stored: first.Add(time.Duration(seq) * time.Millisecond), Subject: "remaphore.msg.all",
				HeaderID: env.ID, Body: env.Body(), Env: &env, SenderDest: fmt.Sprintf("com.bench.host%d", seq%3)}
		}
		return es
	}
	for seq < base {
		if _, err := s.Append(entries(min(10_000, base-seq))); err != nil {
			b.Fatal(err)
		}
	}
	z, err := s.Sealer()
	if err != nil {
		b.Fatal(err)
	}
	perOp := max(20_000, 4*batch) // records per b.N: enough commits to average fsyncs
	var busy, cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		var ops [][]audit.Entry
		for n := 0; n < perOp; n += batch {
			ops = append(ops, entries(batch))
			if seal {
				z.Seal(ops[len(ops)-1])
			}
		}
		b.StartTimer()
		t, cpu0 := time.Now(), cputime.Process()
		for _, es := range ops {
			if _, err := s.Append(es); err != nil {
				b.Fatal(err)
			}
		}
		busy += time.Since(t)
		cpu += cputime.Process() - cpu0
	}
	recs := float64(b.N * perOp)
	b.ReportMetric(busy.Seconds()*1e6/recs, "busy-µs/rec")
	b.ReportMetric(recs/busy.Seconds(), "rec/s")
	b.ReportMetric(cpu.Seconds()*1e9/recs, "cpu-ns/rec")
}
