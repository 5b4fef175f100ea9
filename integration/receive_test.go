package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/remaphore/remaphore/config"
	"github.com/remaphore/remaphore/internal/natstest"
	"github.com/remaphore/remaphore/sign"
	"github.com/remaphore/remaphore/transport"
)

// The spec's example: downloaders wait on -u upload_done, the uploader
// sends it once, all of them go; one that starts after the send waits in
// vain until its -t.
func TestUploadDone(t *testing.T) {
	b := newBed(t)
	uploader := newNode(t, "com.test.uploader")
	sendCfg := b.config(t, uploader, "ping")
	var recvCfgs []string
	for i := 1; i <= 3; i++ {
		n := newNode(t, fmt.Sprintf("com.test.downloader%d", i))
		recvCfgs = append(recvCfgs, b.config(t, n, "ping", peerOf(uploader, "ping")))
	}
	var receivers []*proc
	for i, cfg := range recvCfgs {
		receivers = append(receivers, start(t, fmt.Sprintf("downloader%d", i+1), "-c", cfg, "-u", "upload_done", "-t", "20s", "-log", "debug"))
	}
	for _, r := range receivers {
		r.waitReady(t)
	}
	// Another uuid is not what they wait for.
	s := run(t, "uploader", "-c", sendCfg, "-s", "-u", "upload_started")
	expectCode(t, s, s.code, exitOK)
	for _, r := range receivers {
		r.waitFor(t, "reason=uuid-filter", 10*time.Second)
		if r.exited() {
			t.Fatalf("%s: exited on a message with -u upload_started\n%s", r.name, r.describe())
		}
	}
	s = run(t, "uploader", "-c", sendCfg, "-s", "-u", "upload_done")
	expectCode(t, s, s.code, exitOK)
	for _, r := range receivers {
		if expectCode(t, r, r.wait(t, 25*time.Second), exitOK) {
			expectStderr(t, r, "msg=accepted")
		}
	}

	late := run(t, "late-downloader", "-c", recvCfgs[0], "-u", "upload_done", "-t", "2s", "-log", "info")
	if expectCode(t, late, late.code, exitTimeout) {
		if late.elapsed < 2*time.Second {
			t.Errorf("late-downloader: exited after %v, before its -t 2s", late.elapsed)
		}
		if strings.Contains(late.stderr.String(), "msg=accepted") {
			t.Errorf("late-downloader: accepted a message sent before it started\n%s", late.describe())
		}
	}
	// Every receiver deleted its consumer on the way out.
	if n := dial(t, b.c, b.c.URLs()[0]).consumers(t); n != 0 {
		t.Errorf("%d consumers left on the stream after every receiver exited, want 0", n)
	}
}

// A receiver stopped by SIGTERM (no -t) exits 128+15 saying so, not as a
// timeout, and deletes its consumer.
func TestReceiverSignal(t *testing.T) {
	b := newBed(t)
	recv := newNode(t, "com.test.recv")
	cfg := b.config(t, recv, "ping")
	r := start(t, "receiver", "-c", cfg, "-log", "info")
	r.waitReady(t)
	cl := dial(t, b.c, b.c.URLs()[0])
	if n := cl.consumers(t); n != 1 {
		t.Errorf("a waiting receiver holds %d consumers, want 1", n)
	}
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if expectCode(t, r, r.wait(t, 10*time.Second), 128+int(syscall.SIGTERM)) {
		expectStderr(t, r, "remaphore: stopped by SIGTERM (exit 143)\n")
	}
	if n := cl.consumers(t); n != 0 {
		t.Errorf("%d consumers left after the receiver exited on SIGTERM, want 0", n)
	}
}

