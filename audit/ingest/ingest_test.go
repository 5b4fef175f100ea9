package ingest

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/remaphore/remaphore/audit"
	"github.com/remaphore/remaphore/internal/natstest"
	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/sign"
	"github.com/remaphore/remaphore/transport"
)

// natsEnv is one in-process JetStream server, a connection, and three
// keys: alice (a peer allowed every verb), bob (a peer allowed ping) and
// mallory (not a peer).
type natsEnv struct {
	t                   *testing.T
	c                   *natstest.Cluster
	conn                *transport.Conn
	spec                transport.StreamSpec
	peers               []policy.Peer
	alice, bob, mallory sign.PrivateKey
	db                  string
	skew                time.Duration
}

func newNatsEnv(t *testing.T) *natsEnv {
	t.Helper()
	c := natstest.Start(t)
	conn, err := transport.Connect(context.Background(), transport.Options{Servers: c.URLs(), Credentials: c.User.SeedFile})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	e := &natsEnv{t: t, c: c, conn: conn, alice: seedKey(t, 1), bob: seedKey(t, 2), mallory: seedKey(t, 3),
		// 30s, not the default 5s: on a loaded machine a message may
		// take seconds from sealing to storing, and only the tests that
		// are about staleness should see it refused (they set their own
		// skew or send an hour-old time). The duplicate window below is
		// exactly 2*skew+1m.
		db: filepath.Join(t.TempDir(), "audit.db"), skew: 30 * time.Second}
	e.spec = transport.StreamSpec{Root: "remaphore", MaxAge: time.Hour, Duplicates: 2 * time.Minute, MaxConsumers: 100, MaxMsgSize: sign.MaxBody + 4096}
	// Runs after the auditors' own cleanups (registered later) stop them.
	t.Cleanup(func() {
		if _, err := os.Stat(e.db); err != nil {
			return
		}
		if s, err := audit.Open(e.db, audit.Options{ReadOnly: true}); err != nil {
			t.Errorf("open %s for the check: %v", e.db, err)
		} else {
			if err := s.Check(); err != nil {
				t.Errorf("bbolt check of %s: %v", e.db, err)
			}
			s.Close()
		}
	})
	ping, _ := policy.ParseVerbList("ping")
	e.peers = []policy.Peer{
		{Dest: "com.example.alice", Key: e.alice.Public(), Verbs: policy.AllVerbs()},
		{Dest: "com.example.bob", Key: e.bob.Public(), Verbs: ping},
	}
	return e
}

func (e *natsEnv) seal(key sign.PrivateKey, mods ...func(*sign.Message)) *sign.Envelope {
	e.t.Helper()
	m := &sign.Message{Kind: sign.KindMsg, Root: "remaphore", Channel: "all", Dest: "**", Verb: "ping", Sent: time.Now(), Payload: []byte("hello")}
	for _, mod := range mods {
		mod(m)
	}
	env, err := sign.Seal(m, key)
	if err != nil {
		e.t.Fatal(err)
	}
	return env
}

// publish stores body on subject with header id and returns its sequence.
func (e *natsEnv) publish(subject string, body []byte, id string) uint64 {
	e.t.Helper()
	seq, err := e.conn.Publish(context.Background(), e.spec, subject, body, id)
	if err != nil {
		e.t.Fatalf("publish on %s: %v", subject, err)
	}
	return seq
}

func (e *natsEnv) send(key sign.PrivateKey, mods ...func(*sign.Message)) (*sign.Envelope, uint64) {
	e.t.Helper()
	env := e.seal(key, mods...)
	return env, e.publish(transport.MsgSubject(env.Root, env.Channel), env.Body(), env.ID)
}

// logBuf collects a logger's output.
type logBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// auditor is a running Run.
type auditor struct {
	cancel context.CancelFunc
	done   chan error
	last   atomic.Uint64 // highest sequence committed
}

