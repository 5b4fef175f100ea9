package integration

// Issue 14, the receiving side: what a publisher with nothing but publish
// rights (or a hostile responder) tried against receivers and requesters,
// and what now holds. The memory figure under 10,000 forgeries is measured
// in-process, where the receiver's heap can be told apart from the NATS
// server's: node.TestReceiverHeapUnderForgeries (and sign's
// TestVerifier_ForgeriesDoNotWarmUp).

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/remaphore/remaphore/config"
	rnode "github.com/remaphore/remaphore/node"
	"github.com/remaphore/remaphore/sign"
	"github.com/remaphore/remaphore/transport"
)

// 14.1: a responder prints bytes that, unframed, would show a second,
// forged record on a terminal (CR returns to the line's start, ESC[2K
// erases it) or to a parser splitting on CR. The requester frames every
// record holding a control character, and writes its bytes as they came
// (stdout is a pipe here; on a terminal they are escaped, see cli's
// TestRecordWriter).
func TestHostileForgedRecord(t *testing.T) {
	b := newBed(t)
	req := newNode(t, "com.test.requester")
	r1, r2, r3 := newNode(t, "com.test.r1"), newNode(t, "com.test.r2"), newNode(t, "com.test.r3")
	reqCfg := b.requesterConfig(t, req, r1, r2, r3)
	forger := writeScript(t, b.dir, "forger.sh", `printf 'ok\rcom.crypto.forged,0,all good\033[2K'`+"\n")
	plain := writeScript(t, b.dir, "plain.sh", "printf 'fine\\tand a tab\\n'\n")
	// U+2028 (a line separator to some viewers) and C1 CSI (U+009B).
	sep := writeScript(t, b.dir, "sep.sh", `printf 'one\342\200\250two\302\2332K'`+"\n")
	p1, p2, p3 := b.responder(t, req, r1, forger), b.responder(t, req, r2, plain), b.responder(t, req, r3, sep)
	for _, p := range []*proc{p1, p2, p3} {
		p.waitReady(t)
	}
	rq := run(t, "requester", "-c", reqCfg, "-r", "-t", "20s")
	expectCode(t, rq, rq.code, exitOK)
	out := rq.stdout.String()
	m := regexp.MustCompile(`(?m)^--> ([0-9a-f]{16})$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("requester: no frame in stdout %q", out)
	}
	s := m[1]
	for _, want := range []string{
		"--> " + s + "\ncom.test.r1,0,ok\rcom.crypto.forged,0,all good\x1b[2K\n--< " + s + "\n",
		"com.test.r2,0,fine\tand a tab\n",
		"--> " + s + "\ncom.test.r3,0,one\u2028two\u009b2K\n--< " + s + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("requester: stdout lacks the record %q\nstdout: %q", want, out)
		}
	}
	if len(out) != len("--> "+s+"\ncom.test.r1,0,ok\rcom.crypto.forged,0,all good\x1b[2K\n--< "+s+"\n")+len("com.test.r2,0,fine\tand a tab\n")+len("--> "+s+"\ncom.test.r3,0,one\u2028two\u009b2K\n--< "+s+"\n") {
		t.Errorf("requester: stdout holds more than the three records: %q", out)
	}
	expectRecords(t, rq, []record{
		{dest: r1.dest, output: "ok\rcom.crypto.forged,0,all good\x1b[2K", sep: "framed"},
		{dest: r2.dest, output: "fine\tand a tab"},
		{dest: r3.dest, output: "one\u2028two\u009b2K", sep: "framed"},
	})
}

// 14.5: a late joiner gets a message stored 2m15s before it started under
// -since 10m (it used to be refused as stale past the duplicate window),
// and still refuses what arrives beside it: a re-publish under another
// id, a forgery, a message sent an hour before it was stored. Waiting 2m15s
// is replaced by a receiver whose clock runs 2m15s ahead.
func TestHostileSinceBacklog(t *testing.T) {
	b := newBed(t)
	sender := newNode(t, "com.test.sender")
	recv := newNode(t, "com.test.recv")
	cfg, err := config.Load(b.config(t, recv, "ping", peerOf(sender, "ping")))
	if err != nil {
		t.Fatal(err)
	}
	cl := dial(t, b.c, b.c.URLs()[0])
	subject := transport.MsgSubject(root, channel)
	ctx := ctxFor(t, 60*time.Second)
	if _, err := cl.js.CreateStream(ctx, jetstream.StreamConfig{Name: transport.StreamName(root), Subjects: []string{root + ".>"},
		Duplicates: transport.DuplicateWindow(cfg.AllowSkew), MaxMsgSize: rnode.StreamSpec(cfg).MaxMsgSize, Storage: jetstream.FileStorage}); err != nil {
		t.Fatalf("create the stream: %v", err)
	}
	env := message(t, sender.key, channel, func(m *sign.Message) { m.Payload = []byte("backlog") })
	cl.publish(t, subject, env.Body(), env.ID)
	other := cl.publish(t, subject, env.Body(), strings.Repeat("0", 64))
	forged := message(t, sender.key, channel, nil)
	forgedSeq := cl.publish(t, subject, forge(forged), forged.ID).Sequence
	stale := message(t, sender.key, channel, func(m *sign.Message) { m.Sent = time.Now().Add(-time.Hour) })
	staleSeq := cl.publish(t, subject, stale.Body(), stale.ID).Sequence

	var logs syncBuffer
	ahead := func() time.Time { return time.Now().Add(2*time.Minute + 15*time.Second) }
	rcv, err := rnode.StartReceiver(ctx, rnode.ReceiverOptions{
		Config: cfg, Channel: channel, Since: 10 * time.Minute, Now: ahead,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.Close()
	v, _, err := rcv.Next(ctx)
	if err != nil {
		t.Fatalf("the backlog message was not accepted: %v\n%s", err, logs.String())
	}
	if string(v.Env.Payload) != "backlog" {
		t.Fatalf("accepted %q, want the backlog message", v.Env.Payload)
	}
	short, cancel := context.WithTimeout(ctx, refuseWithin)
	defer cancel()
	if v, d, err := rcv.Next(short); err == nil {
		t.Fatalf("accepted a second message (seq %d, %q)", d.Seq, v.Env.Payload)
	}
	for _, want := range []struct {
		reason string
		seq    uint64
	}{{"id-mismatch", other.Sequence}, {"bad-signature", forgedSeq}, {"stale", staleSeq}} {
		re := regexp.MustCompile(`msg="rejected message" reason=` + want.reason + ` .*seq=` + strconv.FormatUint(want.seq, 10) + `\b`)
		if countMatches(logs.String(), re) != 1 {
			t.Errorf("no %s rejection for seq %d:\n%s", want.reason, want.seq, logs.String())
		}
	}
}

// The real binary: -since 10m picks up a message stored before it started.
func TestSinceLateJoiner(t *testing.T) {
	b := newBed(t)
	sender := newNode(t, "com.test.sender")
	recv := newNode(t, "com.test.recv")
	sendCfg := b.config(t, sender, "ping")
	recvCfg := b.config(t, recv, "ping", peerOf(sender, "ping"))
	echo := writeScript(t, b.dir, "echo.sh", `echo "got $2"`+"\n")
	s := run(t, "sender", "-c", sendCfg, "-s", "before the receiver")
	expectCode(t, s, s.code, exitOK)
	r := run(t, "late receiver", "-c", recvCfg, "-since", "10m", "-o", "-t", "20s", echo)
	if expectCode(t, r, r.code, exitOK) && r.stdout.String() != "got before the receiver\n" {
		t.Errorf("late receiver: stdout %q, want %q", r.stdout.String(), "got before the receiver\n")
	}
}

// 14.6: a flood of forgeries in the peers' names and of junk from unknown
// keys costs each receiver bounded log output: ten lines per reason, then
// one summary of what was not logged; a valid message after the flood is
// still acted on.
func TestHostileForgeryFlood(t *testing.T) {
	const npeers, forgeries, junk = 300, 3000, 1000
	b := newBed(t)
	recv := newNode(t, "com.test.recv")
	var peers []peer
	var keys []node
	for i := range npeers {
		n := newNode(t, fmt.Sprintf("com.test.p%03d", i))
		keys = append(keys, n)
		peers = append(peers, peerOf(n, "ping"))
	}
	stranger := newNode(t, "com.test.stranger")
	recvCfg := b.config(t, recv, "ping", peers...)
	marker := filepath.Join(t.TempDir(), "ran")
	touch := writeScript(t, b.dir, "touch.sh", `printf '%s' "$3" > "$1"`+"\n")
	r := start(t, "receiver", "-c", recvCfg, "-o", "-t", "60s", "-log", "info", touch, marker)
	r.waitReady(t)

	cl := dial(t, b.c, b.c.URLs()[0])
	subject := transport.MsgSubject(root, channel)
	var msgs []*nats.Msg
	for i := range forgeries {
		env := message(t, keys[i%npeers].key, channel, func(m *sign.Message) { m.Payload = []byte(strconv.Itoa(i)) })
		msgs = append(msgs, &nats.Msg{Subject: subject, Data: forge(env), Header: nats.Header{jetstream.MsgIDHeader: {env.ID}}})
	}
	for i := range junk {
		env := message(t, stranger.key, channel, func(m *sign.Message) { m.Payload = []byte(strconv.Itoa(i)) })
		msgs = append(msgs, &nats.Msg{Subject: subject, Data: env.Body(), Header: nats.Header{jetstream.MsgIDHeader: {env.ID}}})
	}
	for _, m := range msgs {
		if _, err := cl.js.PublishMsgAsync(m); err != nil {
			t.Fatalf("async publish: %v", err)
		}
	}
	select {
	case <-cl.js.PublishAsyncComplete():
	case <-time.After(60 * time.Second):
		t.Fatal("the flood was not stored within 60s")
	}
	valid := message(t, keys[7].key, channel, func(m *sign.Message) { m.Payload = []byte("real") })
	cl.publish(t, subject, valid.Body(), valid.ID)
	if !expectCode(t, r, r.wait(t, 60*time.Second), exitOK) {
		return
	}
	if got, _ := os.ReadFile(marker); string(got) != "real" {
		t.Errorf("the valid message after the flood did not run the script: marker %q", got)
	}
	errs := r.stderr.String()
	summary := regexp.MustCompile(`msg="refusals not logged one by one" of="rejected message" count=(\d+) .*`)
	suppressed := map[string]int{}
	for _, l := range strings.Split(errs, "\n") {
		if summary.MatchString(l) {
			for _, m := range regexp.MustCompile(`suppressed\.([a-z-]+)=(\d+)`).FindAllStringSubmatch(l, -1) {
				n, _ := strconv.Atoi(m[2])
				suppressed[m[1]] += n
			}
		}
	}
	for _, c := range []struct {
		reason string
		total  int
	}{{"bad-signature", forgeries}, {"unknown-sender", junk}} {
		logged := strings.Count(errs, `msg="rejected message" reason=`+c.reason+" ")
		// Ten per reason per minute: a slow run may span two minutes.
		if logged < rnode.DefaultRefusalBurst || logged > 2*rnode.DefaultRefusalBurst {
			t.Errorf("%d %s lines logged one by one, want %d (or %d if the run spanned two intervals)", logged, c.reason, rnode.DefaultRefusalBurst, 2*rnode.DefaultRefusalBurst)
		}
		if logged+suppressed[c.reason] != c.total {
			t.Errorf("%s: %d logged + %d in summaries = %d, want all %d refusals accounted for", c.reason, logged, suppressed[c.reason], logged+suppressed[c.reason], c.total)
		}
	}
	if lines := strings.Count(errs, "\n"); lines > 100 {
		t.Errorf("the receiver wrote %d log lines for %d refused messages, want a bounded few", lines, forgeries+junk)
	}
}

// 14.7: verbs a script would take for options or that hold control
// characters, and payloads or uuids holding NUL (which no argument or
// environment variable can carry), are refused with a named reason from a
// peer allowed every verb, and the script never runs. A sender cannot send
// such a verb either.
func TestHostileScriptArguments(t *testing.T) {
	b := newBed(t)
	sender := newNode(t, "com.test.sender")
	recv := newNode(t, "com.test.recv")
	recvCfg := b.config(t, recv, "ping", peerOf(sender, "*"))
	sendCfg := b.config(t, sender, "*")
	touch := writeScript(t, b.dir, "touch.sh", `touch "$1"`+"\n")
	cl := dial(t, b.c, b.c.URLs()[0])
	cases := []struct {
		name, reason string
		mod          func(*sign.Message)
	}{
		{"control", "", nil},
		{"verb-option", "bad-verb", func(m *sign.Message) { m.Verb = "-rf" }},
		{"verb-escape", "bad-verb", func(m *sign.Message) { m.Verb = "ping\x1b[2K" }},
		{"payload-nul", "nul-byte", func(m *sign.Message) { m.Payload = []byte("a\x00b") }},
		{"uuid-nul", "nul-byte", func(m *sign.Message) { m.UUID = "job\x00" }},
	}
	type rcv struct {
		ch, marker string
		p          *proc
	}
	var rs []rcv
	for _, tc := range cases {
		ch := strings.ReplaceAll(tc.name, "-", "_")
		marker := filepath.Join(t.TempDir(), "ran")
		rs = append(rs, rcv{ch, marker, start(t, "receiver "+tc.name, "-c", recvCfg, "-S", ch, "-o", "-t", refuseWithin.String(), "-log", "info", touch, marker)})
	}
	for _, r := range rs {
		r.p.waitReady(t)
	}
	for i, tc := range cases {
		env := message(t, sender.key, rs[i].ch, tc.mod)
		cl.publish(t, transport.MsgSubject(root, rs[i].ch), env.Body(), env.ID)
	}
	for i, tc := range cases {
		r := rs[i]
		t.Run(tc.name, func(t *testing.T) {
			code := r.p.wait(t, 30*time.Second)
			_, err := os.Stat(r.marker)
			if tc.reason == "" {
				expectCode(t, r.p, code, exitOK)
				if err != nil {
					t.Errorf("the control message did not run the script")
				}
				return
			}
			expectCode(t, r.p, code, exitTimeout)
			if err == nil {
				t.Errorf("the script ran for a message that must be refused (%s)", tc.reason)
			}
			expectStderr(t, r.p, `msg="rejected message" reason=`+tc.reason+" ")
		})
	}
	s := run(t, "sender", "-c", sendCfg, "-s", "-v", "-rf")
	if expectCode(t, s, s.code, exitUsage) {
		if got, want := s.stderr.String(), "remaphore: error: -v: invalid verb: verb \"-rf\" starts with '-' (a script would take it for an option)\n"; got != want {
			t.Errorf("sender: stderr %q, want %q", got, want)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A message that waited in the receiver's own queue while the script of
// the message before it ran (here 3 minutes, past the 2m5s of the
// duplicate window plus allow_skew) is acted on: the local-clock bound
// against a misbehaving server is judged when the message reached the
// receiver, not when the receiver got round to it. It used to be refused
// as stale ("sent 2m13s ago by the local clock"), its script never run.
// A message that reaches the receiver that late is still refused.
// Three minutes of script are replaced by a clock moved forward.
func TestLateBehindALongScript(t *testing.T) {
	b := newBed(t)
	sender := newNode(t, "com.test.sender")
	recv := newNode(t, "com.test.recv")
	cfg, err := config.Load(b.config(t, recv, "ping", peerOf(sender, "ping")))
	if err != nil {
		t.Fatal(err)
	}
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	var logs syncBuffer
	ctx := ctxFor(t, 60*time.Second)
	rcv, err := rnode.StartReceiver(ctx, rnode.ReceiverOptions{Config: cfg, Channel: channel, Now: clock,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.Close()
	cl := dial(t, b.c, b.c.URLs()[0])
	subject := transport.MsgSubject(root, channel)
	for _, p := range []string{"first", "second"} {
		env := message(t, sender.key, channel, func(m *sign.Message) { m.Payload = []byte(p) })
		cl.publish(t, subject, env.Body(), env.ID)
	}
	if v, _, err := rcv.Next(ctx); err != nil || string(v.Env.Payload) != "first" {
		t.Fatalf("first message: %v %v\n%s", v.Env, err, logs.String())
	}
	time.Sleep(time.Second) // the second is in the receiver's queue
	// The first message's script runs for 3 minutes.
	offset.Store(int64(3 * time.Minute))
	short, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, _, err := rcv.Next(short)
	if err != nil || string(v.Env.Payload) != "second" {
		t.Fatalf("the message that waited behind the script was not acted on: %v\n%s", err, logs.String())
	}
	// Reaching the receiver 3 minutes after it was sent (by its clock)
	// is what the bound is for.
	late := message(t, sender.key, channel, func(m *sign.Message) { m.Payload = []byte("late") })
	seq := cl.publish(t, subject, late.Body(), late.ID).Sequence
	short2, cancel2 := context.WithTimeout(ctx, refuseWithin)
	defer cancel2()
	if v, _, err := rcv.Next(short2); err == nil {
		t.Fatalf("accepted %q, which reached the receiver 3 minutes after it was sent", v.Env.Payload)
	}
	re := regexp.MustCompile(`reason=stale detail="sent 3m0(\.[0-9]+)?s ago by the local clock.*seq=` + strconv.FormatUint(seq, 10) + `\b`)
	if countMatches(logs.String(), re) != 1 {
		t.Errorf("no stale refusal for seq %d:\n%s", seq, logs.String())
	}
}