// Messages that must not be acted on: the receiver (-o -t 3s) times out
// without running its script, and its log names the reason.
func TestRejected(t *testing.T) {
	b := newBed(t)
	sender := newNode(t, "com.test.sender")
	stranger := newNode(t, "com.test.stranger")
	recv := newNode(t, "com.test.recv")
	sendCfg := b.config(t, sender, "ping, deploy")
	strangerCfg := b.config(t, stranger, "*")
	recvCfg := b.config(t, recv, "ping", peerOf(sender, "ping"))
	touch := writeScript(t, b.dir, "touch.sh", `touch "$1"`+"\n")
	cl := dial(t, b.c, b.c.URLs()[0])

	// A send starts a sender process (returned, not waited for, so that all
	// sends overlap) or publishes crafted bytes itself (nil).
	sendCLI := func(cfg string, args ...string) func(t *testing.T, ch string) *proc {
		return func(t *testing.T, ch string) *proc {
			return start(t, "sender "+ch, append([]string{"-c", cfg, "-s", "-S", ch}, args...)...)
		}
	}
	crafted := func(bodyOf func(*sign.Envelope) []byte, mod func(*sign.Message)) func(t *testing.T, ch string) *proc {
		return func(t *testing.T, ch string) *proc {
			env := message(t, sender.key, ch, mod)
			cl.publish(t, transport.MsgSubject(root, ch), bodyOf(env), env.ID)
			return nil
		}
	}
	valid := func(e *sign.Envelope) []byte { return e.Body() }

	cases := []struct {
		name   string
		reason string // "" = accepted: the control cases
		send   func(t *testing.T, ch string) *proc
	}{
		{"control-valid-crafted", "", crafted(valid, nil)},
		{"control-valid-cli", "", sendCLI(sendCfg)},
		{"forged-signature", "bad-signature", crafted(forge, nil)},
		{"unknown-sender", "unknown-sender", sendCLI(strangerCfg)},
		{"verb-not-allowed", "verb-not-allowed", sendCLI(sendCfg, "-v", "deploy")},
		{"stale", "stale", crafted(valid, func(m *sign.Message) { m.Sent = time.Now().Add(-time.Hour) })},
		{"from-the-future", "stale", crafted(valid, func(m *sign.Message) { m.Sent = time.Now().Add(time.Hour) })},
		{"destination-mismatch", "destination-mismatch", sendCLI(sendCfg, "-D", "com.other.**")},
		// Bytes signed for another channel, published on this one.
		{"other-channel", "wrong-channel", crafted(valid, func(m *sign.Message) { m.Channel = "elsewhere" })},
		// A reply published where messages travel.
		{"reply-as-message", "wrong-kind", crafted(valid, func(m *sign.Message) {
			m.Kind, m.RequestID, m.ResponderDest = sign.KindReply, [sign.IDSize]byte{1}, sender.dest
		})},
	}
	// Every case has its own channel and receiver; all run at once so
	// that the timeouts overlap.
	type run struct {
		ch, marker string
		r          *proc
	}
	runs := make([]run, len(cases))
	for i, tc := range cases {
		ch := strings.ReplaceAll(tc.name, "-", "_")
		marker := filepath.Join(t.TempDir(), "script-ran")
		runs[i] = run{ch: ch, marker: marker,
			r: start(t, "receiver "+tc.name, "-c", recvCfg, "-S", ch, "-o", "-t", refuseWithin.String(), "-log", "debug", touch, marker)}
	}
	for _, rn := range runs {
		rn.r.waitReady(t)
	}
	var senders []*proc
	for i, tc := range cases {
		if p := tc.send(t, runs[i].ch); p != nil {
			senders = append(senders, p)
		}
	}
	for _, p := range senders {
		expectCode(t, p, p.wait(t, 20*time.Second), exitOK)
	}
	for i, tc := range cases {
		rn := runs[i]
		t.Run(tc.name, func(t *testing.T) {
			r := rn.r
			code := r.wait(t, 10*time.Second)
			_, err := os.Stat(rn.marker)
			if tc.reason == "" {
				expectCode(t, r, code, exitOK)
				if err != nil {
					t.Errorf("%s: accepted, but the script did not run: %v", r.name, err)
				}
				return
			}
			expectCode(t, r, code, exitTimeout)
			if err == nil {
				t.Errorf("%s: the script ran for a message that must be refused (%s)", r.name, tc.reason)
			}
			expectStderr(t, r, "reason="+tc.reason)
		})
	}
}

