package policy

import (
	"strings"
	"testing"
	"time"

	"github.com/remaphore/remaphore/sign"
)

// Verbs and payloads a script cannot take as they are: refused with a
// named reason from a peer allowed every verb, before anything runs.
func TestCheck_ScriptUnsafeFields(t *testing.T) {
	cases := []struct {
		name   string
		mod    func(*sign.Message)
		reason Reason
	}{
		{"verb-leading-dash", func(m *sign.Message) { m.Verb = "-rf" }, ReasonBadVerb},
		{"verb-escape", func(m *sign.Message) { m.Verb = "ping\x1b[2K" }, ReasonBadVerb},
		{"verb-c1", func(m *sign.Message) { m.Verb = "ping\u0085" }, ReasonBadVerb},
		{"verb-line-separator", func(m *sign.Message) { m.Verb = "ping\u2028" }, ReasonBadVerb},
		{"verb-space", func(m *sign.Message) { m.Verb = "a b" }, ReasonBadVerb},
		{"verb-upper-case", func(m *sign.Message) { m.Verb = "PING" }, ReasonBadVerb},
		{"verb-empty", func(m *sign.Message) { m.Verb = "" }, ReasonBadVerb},
		{"payload-nul", func(m *sign.Message) { m.Payload = []byte("rm\x00-rf") }, ReasonNULByte},
		{"uuid-nul", func(m *sign.Message) { m.UUID = "job\x00" }, ReasonNULByte},
		{"control-dash-inside", func(m *sign.Message) { m.Verb = "re-deploy" }, ReasonAccepted},
		{"control-payload-controls", func(m *sign.Message) { m.Payload = []byte("a\r\x1b\tb\n") }, ReasonAccepted},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			in := seal(t, msg(tc.mod), f.alice)
			if v := f.checker(t).Check(in); v.Reason != tc.reason {
				t.Fatalf("got %v, want %s", v.Error(), tc.reason)
			}
		})
	}
	if n, s := ReasonNULByte.String(), ReasonBadVerb.String(); n != "nul-byte" || s != "bad-verb" {
		t.Errorf("reason names %q, %q", n, s)
	}
	if ReasonNULByte.IsFilter() || ReasonBadVerb.IsFilter() {
		t.Error("the new reasons are security refusals, not filters")
	}
}

// NormalizeVerb, the rule for verbs sent, is the rule for verbs received.
func TestNormalizeVerb_Hostile(t *testing.T) {
	for _, bad := range []string{"-rf", "--help", "-", "a\x00", "a\x7f", "a\u0085", "a\u2029", "a\xff"} {
		if v, err := NormalizeVerb(bad); err == nil {
			t.Errorf("NormalizeVerb(%q) = %q, want an error", bad, v)
		}
	}
	for _, good := range []string{"ping", "re-deploy", "a-", "état"} {
		if _, err := NormalizeVerb(good); err != nil {
			t.Errorf("NormalizeVerb(%q): %v", good, err)
		}
	}
}

