package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/remaphore/remaphore/audit/ingest"
	"github.com/remaphore/remaphore/internal/proctest"

	"github.com/remaphore/remaphore/audit"
	"github.com/remaphore/remaphore/internal/natstest"
	"github.com/remaphore/remaphore/sign"
	"github.com/remaphore/remaphore/transport"
)

// binary is remaphore-audit, built by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "remaphore-audit-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if binary, err = proctest.Build(dir, "github.com/remaphore/remaphore/cmd/remaphore-audit"); err != nil {
		fmt.Fprintf(os.Stderr, "FAILED to build remaphore-audit: %v\n", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is one remaphore-audit process.
type proc = proctest.Proc

// limits: an auditor runs until the test stops it (SIGTERM, then a kill
// 3 s later), or for 10 minutes at most.
var limits = proctest.Limits{Bound: 10 * time.Minute, Grace: 3 * time.Second}

// start runs remaphore-audit with args.
func start(t *testing.T, args ...string) *proc {
	t.Helper()
	return proctest.Start(t, limits, binary, "remaphore-audit", args...)
}

// run runs remaphore-audit with args and waits for it to exit.
func run(t *testing.T, args ...string) *proc {
	t.Helper()
	p := start(t, args...)
	p.Wait(t, 60*time.Second)
	return p
}

// env is a server, a config for the auditor, and a publisher.
type env struct {
	c     *natstest.Cluster
	conf  string
	db    string
	alice sign.PrivateKey
	conn  *transport.Conn
	spec  transport.StreamSpec
}

func newEnv(t *testing.T) *env {
	t.Helper()
	c := natstest.Start(t)
	alice, err := sign.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	e := &env{c: c, conf: filepath.Join(dir, "remaphore.conf"), db: filepath.Join(dir, "audit.db"), alice: alice}
	text := fmt.Sprintf("server: %s\ncredentials: %s\nsubject: remaphore\ndestination: com.example.auditor\nallow_skew: 5s\naudit_db: audit.db\n\n[ Peers ]\ncom.example.alice %s [*]\n",
		c.URLs()[0], c.User.SeedFile, alice.Public())
	if err := os.WriteFile(e.conf, []byte(text), 0o640); err != nil {
		t.Fatal(err)
	}
	e.conn, err = transport.Connect(context.Background(), transport.Options{Servers: c.URLs(), Credentials: c.User.SeedFile})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.conn.Close)
	e.spec = transport.StreamSpec{Root: "remaphore", MaxAge: 24 * time.Hour, Duplicates: transport.DuplicateWindow(5 * time.Second),
		MaxConsumers: 1000, MaxMsgSize: sign.MaxBody + 4096}
	if _, err := e.conn.EnsureStream(context.Background(), e.spec); err != nil {
		t.Fatal(err)
	}
	return e
}

// ackFloor is the auditor consumer's ack floor: every sequence up to it is
// committed to the database.
func (e *env) ackFloor(t *testing.T) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cons, err := e.conn.JetStream().Consumer(ctx, "REMAPHORE", ingest.DefaultConsumerName(e.db))
	if err != nil {
		return 0
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return 0
	}
	return info.AckFloor.Stream
}