// Captured bytes re-published must not be acted on by a receiver that
// started after the original: another Nats-Msg-Id, none, or core NATS are
// refused (id-mismatch); the same Nats-Msg-Id is dropped by the stream.
func TestReplay(t *testing.T) {
	b := newBed(t)
	sender := newNode(t, "com.test.sender")
	recv := newNode(t, "com.test.recv")
	recvCfg := b.config(t, recv, "ping", peerOf(sender, "ping"))
	echo := writeScript(t, b.dir, "echo.sh", `echo "script ran: $2"`+"\n")
	cl := dial(t, b.c, b.c.URLs()[0])
	subject := transport.MsgSubject(root, channel)

	first := start(t, "first-receiver", "-c", recvCfg, "-o", "-t", "20s", "-log", "info", echo)
	first.waitReady(t)
	env := message(t, sender.key, channel, func(m *sign.Message) { m.Payload = []byte("captured") })
	body := env.Body()
	orig := cl.publish(t, subject, body, env.ID)
	if orig.Duplicate {
		t.Fatalf("the original publish was taken for a duplicate")
	}
	if expectCode(t, first, first.wait(t, 25*time.Second), exitOK) {
		if got := first.stdout.String(); got != "script ran: captured\n" {
			t.Errorf("first-receiver: stdout %q, want %q", got, "script ran: captured\n")
		}
	}

	second := start(t, "second-receiver", "-c", recvCfg, "-o", "-t", refuseWithin.String(), "-log", "info", echo)
	second.waitReady(t)
	other := cl.publish(t, subject, body, strings.Repeat("0", 64))
	none := cl.publish(t, subject, body, "")
	if err := cl.nc.Publish(subject, body); err != nil {
		t.Fatalf("core NATS publish: %v", err)
	}
	if err := cl.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	same := cl.publish(t, subject, body, env.ID)
	if !same.Duplicate || same.Sequence != orig.Sequence {
		t.Errorf("re-publish with the same Nats-Msg-Id: PubAck %+v, want Duplicate at sequence %d", *same, orig.Sequence)
	}
	code := second.wait(t, 10*time.Second)
	if last := cl.lastSeq(t); last != none.Sequence+1 {
		t.Errorf("stream last sequence %d, want %d (original %d, other id %d, no id %d, core publish next, same id dropped)",
			last, none.Sequence+1, orig.Sequence, other.Sequence, none.Sequence)
	}
	expectCode(t, second, code, exitTimeout)
	if out := second.stdout.String(); out != "" {
		t.Errorf("second-receiver ran its script for replayed bytes: stdout %q", out)
	}
	errs := second.stderr.String()
	for _, c := range []struct {
		what string
		seq  uint64
	}{{"another Nats-Msg-Id", other.Sequence}, {"no Nats-Msg-Id", none.Sequence}, {"core NATS publish", none.Sequence + 1}} {
		re := regexp.MustCompile(`msg="rejected message" reason=id-mismatch .*seq=` + strconv.FormatUint(c.seq, 10) + `\b`)
		if countMatches(errs, re) != 1 {
			t.Errorf("second-receiver: no id-mismatch rejection logged for the %s (stream sequence %d)\n%s", c.what, c.seq, second.describe())
		}
	}
	if n := strings.Count(errs, "msg=\"rejected message\""); n != 3 {
		t.Errorf("second-receiver: %d rejections logged, want 3 (the duplicate must never be delivered)\n%s", n, second.describe())
	}
}

