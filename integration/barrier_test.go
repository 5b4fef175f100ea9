package integration

// Issue 16, parts 1 and 2: barriers (-n) against hostile publishers, and
// splay (-splay) across a fleet. The exact CLI output of both is in
// cli/testdata/script/barrier.txtar and splay.txtar.

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/remaphore/remaphore/sign"
	"github.com/remaphore/remaphore/transport"
)

// What a publisher with nothing but publish rights can send does not
// count toward a barrier: a forgery in a peer's name, a message from an
// unknown key, a verb the peer may not send, a counted sender's message
// re-published (another Nats-Msg-Id, none, the same one) and its second,
// genuine message. Only p1's first message counts: 1 of 2.
func TestBarrierHostile(t *testing.T) {
	b := newBed(t)
	p1, p2, p3 := newNode(t, "com.test.p1"), newNode(t, "com.test.p2"), newNode(t, "com.test.p3")
	stranger := newNode(t, "com.test.stranger")
	recv := newNode(t, "com.test.recv")
	// p3 may only deploy: it can be waited for (it may send some verb),
	// but its ping is refused by the policy.
	recvCfg := b.config(t, recv, "ping", peerOf(p1, "*"), peerOf(p2, "*"), peerOf(p3, "deploy"))
	touch := writeScript(t, b.dir, "ran.sh", "echo barrier script ran\n")
	r := start(t, "barrier", "-c", recvCfg, "-n", "2", "-t", (2 * refuseWithin).String(), "-log", "info", touch)
	r.waitReady(t)

	cl := dial(t, b.c, b.c.URLs()[0])
	subject := transport.MsgSubject(root, channel)
	forged := message(t, p2.key, channel, nil)
	cl.publish(t, subject, forge(forged), forged.ID)
	unknown := message(t, stranger.key, channel, nil)
	cl.publish(t, subject, unknown.Body(), unknown.ID)
	verb := message(t, p3.key, channel, nil)
	cl.publish(t, subject, verb.Body(), verb.ID)
	first := message(t, p1.key, channel, func(m *sign.Message) { m.Payload = []byte("first") })
	cl.publish(t, subject, first.Body(), first.ID)
	cl.publish(t, subject, first.Body(), strings.Repeat("0", 64))
	cl.publish(t, subject, first.Body(), "")
	if ack := cl.publish(t, subject, first.Body(), first.ID); !ack.Duplicate {
		t.Errorf("re-publish with the same Nats-Msg-Id was stored again: %+v", *ack)
	}
	second := message(t, p1.key, channel, func(m *sign.Message) { m.Payload = []byte("second") })
	cl.publish(t, subject, second.Body(), second.ID)

	if !expectCode(t, r, r.wait(t, 4*refuseWithin+10*time.Second), exitTimeout) {
		return
	}
	if out := r.stdout.String(); out != "" {
		t.Errorf("barrier: the script ran: stdout %q", out)
	}
	errs := r.stderr.String()
	for _, want := range []string{
		"reason=bad-signature", "reason=unknown-sender", "reason=verb-not-allowed",
		`msg="accepted, not counted" reason="sender already counted"`,
		fmt.Sprintf("remaphore: barrier incomplete (-t %s ran out): 1 of 2 senders arrived: com.test.p1\n", 2*refuseWithin),
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("barrier: stderr lacks %q\n%s", want, r.describe())
		}
	}
	if n := strings.Count(errs, "reason=id-mismatch"); n != 2 {
		t.Errorf("barrier: %d id-mismatch refusals, want 2 (another Nats-Msg-Id, none)\n%s", n, r.describe())
	}
	if n := strings.Count(errs, `msg=accepted `); n != 1 {
		t.Errorf("barrier: %d messages counted, want 1\n%s", n, r.describe())
	}
}

// A signal while a barrier waits, or during a splay, exits 128+N; the
// barrier says how many had arrived.
func TestBarrierAndSplaySignals(t *testing.T) {
	b := newBed(t)
	a, c := newNode(t, "com.test.a"), newNode(t, "com.test.c")
	recv := newNode(t, "com.test.recv")
	recvCfg := b.config(t, recv, "ping", peerOf(a, "*"), peerOf(c, "*"))
	aCfg := b.config(t, a, "*", peerOf(recv, "*"))
	t.Run("sigterm-in-barrier", func(t *testing.T) {
		r := start(t, "barrier", "-c", recvCfg, "-u", "sig", "-n", "all", "-t", "60s", "-log", "info")
		r.waitReady(t)
		s := run(t, "sender", "-c", aCfg, "-s", "-u", "sig", "-t", "30s")
		expectCode(t, s, s.code, exitOK)
		r.waitFor(t, "count=1 need=2", 20*time.Second)
		r.cmd.Process.Signal(syscall.SIGTERM)
		if expectCode(t, r, r.wait(t, 20*time.Second), 128+int(syscall.SIGTERM)) &&
			!strings.HasSuffix(r.stderr.String(), "remaphore: barrier incomplete: 1 of 2 senders arrived: com.test.a; missing: com.test.c\nremaphore: stopped by SIGTERM (exit 143)\n") {
			t.Errorf("barrier: stderr does not end with the count, the missing peer and the signal:\n%s", r.stderr.String())
		}
	})
	t.Run("sigint-in-splay", func(t *testing.T) {
		r := start(t, "splay", "-c", recvCfg, "-u", "splay", "-splay", "10000h", "-t", "60s", "-log", "info", "true")
		r.waitReady(t)
		s := run(t, "sender", "-c", aCfg, "-s", "-u", "splay", "-t", "30s")
		expectCode(t, s, s.code, exitOK)
		r.waitFor(t, "msg=splay", 20*time.Second)
		r.cmd.Process.Signal(syscall.SIGINT)
		if expectCode(t, r, r.wait(t, 20*time.Second), 128+int(syscall.SIGINT)) &&
			!strings.HasSuffix(r.stderr.String(), "window=10000h0m0s\nremaphore: stopped by SIGINT (exit 130)\n") {
			t.Errorf("splay: stderr does not end with the splay line and the signal:\n%s", r.stderr.String())
		}
	})
}

