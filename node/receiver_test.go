package node

import (
	"bytes"
	"fmt"
	"log/slog"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/remaphore/remaphore/config"
	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/sign"
	"github.com/remaphore/remaphore/transport"
)

// forgedFleet returns a config trusting peers keys and a function that
// makes the i-th forgery: a message in a peer's name (peer i%peers)
// signed by another key, as a publish-only attacker can send.
func forgedFleet(t testing.TB, peers int) (*config.Config, func(i int) transport.Delivery) {
	t.Helper()
	cfg := &config.Config{Subject: "remaphore", Destination: "com.test.recv", AllowSkew: 5 * time.Second}
	for i := range peers {
		k, err := sign.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Peers = append(cfg.Peers, policy.Peer{Dest: fmt.Sprintf("com.test.p%03d", i), Key: k.Public(), Verbs: policy.AllVerbs()})
	}
	forger, err := sign.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	// One real signature by the forger, re-labelled per peer: the
	// envelope carries the peer's key, the signature is not its own.
	return cfg, func(i int) transport.Delivery {
		now := time.Now()
		env, err := sign.Seal(&sign.Message{Kind: sign.KindMsg, Root: "remaphore", Channel: "all", Dest: "**", Verb: "ping",
			Sent: now, Payload: []byte(fmt.Sprintf("forgery %d", i))}, forger)
		if err != nil {
			t.Fatal(err)
		}
		body := env.Body()
		pk := cfg.Peers[i%len(cfg.Peers)].Key
		// The sender key is stored as-is in the signed bytes; replace the
		// forger's key with the peer's.
		fk := forger.Public()
		j := bytes.Index(body, fk[:])
		if j < 0 {
			t.Fatal("sender key not found in the body")
		}
		copy(body[j:], pk[:])
		return transport.Delivery{Body: body, HeaderID: sign.MessageID(body[:len(body)-64]), Stored: now, Seq: uint64(i + 1)}
	}
}