// Receiver filters: -d, -D, -v and -p.
func TestReceiveFilters(t *testing.T) {
	b := newBed(t)
	a := newNode(t, "com.test.a")
	other := newNode(t, "com.test.b")
	recv := newNode(t, "com.test.recv")
	aCfg := b.config(t, a, "*")
	otherCfg := b.config(t, other, "*")
	recvCfg := b.config(t, recv, "ping", peerOf(a, "*"), peerOf(other, "*"))
	show := writeScript(t, b.dir, "show.sh", `printf 'verb=%s payload=%s sender=%s\n' "$1" "$2" "$REMAPHORE_SENDER"`+"\n")
	send := func(t *testing.T, cfg, ch string, args ...string) {
		t.Helper()
		p := run(t, "sender", append([]string{"-c", cfg, "-s", "-S", ch}, args...)...)
		expectCode(t, p, p.code, exitOK)
	}
	expectOut := func(t *testing.T, p *proc, want string) {
		t.Helper()
		if got := p.stdout.String(); got != want {
			t.Errorf("%s: script output %q, want %q\n%s", p.name, got, want, p.describe())
		}
	}

	t.Run("any-destination", func(t *testing.T) {
		t.Parallel()
		anyR := start(t, "receiver -d", "-c", recvCfg, "-S", "anydest", "-d", "-o", "-t", "20s", "-log", "info", show)
		plain := start(t, "receiver", "-c", recvCfg, "-S", "anydest", "-o", "-t", refuseWithin.String(), "-log", "debug", show)
		anyR.waitReady(t)
		plain.waitReady(t)
		send(t, aCfg, "anydest", "-D", "com.other.**", "elsewhere")
		if expectCode(t, anyR, anyR.wait(t, 25*time.Second), exitOK) {
			expectOut(t, anyR, "verb=ping payload=elsewhere sender="+a.pub().String()+"\n")
		}
		if expectCode(t, plain, plain.wait(t, 10*time.Second), exitTimeout) {
			expectStderr(t, plain, "reason=destination-mismatch")
			expectOut(t, plain, "")
		}
	})

	t.Run("receiver-D", func(t *testing.T) {
		t.Parallel()
		named := start(t, "receiver -D com.other.host", "-c", recvCfg, "-S", "named", "-D", "com.other.host", "-o", "-t", "20s", "-log", "debug", show)
		plain := start(t, "receiver", "-c", recvCfg, "-S", "named", "-o", "-t", "20s", "-log", "debug", show)
		named.waitReady(t)
		plain.waitReady(t)
		send(t, aCfg, "named", "-D", recv.dest, "first")
		if expectCode(t, plain, plain.wait(t, 25*time.Second), exitOK) {
			expectOut(t, plain, "verb=ping payload=first sender="+a.pub().String()+"\n")
		}
		send(t, aCfg, "named", "-D", "com.other.host", "second")
		if expectCode(t, named, named.wait(t, 25*time.Second), exitOK) {
			expectOut(t, named, "verb=ping payload=second sender="+a.pub().String()+"\n")
			expectStderr(t, named, "reason=destination-mismatch")
		}
	})

	t.Run("verbs", func(t *testing.T) {
		t.Parallel()
		r := start(t, "receiver -v a,b", "-c", recvCfg, "-S", "verbs", "-v", "a,b", "-o", "-t", "20s", "-log", "debug", show)
		r.waitReady(t)
		send(t, aCfg, "verbs", "-v", "c", "payload-c")
		r.waitFor(t, "reason=verb-filter", 10*time.Second)
		if r.exited() {
			t.Fatalf("receiver -v a,b exited after a message with verb c\n%s", r.describe())
		}
		send(t, aCfg, "verbs", "-v", "b", "payload-b")
		if expectCode(t, r, r.wait(t, 25*time.Second), exitOK) {
			expectOut(t, r, "verb=b payload=payload-b sender="+a.pub().String()+"\n")
		}
	})

	t.Run("sender", func(t *testing.T) {
		t.Parallel()
		r := start(t, "receiver -p a", "-c", recvCfg, "-S", "sender", "-p", a.pub().String(), "-o", "-t", "20s", "-log", "debug", show)
		r.waitReady(t)
		send(t, otherCfg, "sender", "from-b")
		r.waitFor(t, "reason=sender-filter", 10*time.Second)
		if r.exited() {
			t.Fatalf("receiver -p exited after a message from another peer\n%s", r.describe())
		}
		send(t, aCfg, "sender", "from-a")
		if expectCode(t, r, r.wait(t, 25*time.Second), exitOK) {
			expectOut(t, r, "verb=ping payload=from-a sender="+a.pub().String()+"\n")
		}
	})

	t.Run("sender-not-a-peer", func(t *testing.T) {
		t.Parallel()
		stranger := newNode(t, "com.test.stranger")
		r := run(t, "receiver -p stranger", "-c", recvCfg, "-p", stranger.pub().String(), "-t", "5s")
		expectCode(t, r, r.code, exitUsage)
		if n := len(errorLines(r.stderr.String())); n != 1 {
			t.Errorf("receiver -p stranger: %d \"remaphore: error:\" lines, want 1\n%s", n, r.describe())
		}
	})
}