func (e *natsEnv) start(mods ...func(*RunOptions)) *auditor {
	e.t.Helper()
	a := &auditor{done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	ready := make(chan struct{})
	o := RunOptions{Conn: e.conn, Stream: e.spec, Peers: e.peers, AllowSkew: e.skew, DB: e.db,
		FetchWait: 50 * time.Millisecond,
		Ready:     func(last uint64) { a.last.Store(last); close(ready) },
		OnCommit:  func(c CommitInfo) { a.last.Store(max(a.last.Load(), c.Last)) },
	}
	for _, m := range mods {
		m(&o)
	}
	go func() { a.done <- Run(ctx, o) }()
	select {
	case <-ready:
	case err := <-a.done:
		e.t.Fatalf("auditor stopped before ready: %v", err)
	case <-time.After(20 * time.Second):
		e.t.Fatal("auditor not ready after 20s")
	}
	e.t.Cleanup(func() { a.stop(e.t) })
	return a
}

// waitFor waits until sequence seq is committed.
func (a *auditor) waitFor(t *testing.T, seq uint64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for a.last.Load() < seq {
		if time.Now().After(deadline) {
			t.Fatalf("auditor stuck at seq %d, want %d", a.last.Load(), seq)
		}
		select {
		case err := <-a.done:
			t.Fatalf("auditor stopped: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (a *auditor) stop(t *testing.T) {
	if a.cancel == nil {
		return
	}
	a.cancel()
	a.cancel = nil
	select {
	case err := <-a.done:
		if err != nil {
			t.Errorf("auditor: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Error("auditor did not stop within 20s")
	}
}

// view opens the store read-only, runs fn, checks the file's structure
// and closes it again (so that an auditor can start after).
func (e *natsEnv) view(fn func(s *audit.Store)) {
	e.t.Helper()
	s, err := audit.Open(e.db, audit.Options{ReadOnly: true})
	if err != nil {
		e.t.Fatal(err)
	}
	defer s.Close()
	fn(s)
	if err := s.Check(); err != nil {
		e.t.Errorf("bbolt check: %v", err)
	}
}

// ensureStream creates the stream before the first send, so that the
// first message's stream time is not delayed by the creation.
func (e *natsEnv) ensureStream() {
	e.t.Helper()
	if _, err := e.conn.EnsureStream(context.Background(), e.spec); err != nil {
		e.t.Fatal(err)
	}
}

func TestRun_RecordsAndRefuses(t *testing.T) {
	e := newNatsEnv(t)
	want := map[uint64]string{} // seq -> reason
	req, seq := e.send(e.alice, func(m *sign.Message) { m.Request, m.UUID = true, "job-1" })
	want[seq] = "accepted"
	_, seq = e.send(e.bob)
	want[seq] = "accepted"
	_, seq = e.send(e.bob, func(m *sign.Message) { m.Verb = "deploy" })
	want[seq] = "verb-not-allowed"
	_, seq = e.send(e.mallory)
	want[seq] = "unknown-sender"
	_, seq = e.send(e.alice, func(m *sign.Message) { m.Sent = time.Now().Add(-time.Hour) })
	want[seq] = "stale"

	// Forged: alice's message with its payload changed (and the header id
	// of the changed bytes, so only the signature can tell).
	f := e.seal(e.alice)
	body := f.Body()
	body[len(f.Signed)-1] ^= 1
	want[e.publish("remaphore.msg.all", body, sign.MessageID(body[:len(f.Signed)]))] = "bad-signature"

	// Signed for channel a, stored on channel b.
	a := e.seal(e.alice, func(m *sign.Message) { m.Channel = "a" })
	want[e.publish("remaphore.msg.b", a.Body(), a.ID)] = "wrong-channel"
	// Header id of another message.
	h := e.seal(e.alice)
	want[e.publish("remaphore.msg.all", h.Body(), sign.MessageID([]byte("another message")))] = "id-mismatch"
	want[e.publish("remaphore.msg.all", []byte("not an envelope"), "junk")] = "malformed"

	// Replies: one bound to the request on its subject, one on another
	// request's subject, and a message on a reply subject.
	reqID, _ := sign.ParseID(req.ID)
	reply := func(key sign.PrivateKey, id [32]byte) *sign.Envelope {
		return e.seal(key, func(m *sign.Message) {
			m.Kind, m.RequestID, m.ResponderDest, m.ExitCode, m.UUID = sign.KindReply, id, "com.example.bob", 3, "job-1"
		})
	}
	r1 := reply(e.bob, reqID)
	want[e.publish(transport.ReplySubject("remaphore", req.ID), r1.Body(), r1.ID)] = "accepted"
	r2 := reply(e.bob, reqID)
	other := hex.EncodeToString(make([]byte, 32))
	want[e.publish(transport.ReplySubject("remaphore", other), r2.Body(), r2.ID)] = "wrong-request"
	m := e.seal(e.alice)
	want[e.publish(transport.ReplySubject("remaphore", m.ID), m.Body(), m.ID)] = "wrong-kind"
	o := e.seal(e.alice)
	want[e.publish("remaphore.other", o.Body(), o.ID)] = "wrong-channel"

	last := uint64(len(want))
	au := e.start()
	au.waitFor(t, last)
	au.stop(t)

	e.view(func(s *audit.Store) { checkRecordsAndRefuses(t, s, want) })
}

func checkRecordsAndRefuses(t *testing.T, s *audit.Store, want map[uint64]string) {
	last := uint64(len(want))
	for seq := uint64(1); seq <= last; seq++ {
		r, err := s.Get(seq)
		if err != nil || r == nil {
			t.Fatalf("seq %d: %v %v", seq, r, err)
		}
		if r.Reason != want[seq] {
			t.Errorf("seq %d (%s): reason %s (%s), want %s", seq, r.Subject, r.Reason, r.Detail, want[seq])
		}
	}
	// The refused ones are under -rejected with their reason, and the
	// forged one still shows what it claimed.
	var refused []string
	s.Query(audit.Query{Rejected: true}, func(r *audit.Record) error { refused = append(refused, r.Reason); return nil })
	if len(refused) != 10 {
		t.Fatalf("refused: %v", refused)
	}
	got := recordSeqs(t, s, audit.Query{Rejected: true, SenderDest: "com.example.bob"})
	if len(got) != 2 { // verb-not-allowed, wrong-request
		t.Fatalf("refused from bob: %v", got)
	}
	// A request and its reply share a uuid.
	if got := recordSeqs(t, s, audit.Query{UUID: "job-1"}); len(got) != 2 {
		t.Fatalf("uuid job-1: %v", got)
	}
	if ps := problems(t, s); len(ps) > 0 {
		t.Fatalf("verify: %v", ps)
	}
}

func TestRun_BacklogJudgedByStreamTime(t *testing.T) {
	e := newNatsEnv(t)
	e.skew = 500 * time.Millisecond
	e.ensureStream()
	for range 20 {
		e.send(e.alice)
	}
	time.Sleep(time.Second) // older than allow_skew by the clock
	au := e.start()
	au.waitFor(t, 20)
	au.stop(t)
	e.view(func(s *audit.Store) {
		if st, err := s.Stats(); err != nil || st.Accepted != 20 {
			t.Fatalf("stats %+v %v: a backlog was judged by the clock", st, err)
		}
	})
}

func TestRun_RestartStoresEachMessageOnce(t *testing.T) {
	e := newNatsEnv(t)
	for range 50 {
		e.send(e.alice)
	}
	au := e.start()
	au.waitFor(t, 50)
	au.stop(t)
	for range 50 {
		e.send(e.bob)
	}
	// A clean restart keeps the consumer.
	au = e.start()
	au.waitFor(t, 100)
	au.stop(t)
	// The consumer delivered more than the store holds (a crash between
	// fetch and commit): it starts again at the store's position.
	st, _ := e.conn.JetStream().Stream(context.Background(), "REMAPHORE")
	cons, _ := st.Consumer(context.Background(), DefaultConsumerName(e.db))
	for range 30 {
		e.send(e.alice)
	}
	b, err := cons.Fetch(20, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range b.Messages() { // fetched and never acked
		n++
	}
	if n != 20 {
		t.Fatalf("fetched %d", n)
	}
	au = e.start()
	au.waitFor(t, 130)
	au.stop(t)

	e.view(func(s *audit.Store) {
		got := recordSeqs(t, s, audit.Query{})
		if len(got) != 130 || slices.Max(got) != 130 {
			t.Fatalf("%d records, want 130", len(got))
		}
		if ps := problems(t, s); len(ps) > 0 {
			t.Fatalf("verify: %v", ps)
		}
	})

	// A new database file: a consumer of its own, read from the start.
	e.db = filepath.Join(t.TempDir(), "fresh.db")
	au = e.start()
	au.waitFor(t, 130)
	au.stop(t)
	e.view(func(s *audit.Store) {
		if got := recordSeqs(t, s, audit.Query{}); len(got) != 130 {
			t.Fatalf("a fresh database holds %d records, want 130", len(got))
		}
	})
}

func TestRun_SecondAuditorFailsAtOnce(t *testing.T) {
	e := newNatsEnv(t)
	e.start()
	start := time.Now()
	err := Run(context.Background(), RunOptions{Conn: e.conn, Stream: e.spec, Peers: e.peers, AllowSkew: e.skew, DB: e.db})
	if !errors.Is(err, audit.ErrLocked) {
		t.Fatalf("second auditor: %v, want audit.ErrLocked", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("second auditor took %s to fail", d)
	}
}

func TestRun_ReadersGetInDuringABacklog(t *testing.T) {
	e := newNatsEnv(t)
	const n = 3000
	for range n {
		e.send(e.alice)
	}
	au := e.start(func(o *RunOptions) { o.HoldMax = 100 * time.Millisecond; o.Batch = 100 })
	reads := 0
	for au.last.Load() < n {
		s, err := audit.Open(e.db, audit.Options{ReadOnly: true, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatalf("reader during the backlog: %v", err)
		}
		s.Close()
		reads++
	}
	au.stop(t)
	t.Logf("%d reads while %d messages were written", reads, n)
	if reads < 2 {
		t.Fatalf("only %d reads", reads)
	}
}

func TestRun_FloodOfRefusalsIsCapped(t *testing.T) {
	e := newNatsEnv(t)
	for range 40 {
		e.send(e.mallory)
	}
	e.send(e.alice)
	au := e.start(func(o *RunOptions) { o.Store.MaxRejected = 10 })
	au.waitFor(t, 41)
	au.stop(t)
	e.view(func(s *audit.Store) {
		st, _ := s.Stats()
		if st.Rejected != 10 || st.Evicted != 30 || st.Accepted != 1 {
			t.Fatalf("stats %+v", st)
		}
		if ps := problems(t, s); len(ps) > 0 {
			t.Fatalf("verify: %v", ps)
		}
	})
}

func TestRun_ReplayCacheSurvivesARestart(t *testing.T) {
	e := newNatsEnv(t)
	// A stream whose duplicate window is shorter than allow_skew (made by
	// hand, not by remaphore): a re-published copy reaches the stream, and
	// only the replay check refuses it.
	js := e.conn.JetStream()
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "REMAPHORE", Subjects: []string{"remaphore.>"},
		Duplicates: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	env, _ := e.send(e.alice)
	au := e.start()
	au.waitFor(t, 1)
	au.stop(t)
	time.Sleep(300 * time.Millisecond)
	msg := &nats.Msg{Subject: "remaphore.msg.all", Data: env.Body(), Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, env.ID)
	if ack, err := js.PublishMsg(context.Background(), msg); err != nil || ack.Duplicate {
		t.Fatalf("re-publish: %v %+v", err, ack)
	}
	au = e.start()
	au.waitFor(t, 2)
	au.stop(t)
	e.view(func(s *audit.Store) {
		r, err := s.Get(2)
		if err != nil || r == nil || r.Reason != "replay" {
			t.Fatalf("the copy after a restart: %+v %v, want a replay", r, err)
		}
	})
}

// TestRun_ConcurrentPublishers checks the sharded checkers under load:
// every message accepted once, in sequence order, whatever shard took it.
func TestRun_ConcurrentPublishers(t *testing.T) {
	e := newNatsEnv(t)
	au := e.start(func(o *RunOptions) { o.Workers = 3; o.Batch = 64 })
	var wg sync.WaitGroup
	for _, k := range []sign.PrivateKey{e.alice, e.bob} {
		wg.Go(func() {
			for range 300 {
				e.send(k)
			}
		})
	}
	wg.Wait()
	au.waitFor(t, 600)
	au.stop(t)
	e.view(func(s *audit.Store) {
		st, _ := s.Stats()
		if st.Accepted != 600 || st.Rejected != 0 {
			t.Fatalf("stats %+v", st)
		}
		if ps := problems(t, s); len(ps) > 0 {
			t.Fatalf("verify: %v", ps)
		}
	})
}

func TestRun_LostDeliveriesAreReadAgain(t *testing.T) {
	e := newNatsEnv(t)
	for range 30 {
		e.send(e.alice)
	}
	var mu sync.Mutex
	lost := map[uint64]bool{}
	var logs logBuf
	au := e.start(func(o *RunOptions) {
		o.Batch = 10
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		// Sequences 5-7 and 23 are lost on the way the first time.
		o.lose = func(m jetstream.Msg) bool {
			md, _ := m.Metadata()
			seq := md.Sequence.Stream
			mu.Lock()
			defer mu.Unlock()
			if (seq >= 5 && seq <= 7 || seq == 23) && !lost[seq] {
				lost[seq] = true
				return true
			}
			return false
		}
	})
	au.waitFor(t, 30)
	au.stop(t)
	if n := strings.Count(logs.String(), "delivered but not received"); n != 2 {
		t.Errorf("%d re-reads, want 2:\n%s", n, logs.String())
	}
	e.view(func(s *audit.Store) {
		if got := recordSeqs(t, s, audit.Query{}); len(got) != 30 {
			t.Fatalf("%d records, want 30: %v", len(got), got)
		}
		if ps := problems(t, s); len(ps) > 0 {
			t.Fatalf("verify: %v", ps)
		}
	})
}

// Sequences deleted from the stream before the auditor read them are
// written as gap records (issue 13: they used to be passed over with a log
// line, and verify passed), each after asking the stream.
func TestRun_GapsInTheStreamAreRecorded(t *testing.T) {
	e := newNatsEnv(t)
	for range 10 {
		e.send(e.alice)
	}
	st, err := e.conn.JetStream().Stream(context.Background(), "REMAPHORE")
	if err != nil {
		t.Fatal(err)
	}
	for _, seq := range []uint64{1, 4, 5, 10} {
		if err := st.DeleteMsg(context.Background(), seq); err != nil {
			t.Fatal(err)
		}
	}
	e.send(e.alice) // 11
	var logs logBuf
	au := e.start(func(o *RunOptions) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	au.waitFor(t, 11)
	au.stop(t)
	if l := logs.String(); strings.Count(l, "recorded as a gap") != 3 || strings.Contains(l, "delivered but not received") {
		t.Errorf("logs:\n%s", l)
	}
	e.view(func(s *audit.Store) {
		if got := recordSeqs(t, s, audit.Query{}); !slices.Equal(got, []uint64{2, 3, 6, 7, 8, 9, 11}) {
			t.Fatalf("records %v", got)
		}
		var gaps []string
		s.Gaps(func(g *audit.Gap) error { gaps = append(gaps, g.Range()+": "+g.Said); return nil })
		want := []string{
			"seq 1: the next message on remaphore.> is seq 2; its first sequence is 2 (7 messages held)",
			"seq 4-5: the next message on remaphore.> is seq 6; its first sequence is 2 (7 messages held)",
			"seq 10: the next message on remaphore.> is seq 11; its first sequence is 2 (7 messages held)",
		}
		if !slices.Equal(gaps, want) {
			t.Fatalf("gaps:\n%s\nwant:\n%s", strings.Join(gaps, "\n"), strings.Join(want, "\n"))
		}
		if st, _ := s.Stats(); st.Gaps != 3 || st.GapSeqs != 4 || st.LastSeq != 11 {
			t.Fatalf("stats %+v", st)
		}
		res, err := s.Verify(func(p audit.Problem) { t.Errorf("verify: %v", p) })
		if err != nil || len(res.Gaps) != 3 || res.GapSeqs != 4 {
			t.Fatalf("verify: %+v %v", res, err)
		}
	})
}

func TestRun_AnotherStreamUnderTheSameNameIsRefused(t *testing.T) {
	e := newNatsEnv(t)
	for range 5 {
		e.send(e.alice)
	}
	au := e.start()
	au.waitFor(t, 5)
	au.stop(t)
	js := e.conn.JetStream()
	if err := js.DeleteStream(context.Background(), "REMAPHORE"); err != nil {
		t.Fatal(err)
	}
	for range 8 { // the new stream grows past the old one's sequences
		e.send(e.alice)
	}
	err := Run(context.Background(), RunOptions{Conn: e.conn, Stream: e.spec, Peers: e.peers, AllowSkew: e.skew, DB: e.db})
	if !errors.Is(err, audit.ErrStreamChanged) {
		t.Fatalf("run on a new stream: %v, want audit.ErrStreamChanged", err)
	}
}

// After a peer's many valid messages (its verifier then checks through
// precomputed tables) a forgery in its name is still refused.
func TestRun_ForgeryAfterManyValid(t *testing.T) {
	e := newNatsEnv(t)
	want := map[uint64]string{}
	forge := func() {
		f := e.seal(e.alice)
		body := f.Body()
		body[len(f.Signed)-1] ^= 1
		want[e.publish("remaphore.msg.all", body, sign.MessageID(body[:len(f.Signed)]))] = "bad-signature"
	}
	for i := range 60 {
		_, seq := e.send(e.alice)
		want[seq] = "accepted"
		if i%20 == 19 {
			forge()
		}
	}
	au := e.start()
	au.waitFor(t, uint64(len(want)))
	au.stop(t)
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
		if ps := problems(t, s); len(ps) > 0 {
			t.Fatalf("verify: %v", ps)
		}
	})
}

// seedKey is the key whose seed is 32 bytes b: the same key in every run.
func seedKey(t testing.TB, b byte) sign.PrivateKey {
	k, err := sign.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{b}, 64)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// recordSeqs returns the sequences of the records q finds.
func recordSeqs(t testing.TB, s *audit.Store, q audit.Query) []uint64 {
	var out []uint64
	err := s.Query(q, func(r *audit.Record) error { out = append(out, r.Seq); return nil })
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// problems returns what Verify finds wrong with s.
func problems(t testing.TB, s *audit.Store) (ps []audit.Problem) {
	if _, err := s.Verify(func(p audit.Problem) { ps = append(ps, p) }); err != nil {
		t.Fatal(err)
	}
	return ps
}