func heapInUse() uint64 {
	var m runtime.MemStats
	for range 3 {
		runtime.GC()
	}
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// A receiver's memory under 10,000 forged messages in its 300 peers' names
// stays within 2 MiB of what it was before them (issue 14: forgeries used
// to count toward each peer's verifier warm-up and built ~100 KiB of tables
// per peer, 0.3 → 32 MiB), and every one of them is refused as
// bad-signature. The logging is rate-limited: 10 lines for the reason,
// then one summary.
func TestReceiverHeapUnderForgeries(t *testing.T) {
	const peers, forgeries = 300, 10_000
	cfg, forge := forgedFleet(t, peers)
	deliveries := make([]transport.Delivery, forgeries)
	for i := range deliveries {
		deliveries[i] = forge(i)
	}
	var logBuf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	checker, dest, err := newChecker(ReceiverOptions{Config: cfg, Channel: "all"})
	if err != nil {
		t.Fatal(err)
	}
	r := &Receiver{checker: checker, log: log, refused: NewRefusalLog(log, "rejected message", 0, 0), dest: dest}
	before := heapInUse()
	for i, d := range deliveries {
		if v := r.screen(d); v.Reason != policy.ReasonBadSignature {
			t.Fatalf("forgery %d: %v, want bad-signature", i, v.Error())
		}
	}
	after := heapInUse()
	runtime.KeepAlive(r)
	runtime.KeepAlive(deliveries)
	grew := int64(after) - int64(before)
	t.Logf("receiver heap: %.2f MiB before %d forgeries in %d peers' names, %.2f MiB after (%+.3f MiB)",
		float64(before)/(1<<20), forgeries, peers, float64(after)/(1<<20), float64(grew)/(1<<20))
	if grew > 2<<20 {
		t.Errorf("the receiver's heap grew by %.2f MiB under %d forgeries, want at most 2 MiB", float64(grew)/(1<<20), forgeries)
	}
	r.refused.Flush()
	out := logBuf.String()
	if n := strings.Count(out, `msg="rejected message" reason=bad-signature`); n != DefaultRefusalBurst {
		t.Errorf("%d rejected-message lines, want %d (the burst), then a summary", n, DefaultRefusalBurst)
	}
	want := fmt.Sprintf(`count=%d `, forgeries-DefaultRefusalBurst)
	if !strings.Contains(out, `msg="refusals not logged one by one" of="rejected message" `+want) ||
		!strings.Contains(out, fmt.Sprintf("suppressed.bad-signature=%d", forgeries-DefaultRefusalBurst)) {
		t.Errorf("no summary line with %s and suppressed.bad-signature=%d:\n%s", want, forgeries-DefaultRefusalBurst, lastLines(out, 3))
	}
}

// lockedBuffer is a bytes.Buffer a logger on another goroutine may write.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

// Per reason, the first burst refusals of an interval are logged; the rest
// are summed up in one line when the interval ends, at the highest level
// among them; a new interval logs again.
func TestRefusalLog(t *testing.T) {
	var buf lockedBuffer // the summary is written by the interval's timer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	l := NewRefusalLog(log, "rejected message", 2, 200*time.Millisecond)
	for i := range 5 {
		l.Log(slog.LevelWarn, "bad-signature", "seq", i)
		l.Log(slog.LevelWarn, "unknown-sender", "seq", i)
	}
	l.Log(slog.LevelWarn, "stale", "seq", 9)
	got := buf.String()
	for _, want := range []string{
		`level=WARN msg="rejected message" reason=bad-signature seq=0`,
		`level=WARN msg="rejected message" reason=bad-signature seq=1`,
		`level=WARN msg="rejected message" reason=unknown-sender seq=1`,
		`level=WARN msg="rejected message" reason=stale seq=9`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("log lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "seq=2") {
		t.Errorf("a third refusal of a reason was logged within the interval:\n%s", got)
	}
	// The summary comes by itself when the interval ends.
	re := regexp.MustCompile(`level=WARN msg="refusals not logged one by one" of="rejected message" count=6 since=\S+ logged_per_reason=2 per=200ms suppressed.bad-signature=3 suppressed.unknown-sender=3\n`)
	deadline := time.Now().Add(10 * time.Second)
	for !re.MatchString(buf.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("no summary line matching %s:\n%s", re, buf.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	l.Log(slog.LevelWarn, "bad-signature", "seq", 10)
	if !strings.Contains(buf.String(), "reason=bad-signature seq=10") {
		t.Errorf("a new interval does not log again:\n%s", buf.String())
	}
	l.Flush()
	if n := strings.Count(buf.String(), "refusals not logged"); n != 1 {
		t.Errorf("%d summary lines, want 1 (nothing was suppressed since)", n)
	}
	// Levels the logger does not show cost nothing and are not summed up.
	var quiet bytes.Buffer
	q := NewRefusalLog(slog.New(slog.NewTextHandler(&quiet, &slog.HandlerOptions{Level: slog.LevelError})), "x", 1, time.Hour)
	for range 100 {
		q.Log(slog.LevelWarn, "bad-signature")
	}
	q.Flush()
	if quiet.Len() != 0 {
		t.Errorf("warnings logged under -log error: %q", quiet.String())
	}
}

// What one refused message costs a receiver: a forgery in a peer's name
// (one crypto/ed25519 verification) and junk signed by an unknown key
// (looked up before verifying, once policy checks the sender first).
func BenchmarkReceiverScreen(b *testing.B) {
	cfg, forge := forgedFleet(b, 300)
	stranger, _ := sign.GenerateKey(nil)
	now := time.Now()
	junk, err := sign.Seal(&sign.Message{Kind: sign.KindMsg, Root: "remaphore", Channel: "all", Dest: "**", Verb: "ping", Sent: now}, stranger)
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	for _, c := range []struct {
		name string
		d    func(i int) transport.Delivery
	}{
		{"forged-peer", forge},
		{"unknown-sender", func(i int) transport.Delivery {
			return transport.Delivery{Body: junk.Body(), HeaderID: junk.ID, Stored: now, Seq: uint64(i)}
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			checker, dest, err := newChecker(ReceiverOptions{Config: cfg, Channel: "all"})
			if err != nil {
				b.Fatal(err)
			}
			r := &Receiver{checker: checker, log: log, refused: NewRefusalLog(log, "rejected message", 0, 0), dest: dest}
			ds := make([]transport.Delivery, 1000)
			for i := range ds {
				ds[i] = c.d(i)
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if r.screen(ds[i%len(ds)]).Accepted() {
					b.Fatal("accepted")
				}
			}
		})
	}
}