// -p picks the identity a message is signed with; without it the verb
// does (the first identity that may send it).
func TestSendIdentityChoice(t *testing.T) {
	b := newBed(t)
	sender := newNode(t, "com.test.sender")
	second := newNode(t, "com.test.sender")
	recv := newNode(t, "com.test.recv")
	sendCfg := writeConf(t, b.dir, "sender", conf{
		servers: b.c.URLs(), creds: b.c.User.SeedFile, dest: sender.dest,
		identities: []identity{{key: sender.key, verbs: "ping"}, {key: second.key, verbs: "ping, deploy"}},
	})
	recvCfg := b.config(t, recv, "ping", peer{dest: "com.test.sender1", key: sender.pub(), verbs: "*"}, peer{dest: "com.test.sender2", key: second.pub(), verbs: "*"})
	show := writeScript(t, b.dir, "show.sh", `printf '%s %s %s\n' "$1" "$2" "$REMAPHORE_SENDER"`+"\n")
	r := start(t, "receiver", "-c", recvCfg, "-t", refuseWithin.String(), "-log", "info", show)
	r.waitReady(t)
	for _, args := range [][]string{{"default"}, {"-p", second.pub().String(), "explicit"}, {"-v", "deploy", "by-verb"}} {
		s := run(t, "sender", append([]string{"-c", sendCfg, "-s"}, args...)...)
		expectCode(t, s, s.code, exitOK)
	}
	want := "ping default " + sender.pub().String() + "\n" +
		"ping explicit " + second.pub().String() + "\n" +
		"deploy by-verb " + second.pub().String() + "\n"
	if expectCode(t, r, r.wait(t, 20*time.Second), exitOK) {
		if got := r.stdout.String(); got != want {
			t.Errorf("receiver: script saw\n%s\nwant\n%s", got, want)
		}
	}
	// An identity that may not send the verb is a usage error.
	s := run(t, "sender", "-c", sendCfg, "-s", "-p", sender.pub().String(), "-v", "deploy")
	expectCode(t, s, s.code, exitUsage)
}