// A late joiner (-since 10m) gets a message stored 2m15s before it started
// (issue 14: refused as stale past the duplicate window), keeps each
// backlog id for its life, and still holds later messages to the
// local-clock bound.
func TestCheck_SinceBacklog(t *testing.T) {
	f := newFixture(t)
	start := t0.Add(2*time.Minute + 15*time.Second)
	f.now = start
	f.rules.MaxDelay = 2 * time.Minute
	plain := f.checker(t)
	f.rules.Since = start.Add(-10 * time.Minute)
	late := f.checker(t)

	old := seal(t, msg(), f.alice)
	old.Stored = t0.Add(time.Second)
	if v := plain.Check(old); v.Reason != ReasonStale {
		t.Fatalf("without -since: %v, want stale", v.Error())
	}
	if v := late.Check(old); !v.Accepted() {
		t.Fatalf("with -since 10m, a message stored 2m15s before the start: %v", v.Error())
	}
	// Hours later the backlog message is still known: delivered again (by
	// a misbehaving server, with the same stored time) it is a replay,
	// although the time-pruned cache has long moved on.
	f.now = start.Add(5 * time.Hour)
	fresh := seal(t, msg(func(m *sign.Message) { m.Sent = f.now; m.Payload = []byte("later") }), f.alice)
	fresh.Stored = f.now
	if v := late.Check(fresh); !v.Accepted() {
		t.Fatalf("a live message: %v", v.Error())
	}
	if v := late.Check(old); v.Reason != ReasonReplay {
		t.Fatalf("the backlog message again: %v, want replay", v.Error())
	}
	// Sent before the window: not part of the backlog.
	before := seal(t, msg(func(m *sign.Message) { m.Sent = f.rules.Since.Add(-time.Minute) }), f.alice)
	before.Stored = f.rules.Since.Add(-time.Minute)
	if v := late.Check(before); v.Reason != ReasonStale {
		t.Fatalf("sent before the -since window: %v, want stale", v.Error())
	}
	// Sent after the start and delivered past MaxDelay: stale as without
	// -since.
	after := seal(t, msg(func(m *sign.Message) { m.Sent = start.Add(time.Minute); m.Payload = []byte("after") }), f.alice)
	after.Stored = start.Add(time.Minute)
	if v := late.Check(after); v.Reason != ReasonStale {
		t.Fatalf("sent after the start, delivered hours late: %v, want stale", v.Error())
	}
	// Re-published captured bytes get a new stored time: stale.
	again := old
	again.Stored = start
	if v := f.checkerWith(t, f.rules).Check(again); v.Reason != ReasonStale {
		t.Fatalf("re-published within the window: %v, want stale", v.Error())
	}
}

func (f *fixture) checkerWith(t *testing.T, r Rules) *Checker {
	c, err := NewChecker(r)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// An empty segment is blamed as such, even where a "**" before it would
// otherwise be taken for the fault (issue 19).
func TestParsePattern_BlamesEmptySegment(t *testing.T) {
	for _, p := range []string{"com.fleet.**.", "com..**", ".**", "com.**..x"} {
		_, err := ParsePattern(p)
		if err == nil || !strings.Contains(err.Error(), "has an empty segment") || strings.Contains(err.Error(), "last segment") {
			t.Errorf("ParsePattern(%q): %v, want the empty segment blamed", p, err)
		}
	}
	if _, err := ParsePattern("com.**.x"); err == nil || !strings.Contains(err.Error(), "** is allowed only as the last segment") {
		t.Errorf("ParsePattern(com.**.x): %v, want ** blamed", err)
	}
}

// The local-clock bound is judged when the message reached the receiver
// (Input.Received): a message that then waited in the receiver's queue
// behind a long script passes it; one that arrived late does not.
func TestCheck_MaxDelayJudgedAtArrival(t *testing.T) {
	f := newFixture(t)
	f.rules.MaxDelay = 2 * time.Minute
	in := seal(t, msg(), f.alice)
	in.Stored = t0.Add(time.Second)
	f.now = t0.Add(10 * time.Minute) // checked 10 minutes after it was sent
	in.Received = t0.Add(2 * time.Second)
	if v := f.checker(t).Check(in); !v.Accepted() {
		t.Fatalf("received 2s after it was sent, checked 10m later: %v", v.Error())
	}
	in.Received = t0.Add(3 * time.Minute)
	if v := f.checker(t).Check(in); v.Reason != ReasonStale {
		t.Fatalf("received 3m after it was sent: %v, want stale", v.Error())
	}
	in.Received = time.Time{} // unknown: judged now
	if v := f.checker(t).Check(in); v.Reason != ReasonStale {
		t.Fatalf("no arrival time, checked 10m after it was sent: %v, want stale", v.Error())
	}
}