func (e *env) waitAckFloor(t *testing.T, p *proc, seq uint64, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for e.ackFloor(t) < seq {
		select {
		case <-p.Done():
			t.Fatalf("auditor exited %d before seq %d was committed\nstderr:\n%s", p.Code, seq, p.Stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("ack floor %d after %s, want %d", e.ackFloor(t), within, seq)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (e *env) waitReady(t *testing.T, p *proc) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(p.Stderr.String(), "msg=ready") {
		select {
		case <-p.Done():
			t.Fatalf("auditor exited %d before ready\nstderr:\n%s", p.Code, p.Stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("auditor not ready\nstderr:\n%s", p.Stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestKilledTwiceDuringIngestion sends 10,000 messages while the auditor
// runs, kills it with SIGKILL twice while it ingests, restarts it each
// time, and checks that the store holds exactly the stream's messages,
// once each, and that verify passes.
func TestKilledTwiceDuringIngestion(t *testing.T) {
	const total = 10000
	e := newEnv(t)
	ids := make([]string, total+1) // by stream sequence
	sent := make(chan error, 1)
	go func() {
		ctx := context.Background()
		for i := 0; i < total; i++ {
			env, err := sign.Seal(&sign.Message{Kind: sign.KindMsg, Root: "remaphore", Channel: "all", Dest: "**",
				Verb: "ping", UUID: fmt.Sprintf("m%d", i), Sent: time.Now(), Payload: []byte(fmt.Sprintf("message %d", i))}, e.alice)
			if err != nil {
				sent <- err
				return
			}
			seq, err := e.conn.Publish(ctx, e.spec, "remaphore.msg.all", env.Body(), env.ID)
			if err != nil {
				sent <- err
				return
			}
			ids[seq] = env.ID
		}
		sent <- nil
	}()

	begin := time.Now()
	for i, killAt := range []uint64{2000, 5500} {
		p := start(t, "run", "-c", e.conf)
		e.waitReady(t, p)
		e.waitAckFloor(t, p, killAt, 30*time.Second)
		// Kill mid-batch: the next batch is being checked or written.
		time.Sleep(time.Duration(i*7) * time.Millisecond)
		if err := p.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		p.Wait(t, 10*time.Second)
		t.Logf("run %d (%s) killed at ack floor ≥ %d after %s", i+1, restartKind(p), killAt, time.Since(begin).Round(time.Millisecond))
	}
	p := start(t, "run", "-c", e.conf)
	e.waitReady(t, p)
	t.Logf("run 3: %s", restartKind(p))
	if err := <-sent; err != nil {
		t.Fatalf("publisher: %v", err)
	}
	e.waitAckFloor(t, p, total, 30*time.Second)
	p.Cmd.Process.Signal(syscall.SIGTERM)
	if code := p.Wait(t, 10*time.Second); code != 0 {
		t.Fatalf("auditor exit %d after SIGTERM\nstderr:\n%s", code, p.Stderr.String())
	}
	t.Logf("all %d stored after %s", total, time.Since(begin).Round(time.Millisecond))

	// The stream holds exactly 1..total; the store holds each once, with
	// the stream's message id, and nothing else.
	st, err := e.conn.JetStream().Stream(context.Background(), "REMAPHORE")
	if err != nil {
		t.Fatal(err)
	}
	if s := st.CachedInfo().State; s.Msgs != total || s.FirstSeq != 1 || s.LastSeq != total {
		t.Fatalf("stream state %+v", s)
	}
	s, err := audit.Open(e.db, audit.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]bool{}
	err = s.Query(audit.Query{}, func(r *audit.Record) error {
		if seen[r.Seq] {
			return fmt.Errorf("seq %d twice", r.Seq)
		}
		seen[r.Seq] = true
		if r.Seq < 1 || r.Seq > total || r.HeaderID != ids[r.Seq] || r.ID() != ids[r.Seq] {
			return fmt.Errorf("seq %d holds id %.16s, the stream's is %.16s", r.Seq, r.HeaderID, ids[r.Seq])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	stats, _ := s.Stats()
	if err := s.Check(); err != nil {
		t.Fatalf("bbolt check: %v", err)
	}
	s.Close()
	if len(seen) != total || stats.Accepted != total || stats.Rejected != 0 || stats.LastSeq != total {
		t.Fatalf("%d distinct records, stats %d accepted %d refused, last %d; want %d accepted", len(seen), stats.Accepted, stats.Rejected, stats.LastSeq, total)
	}
	v := run(t, "verify", "-c", e.conf)
	if v.Code != 0 || !strings.Contains(v.Stdout.String(), fmt.Sprintf("verify: ok: %d accepted", total)) {
		t.Fatalf("verify exit %d:\n%s%s", v.Code, v.Stdout.String(), v.Stderr.String())
	}
	if d := time.Since(begin); d > 60*time.Second {
		t.Errorf("took %s, want under 60s", d)
	}
}

// restartKind says how a run found the consumer: started again at the
// store's position (pending acks after a kill), or as it was.
func restartKind(p *proc) string {
	if strings.Contains(p.Stderr.String(), "starting the consumer again") {
		return "started the consumer again at the store's position"
	}
	return "used the consumer as it was, or created it"
}

func TestSecondAuditorFailsClearly(t *testing.T) {
	e := newEnv(t)
	first := start(t, "run", "-c", e.conf)
	e.waitReady(t, first)
	begin := time.Now()
	second := run(t, "run", "-c", e.conf, "-name", "another")
	if second.Code != 3 || !strings.Contains(second.Stderr.String(), "remaphore-audit: error: audit database locked by another auditor") ||
		!strings.Contains(second.Stderr.String(), "remaphore-audit: hint: run one auditor per database file") {
		t.Fatalf("second auditor: exit %d\n%s", second.Code, second.Stderr.String())
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Fatalf("second auditor took %s to fail", d)
	}
	// The first keeps running, and readers get in meanwhile.
	q := run(t, "stats", "-c", e.conf)
	if q.Code != 0 {
		t.Fatalf("stats while running: %d %s", q.Code, q.Stderr.String())
	}
	select {
	case <-first.Done():
		t.Fatalf("first auditor exited %d", first.Code)
	default:
	}
}

func TestRunExitCodes(t *testing.T) {
	e := newEnv(t)
	// Unreachable server: 3. Bad config: 2.
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.conf")
	os.WriteFile(bad, []byte("server: nats://127.0.0.1:1\ncredentials: "+e.c.User.SeedFile+"\ndestination: com.example.a\naudit_db: a.db\n"), 0o600)
	if p := run(t, "run", "-c", bad); p.Code != 3 || !strings.Contains(p.Stderr.String(), "remaphore-audit: error: cannot connect") {
		t.Fatalf("unreachable: exit %d\n%s", p.Code, p.Stderr.String())
	}
	os.WriteFile(bad, []byte("server: nats://127.0.0.1:1\nbogus: 1\n"), 0o600)
	if p := run(t, "run", "-c", bad); p.Code != 2 || !strings.Contains(p.Stderr.String(), "remaphore-audit: error: ") {
		t.Fatalf("bad config: exit %d\n%s", p.Code, p.Stderr.String())
	}
	// SIGTERM: a clean stop, exit 0, and the consumer stays (no pending acks).
	p := start(t, "run", "-c", e.conf)
	e.waitReady(t, p)
	p.Cmd.Process.Signal(syscall.SIGTERM)
	if code := p.Wait(t, 10*time.Second); code != 0 {
		t.Fatalf("SIGTERM: exit %d\n%s", code, p.Stderr.String())
	}
	if _, err := e.conn.JetStream().Consumer(context.Background(), "REMAPHORE", ingest.DefaultConsumerName(e.db)); err != nil {
		t.Fatalf("consumer after a clean stop: %v", err)
	}
}