// The script gets verb and payload as arguments and the REMAPHORE_*
// variables; a hostile payload arrives byte for byte and runs nothing.
func TestScriptEnvironment(t *testing.T) {
	b := newBed(t)
	sender := newNode(t, "com.test.sender")
	recv := newNode(t, "com.test.recv")
	sendCfg := b.config(t, sender, "ping")
	recvCfg := b.config(t, recv, "ping", peerOf(sender, "ping"))
	vars := []string{"REMAPHORE_SENDER", "REMAPHORE_VERB", "REMAPHORE_TIME", "REMAPHORE_UUID", "REMAPHORE_MSG", "REMAPHORE_DESTMATCH", "REMOPHORE_DESTMATCH"}
	body := "out=$1\nprintf '%s' \"$#\" > \"$out/argc\"\nprintf '%s' \"$2\" > \"$out/verb\"\nprintf '%s' \"$3\" > \"$out/payload\"\n"
	for _, v := range vars {
		body += fmt.Sprintf("if [ -n \"${%[1]s+x}\" ]; then printf '%%s' \"$%[1]s\" > \"$out/%[1]s\"; fi\n", v)
	}
	dump := writeScript(t, b.dir, "dump.sh", body)
	pwned := t.TempDir()
	payload := "it's \"quoted\"  with  two  spaces\nand a second line\n\t$(touch " + filepath.Join(pwned, "dollar") +
		") `touch " + filepath.Join(pwned, "backtick") + "`; touch " + filepath.Join(pwned, "semicolon") + " && echo $HOME \\n *\n"

	plainOut, anyOut := t.TempDir(), t.TempDir()
	plain := start(t, "receiver", "-c", recvCfg, "-o", "-t", "20s", "-log", "info", dump, plainOut)
	anyR := start(t, "receiver -d", "-c", recvCfg, "-d", "-o", "-t", "20s", "-log", "info", dump, anyOut)
	plain.waitReady(t)
	anyR.waitReady(t)
	before := time.Now()
	s := run(t, "sender", "-c", sendCfg, "-s", "-u", "job-42", payload)
	expectCode(t, s, s.code, exitOK)
	expectCode(t, plain, plain.wait(t, 25*time.Second), exitOK)
	expectCode(t, anyR, anyR.wait(t, 25*time.Second), exitOK)

	read := func(dir, name string) (string, bool) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		return string(b), err == nil
	}
	for _, c := range []struct {
		name      string
		dir       string
		destmatch bool
	}{{"receiver", plainOut, true}, {"receiver -d", anyOut, false}} {
		want := map[string]string{
			"argc": "3", "verb": "ping", "payload": payload,
			"REMAPHORE_SENDER": sender.pub().String(), "REMAPHORE_VERB": "ping",
			"REMAPHORE_UUID": "job-42", "REMAPHORE_MSG": payload,
		}
		if c.destmatch {
			want["REMAPHORE_DESTMATCH"] = recv.dest
			want["REMOPHORE_DESTMATCH"] = recv.dest
		}
		for k, w := range want {
			got, ok := read(c.dir, k)
			switch {
			case !ok:
				t.Errorf("%s: script did not see %s (want %q)", c.name, k, w)
			case got != w:
				t.Errorf("%s: %s = %q, want %q", c.name, k, got, w)
			}
		}
		if !c.destmatch {
			for _, k := range []string{"REMAPHORE_DESTMATCH", "REMOPHORE_DESTMATCH"} {
				if got, ok := read(c.dir, k); ok {
					t.Errorf("%s: %s is set (%q), but must not be with -d", c.name, k, got)
				}
			}
		}
		ts, ok := read(c.dir, "REMAPHORE_TIME")
		sec, err := strconv.ParseInt(ts, 10, 64)
		if !ok || err != nil {
			t.Errorf("%s: REMAPHORE_TIME = %q, want unix seconds", c.name, ts)
		} else if sent := time.Unix(sec, 0); sent.Before(before.Add(-2*time.Second)) || sent.After(time.Now().Add(2*time.Second)) {
			t.Errorf("%s: REMAPHORE_TIME = %d (%v), want the send time (about %v)", c.name, sec, sent, before)
		}
	}
	entries, err := os.ReadDir(pwned)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("the payload ran code: %s was created", filepath.Join(pwned, e.Name()))
	}
}