var (
	splayLine    = regexp.MustCompile(`(?m)^time=(\S+) level=INFO msg=splay delay=(\S+) window=`)
	acceptedLine = regexp.MustCompile(`(?m)^time=(\S+) level=INFO msg=accepted `)
)

// 20 receivers woken by one message spread their exits over the -splay
// window. Not a timed assertion: each logs the delay it chose; the delays
// must be distinct and within [0, window), no receiver may exit before
// its accept time plus its delay, and two receivers whose accept time
// plus delay differ by more than a margin (for a loaded machine's
// scheduling) exit in that order.
func TestSplaySpreads(t *testing.T) {
	const n = 20
	const window = 12 * time.Second
	const margin = 3 * time.Second
	b := newBed(t)
	sender := newNode(t, "com.test.sender")
	recv := newNode(t, "com.test.recv")
	recvCfg := b.config(t, recv, "ping", peerOf(sender, "*"))
	sendCfg := b.config(t, sender, "*", peerOf(recv, "*"))
	rs := make([]*proc, n)
	for i := range rs {
		rs[i] = start(t, fmt.Sprintf("receiver %d", i), "-c", recvCfg, "-o", "-splay", window.String(), "-t", "60s", "-log", "info")
	}
	for _, r := range rs {
		r.waitReady(t)
	}
	s := run(t, "sender", "-c", sendCfg, "-s", "-t", "30s")
	expectCode(t, s, s.code, exitOK)

	type exit struct {
		name     string
		delay    time.Duration
		due, end time.Time // accepted + delay; the process's exit
	}
	exits := make([]exit, n)
	seen := map[time.Duration]string{}
	for i, r := range rs {
		if !expectCode(t, r, r.wait(t, window+40*time.Second), exitOK) {
			return
		}
		errs := r.stderr.String()
		m, a := splayLine.FindStringSubmatch(errs), acceptedLine.FindStringSubmatch(errs)
		if m == nil || a == nil {
			t.Fatalf("%s: no accepted or splay line\n%s", r.name, r.describe())
		}
		d, err := time.ParseDuration(m[2])
		if err != nil {
			t.Fatalf("%s: delay %q: %v", r.name, m[2], err)
		}
		acc, err := time.Parse(time.RFC3339Nano, a[1])
		if err != nil {
			t.Fatalf("%s: accepted time %q: %v", r.name, a[1], err)
		}
		if d < 0 || d >= window {
			t.Errorf("%s: delay %v outside [0, %v)", r.name, d, window)
		}
		if other, dup := seen[d]; dup {
			t.Errorf("%s and %s chose the same delay %v", r.name, other, d)
		}
		seen[d] = r.name
		exits[i] = exit{name: r.name, delay: d, due: acc.Add(d), end: r.Started.Add(r.elapsed)}
		// The log's clock has millisecond resolution.
		if exits[i].end.Before(exits[i].due.Add(-time.Millisecond)) {
			t.Errorf("%s: exited at %v, before its accept time plus delay %v", r.name, exits[i].end.Format(time.StampMilli), exits[i].due.Format(time.StampMilli))
		}
	}
	sort.Slice(exits, func(i, j int) bool { return exits[i].due.Before(exits[j].due) })
	for i := range exits {
		for j := i + 1; j < len(exits); j++ {
			if exits[j].due.Sub(exits[i].due) > margin && !exits[i].end.Before(exits[j].end) {
				t.Errorf("%s (delay %v) exited after %s (delay %v), though due %v earlier",
					exits[i].name, exits[i].delay, exits[j].name, exits[j].delay, exits[j].due.Sub(exits[i].due))
			}
		}
	}
	lo, hi := exits[0].delay, exits[0].delay
	for _, e := range exits {
		lo, hi = min(lo, e.delay), max(hi, e.delay)
	}
	t.Logf("%d delays in [%v, %v] of a %v window", n, lo, hi, window)
}