// A script that fails in -o mode makes remaphore exit 4.
func TestScriptFailureExitCode(t *testing.T) {
	b := newBed(t)
	sender := newNode(t, "com.test.sender")
	recv := newNode(t, "com.test.recv")
	sendCfg := b.config(t, sender, "ping")
	recvCfg := b.config(t, recv, "ping", peerOf(sender, "ping"))
	fail := writeScript(t, b.dir, "fail.sh", "echo failing\nexit 5\n")
	r := start(t, "receiver", "-c", recvCfg, "-o", "-t", "20s", "-log", "info", fail)
	r.waitReady(t)
	s := run(t, "sender", "-c", sendCfg, "-s")
	expectCode(t, s, s.code, exitOK)
	if expectCode(t, r, r.wait(t, 25*time.Second), exitScript) {
		expectStderr(t, r, "exited 5")
		if got := r.stdout.String(); got != "failing\n" {
			t.Errorf("receiver: stdout %q, want the script's own output %q", got, "failing\n")
		}
	}
}

// Without -o a receiver handles every message until -t and then exits 0
// because it received something; the payload is the sender's remaining
// arguments joined with single spaces.
func TestReceiveUntilTimeout(t *testing.T) {
	b := newBed(t)
	sender := newNode(t, "com.test.sender")
	recv := newNode(t, "com.test.recv")
	sendCfg := b.config(t, sender, "ping")
	recvCfg := b.config(t, recv, "ping", peerOf(sender, "ping"))
	show := writeScript(t, b.dir, "show.sh", `printf '[%s]\n' "$2"; exit 7`+"\n")
	r := start(t, "receiver", "-c", recvCfg, "-t", refuseWithin.String(), "-log", "info", show)
	r.waitReady(t)
	for _, args := range [][]string{{"one"}, {"two", "words", " and  spaces "}} {
		s := run(t, "sender", append([]string{"-c", sendCfg, "-s"}, args...)...)
		expectCode(t, s, s.code, exitOK)
	}
	if expectCode(t, r, r.wait(t, 10*time.Second), exitOK) {
		if r.elapsed < refuseWithin {
			t.Errorf("receiver without -o exited after %v, before -t %v", r.elapsed, refuseWithin)
		}
		if got, want := r.stdout.String(), "[one]\n[two words  and  spaces ]\n"; got != want {
			t.Errorf("receiver: script output %q, want %q", got, want)
		}
	}
}

// A receiver whose server is down keeps retrying until -t runs out, then
// fails as a NATS error naming the server.
func TestReceiverServerDown(t *testing.T) {
	dir := t.TempDir()
	user := natstest.NewUser(t, dir)
	recv := newNode(t, "com.test.recv")
	cfg := writeConf(t, dir, "recv", conf{
		servers: []string{"nats://127.0.0.1:1"}, creds: user.SeedFile, dest: recv.dest,
		identities: []identity{{key: recv.key, verbs: "ping"}},
	})
	r := run(t, "receiver", "-c", cfg, "-t", "2s")
	if expectCode(t, r, r.code, exitNATS) {
		if r.elapsed < 2*time.Second || r.elapsed > 6*time.Second {
			t.Errorf("receiver: gave up after %v, want about its -t 2s", r.elapsed)
		}
		expectStderr(t, r, "127.0.0.1:1")
	}
}

// -C prints an example config that parses.
func TestExampleConfig(t *testing.T) {
	p := run(t, "remaphore -C", "-C")
	if !expectCode(t, p, p.code, exitOK) {
		return
	}
	c, err := config.Parse("example", []byte(p.stdout.String()))
	if err != nil {
		t.Fatalf("remaphore -C: the example does not parse: %v\n%s", err, p.stdout.String())
	}
	if len(c.Identities) != 1 {
		t.Errorf("remaphore -C: example has %d identities, want 1 (a fresh key)", len(c.Identities))
	}
	q := run(t, "remaphore -C again", "-C")
	if q.stdout.String() == p.stdout.String() {
		t.Errorf("remaphore -C printed the same key twice; want a fresh key each time")
	}
}
