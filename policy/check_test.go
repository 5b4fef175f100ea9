package policy

import (
	"bytes"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/remaphore/remaphore/sign"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func key(t testing.TB, b byte) sign.PrivateKey {
	t.Helper()
	k, err := sign.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{b}, 64)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

type fixture struct {
	alice, bob, mallory sign.PrivateKey
	rules               Rules
	now                 time.Time
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{alice: key(t, 1), bob: key(t, 2), mallory: key(t, 3), now: t0}
	pingOnly, _ := ParseVerbList("ping")
	f.rules = Rules{
		Root: "remaphore", Channel: "all", Kind: sign.KindMsg,
		Peers: []Peer{
			{Dest: "com.crypto.us.left", Key: f.alice.Public(), Verbs: AllVerbs()},
			{Dest: "com.crypto.us.right", Key: f.bob.Public(), Verbs: pingOnly},
		},
		AllowSkew:   5 * time.Second,
		Destination: "com.crypto.host.us",
		Now:         func() time.Time { return f.now },
	}
	return f
}

func (f *fixture) checker(t *testing.T) *Checker {
	c, err := NewChecker(f.rules)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func msg(mods ...func(*sign.Message)) *sign.Message {
	m := &sign.Message{Kind: sign.KindMsg, Root: "remaphore", Channel: "all", Dest: "**", Verb: "ping", UUID: "upload_done", Sent: t0, Payload: []byte("hi")}
	for _, mod := range mods {
		mod(m)
	}
	return m
}

func seal(t *testing.T, m *sign.Message, k sign.PrivateKey) Input {
	t.Helper()
	e, err := sign.Seal(m, k)
	if err != nil {
		t.Fatal(err)
	}
	return Input{Body: e.Body(), HeaderID: e.ID}
}

func TestCheck_Accepts(t *testing.T) {
	f := newFixture(t)
	c := f.checker(t)
	v := c.Check(seal(t, msg(), f.alice))
	if !v.Accepted() {
		t.Fatalf("refused: %v", v.Error())
	}
	if v.Peer.Dest != "com.crypto.us.left" || v.Env.UUID != "upload_done" {
		t.Fatalf("verdict = %+v", v)
	}
}

func TestCheck_Rejections(t *testing.T) {
	tests := []struct {
		name   string
		rules  func(*Rules)
		input  func(t *testing.T, f *fixture) Input
		reason Reason
	}{
		{"garbage", nil, func(t *testing.T, f *fixture) Input { return Input{Body: []byte("hello")} }, ReasonMalformed},
		{"forged signature", nil, func(t *testing.T, f *fixture) Input {
			in := seal(t, msg(), f.alice)
			in.Body[len(in.Body)-1] ^= 1
			return in
		}, ReasonBadSignature},
		{"sender swapped after signing", nil, func(t *testing.T, f *fixture) Input {
			e, _ := sign.Seal(msg(), f.mallory)
			m := e.Message
			m.Sender = f.alice.Public()
			signed, _ := m.Marshal()
			return Input{Body: append(signed, e.Signature[:]...), HeaderID: sign.MessageID(signed)}
		}, ReasonBadSignature},
		{"no header id", nil, func(t *testing.T, f *fixture) Input {
			in := seal(t, msg(), f.alice)
			in.HeaderID = ""
			return in
		}, ReasonIDMismatch},
		{"other header id", nil, func(t *testing.T, f *fixture) Input {
			in := seal(t, msg(), f.alice)
			in.HeaderID = strings.Repeat("ab", 32)
			return in
		}, ReasonIDMismatch},
		{"other channel", nil, func(t *testing.T, f *fixture) Input {
			return seal(t, msg(func(m *sign.Message) { m.Channel = "other" }), f.alice)
		}, ReasonWrongChannel},
		{"other root", nil, func(t *testing.T, f *fixture) Input {
			return seal(t, msg(func(m *sign.Message) { m.Root = "other" }), f.alice)
		}, ReasonWrongChannel},
		{"reply where message expected", nil, func(t *testing.T, f *fixture) Input {
			return seal(t, msg(func(m *sign.Message) { m.Kind = sign.KindReply }), f.alice)
		}, ReasonWrongKind},
		{"unknown sender", nil, func(t *testing.T, f *fixture) Input { return seal(t, msg(), f.mallory) }, ReasonUnknownSender},
		{"verb not allowed", nil, func(t *testing.T, f *fixture) Input {
			return seal(t, msg(func(m *sign.Message) { m.Verb = "deploy" }), f.bob)
		}, ReasonVerbNotAllowed},
		{"verb case is not normalized by receivers", nil, func(t *testing.T, f *fixture) Input {
			return seal(t, msg(func(m *sign.Message) { m.Verb = "PING" }), f.bob)
		}, ReasonVerbNotAllowed},
		{"too old", nil, func(t *testing.T, f *fixture) Input {
			return seal(t, msg(func(m *sign.Message) { m.Sent = t0.Add(-5*time.Second - time.Nanosecond) }), f.alice)
		}, ReasonStale},
		{"from the future", nil, func(t *testing.T, f *fixture) Input {
			return seal(t, msg(func(m *sign.Message) { m.Sent = t0.Add(6 * time.Second) }), f.alice)
		}, ReasonStale},
		{"stale against the stream's time", nil, func(t *testing.T, f *fixture) Input {
			in := seal(t, msg(), f.alice)
			in.Stored = t0.Add(time.Minute)
			return in
		}, ReasonStale},
		{"destination mismatch", nil, func(t *testing.T, f *fixture) Input {
			return seal(t, msg(func(m *sign.Message) { m.Dest = "com.crypto.*.eu" }), f.alice)
		}, ReasonDestMismatch},
		{"invalid destination pattern", nil, func(t *testing.T, f *fixture) Input {
			return seal(t, msg(func(m *sign.Message) { m.Dest = "com.**.us" }), f.alice)
		}, ReasonDestMismatch},
		{"uuid filter", func(r *Rules) { r.UUID = "other" }, func(t *testing.T, f *fixture) Input { return seal(t, msg(), f.alice) }, ReasonFilterUUID},
		{"verb filter", func(r *Rules) { v, _ := ParseVerbList("deploy,status"); r.Verbs = &v }, func(t *testing.T, f *fixture) Input { return seal(t, msg(), f.alice) }, ReasonFilterVerb},
		{"sender filter", func(r *Rules) { r.Sender = key(t, 2).Public() }, func(t *testing.T, f *fixture) Input { return seal(t, msg(), f.alice) }, ReasonFilterSender},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			if tt.rules != nil {
				tt.rules(&f.rules)
			}
			v := f.checker(t).Check(tt.input(t, f))
			if v.Reason != tt.reason {
				t.Fatalf("reason = %v (%s), want %v", v.Reason, v.Detail, tt.reason)
			}
			if v.Detail == "" {
				t.Fatalf("no detail for %v", v.Reason)
			}
			if tt.reason >= ReasonDestMismatch != v.Reason.IsFilter() {
				t.Fatalf("IsFilter(%v) wrong", v.Reason)
			}
		})
	}
}

func TestCheck_EdgeOfSkewAccepted(t *testing.T) {
	f := newFixture(t)
	c := f.checker(t)
	for _, d := range []time.Duration{-5 * time.Second, 5 * time.Second} {
		if v := c.Check(seal(t, msg(func(m *sign.Message) { m.Sent = t0.Add(d) }), f.alice)); !v.Accepted() {
			t.Fatalf("sent %v from now: %v", d, v.Error())
		}
	}
}

func TestCheck_AnyDestination(t *testing.T) {
	f := newFixture(t)
	f.rules.AnyDestination = true
	f.rules.Destination = ""
	v := f.checker(t).Check(seal(t, msg(func(m *sign.Message) { m.Dest = "org.elsewhere" }), f.alice))
	if !v.Accepted() {
		t.Fatal(v.Error())
	}
}

func TestCheck_Replay(t *testing.T) {
	f := newFixture(t)
	c := f.checker(t)
	in := seal(t, msg(), f.alice)
	if v := c.Check(in); !v.Accepted() {
		t.Fatal(v.Error())
	}
	if v := c.Check(in); v.Reason != ReasonReplay {
		t.Fatalf("second copy: %v", v.Error())
	}
	// A filtered message is remembered too: it is authentic, just unwanted.
	in2 := seal(t, msg(func(m *sign.Message) { m.Dest = "org.x" }), f.alice)
	c.Check(in2)
	if v := c.Check(in2); v.Reason != ReasonReplay {
		t.Fatalf("filtered then replayed: %v", v.Error())
	}
}

func TestCheck_ForgeryDoesNotPoisonReplayCache(t *testing.T) {
	f := newFixture(t)
	c := f.checker(t)
	in := seal(t, msg(), f.alice)
	forged := Input{Body: bytes.Clone(in.Body), HeaderID: in.HeaderID}
	forged.Body[len(forged.Body)-1] ^= 0xff // same signed bytes, same id, bad signature
	if v := c.Check(forged); v.Reason != ReasonBadSignature {
		t.Fatal(v.Error())
	}
	if v := c.Check(in); !v.Accepted() {
		t.Fatalf("real message after forgery: %v", v.Error())
	}
}

func TestCheck_ReplyBinding(t *testing.T) {
	f := newFixture(t)
	var req [sign.IDSize]byte
	rand.Read(req[:])
	f.rules.Kind = sign.KindReply
	f.rules.RequestID = req
	f.rules.Destination = ""
	c := f.checker(t)
	reply := func(id [sign.IDSize]byte, k sign.PrivateKey, verb string) Input {
		return seal(t, msg(func(m *sign.Message) {
			m.Kind, m.RequestID, m.ResponderDest, m.ExitCode, m.Verb = sign.KindReply, id, "com.crypto.us.right", 3, verb
		}), k)
	}
	// bob may only send ping, but may answer a deploy request.
	if v := c.Check(reply(req, f.bob, "deploy")); !v.Accepted() {
		t.Fatal(v.Error())
	}
	var other [sign.IDSize]byte
	if v := c.Check(reply(other, f.alice, "ping")); v.Reason != ReasonWrongRequest {
		t.Fatalf("other request: %v", v.Error())
	}
	if v := c.Check(reply(req, f.mallory, "ping")); v.Reason != ReasonUnknownSender {
		t.Fatalf("unknown responder: %v", v.Error())
	}
	if v := c.Check(seal(t, msg(), f.alice)); v.Reason != ReasonWrongKind {
		t.Fatalf("message where reply expected: %v", v.Error())
	}
}

func TestNewChecker_Validates(t *testing.T) {
	for name, r := range map[string]Rules{
		"no kind":        {AllowSkew: time.Second, Destination: "a"},
		"no skew":        {Kind: sign.KindMsg, Destination: "a"},
		"bad local name": {Kind: sign.KindMsg, AllowSkew: time.Second, Destination: "a.*"},
	} {
		if _, err := NewChecker(r); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestReplayCache_Bounded(t *testing.T) {
	c := newReplayCache(3)
	now := t0
	var ids [5][sign.IDSize]byte
	for i := range ids {
		ids[i][0] = byte(i)
		if !c.add(ids[i], now.Add(time.Hour), now) {
			t.Fatalf("id %d seen", i)
		}
	}
	if c.len() != 3 {
		t.Fatalf("len = %d", c.len())
	}
	if c.add(ids[4], now.Add(time.Hour), now) {
		t.Fatal("newest forgotten")
	}
	// Expired entries go.
	if !c.add([sign.IDSize]byte{9}, now.Add(3*time.Hour), now.Add(2*time.Hour)) || c.len() != 1 {
		t.Fatalf("expired entries kept: len %d", c.len())
	}
}

func TestReason_Names(t *testing.T) {
	for r := ReasonAccepted; r <= ReasonFilterSender; r++ {
		got, ok := ParseReason(r.String())
		if !ok || got != r {
			t.Errorf("ParseReason(%q) = %v, %v", r.String(), got, ok)
		}
	}
}

func TestCheck_AuditMode(t *testing.T) {
	f := newFixture(t)
	f.rules.Audit = true
	f.rules.Destination = ""
	f.rules.UUID = "ignored-in-audit"
	c := f.checker(t)
	if v := c.Check(seal(t, msg(func(m *sign.Message) { m.Dest = "org.elsewhere" }), f.alice)); !v.Accepted() {
		t.Fatalf("message: %v", v.Error())
	}
	if v := c.Check(seal(t, msg(func(m *sign.Message) { m.Kind = sign.KindReply; m.RequestID[0] = 7 }), f.bob)); !v.Accepted() {
		t.Fatalf("reply: %v", v.Error())
	}
	if v := c.Check(seal(t, msg(func(m *sign.Message) { m.Verb = "deploy" }), f.bob)); v.Reason != ReasonVerbNotAllowed {
		t.Fatalf("security rules still apply: %v", v.Error())
	}
	if v := c.Check(seal(t, msg(), f.mallory)); v.Reason != ReasonUnknownSender {
		t.Fatalf("unknown sender: %v", v.Error())
	}
}

// Once a peer's verifier has warmed up (it then checks through
// precomputed tables), forgeries in its name are still refused, in audit
// mode with shared Verifiers as for a receiver with its own.
func TestCheck_ForgeriesRefusedAfterWarmUp(t *testing.T) {
	for _, shared := range []bool{false, true} {
		f := newFixture(t)
		if shared {
			f.rules.Audit = true
			f.rules.Verifiers = NewVerifiers(f.rules.Peers)
		}
		c := f.checker(t)
		for i := range 40 {
			f.now = t0
			good := seal(t, msg(func(m *sign.Message) { m.UUID = "u" + string(rune('a'+i%26)) + string(rune('a'+i/26)) }), f.alice)
			if v := c.Check(good); !v.Accepted() {
				t.Fatalf("shared=%v, message %d refused: %v", shared, i, v.Error())
			}
			forged := seal(t, msg(func(m *sign.Message) { m.UUID = "forged" }), f.alice)
			forged.Body[len(forged.Body)-1-i%64] ^= 1 << (i % 8)
			if v := c.Check(forged); v.Reason != ReasonBadSignature {
				t.Fatalf("shared=%v, forgery %d: %v, want bad-signature", shared, i, v.Error())
			}
			swapped, _ := sign.Seal(msg(), f.mallory)
			m := swapped.Message
			m.Sender = f.alice.Public()
			signed, _ := m.Marshal()
			in := Input{Body: append(signed, swapped.Signature[:]...), HeaderID: sign.MessageID(signed)}
			if v := c.Check(in); v.Reason != ReasonBadSignature {
				t.Fatalf("shared=%v, mallory's signature in alice's name %d: %v", shared, i, v.Error())
			}
		}
	}
}

// An unknown key is refused before its signature is looked at: a forged
// message from a key that is no peer is unknown-sender (not bad-signature),
// in audit mode with shared Verifiers as for a receiver's own checker, so
// that a flood from keys that are not peers costs no verification.
func TestCheck_UnknownSenderBeforeSignature(t *testing.T) {
	for _, audit := range []bool{false, true} {
		f := newFixture(t)
		if audit {
			f.rules.Audit = true
			f.rules.Verifiers = NewVerifiers(f.rules.Peers)
		}
		c := f.checker(t)
		in := seal(t, msg(), f.mallory)
		in.Body[len(in.Body)-1] ^= 1 // the signature no longer verifies
		v := c.Check(in)
		if v.Reason != ReasonUnknownSender || !strings.Contains(v.Detail, "refused before its signature was checked") {
			t.Fatalf("audit=%v: %v, want unknown-sender before the signature", audit, v.Error())
		}
		if !v.Peer.Key.IsZero() || v.Env == nil || v.Env.Sender != f.mallory.Public() {
			t.Fatalf("audit=%v: verdict %+v", audit, v)
		}
	}
}

// SetPeers (the auditor's SIGHUP reload) changes who is trusted and what
// they may send, and keeps the replay cache: a copy of a message seen
// before the reload is still a replay after it.
func TestCheck_SetPeersKeepsReplayCache(t *testing.T) {
	f := newFixture(t)
	c := f.checker(t)
	seen := seal(t, msg(), f.alice)
	if v := c.Check(seen); !v.Accepted() {
		t.Fatal(v.Error())
	}
	if v := c.Check(seal(t, msg(func(m *sign.Message) { m.Payload = []byte("m1") }), f.mallory)); v.Reason != ReasonUnknownSender {
		t.Fatalf("before: %v", v.Error())
	}
	// mallory joins with ping only; bob leaves.
	ping, _ := ParseVerbList("ping")
	peers := []Peer{f.rules.Peers[0], {Dest: "com.crypto.us.mallory", Key: f.mallory.Public(), Verbs: ping}}
	c.SetPeers(peers, NewVerifiers(peers))
	if v := c.Check(seal(t, msg(func(m *sign.Message) { m.Payload = []byte("m2") }), f.mallory)); !v.Accepted() {
		t.Fatalf("added peer: %v", v.Error())
	}
	if v := c.Check(seal(t, msg(func(m *sign.Message) { m.Verb = "deploy" }), f.mallory)); v.Reason != ReasonVerbNotAllowed {
		t.Fatalf("added peer's verbs: %v", v.Error())
	}
	if v := c.Check(seal(t, msg(func(m *sign.Message) { m.Payload = []byte("b") }), f.bob)); v.Reason != ReasonUnknownSender {
		t.Fatalf("removed peer: %v", v.Error())
	}
	if v := c.Check(seen); v.Reason != ReasonReplay {
		t.Fatalf("replay across the reload: %v", v.Error())
	}
}

// The unknown sender's detail is kept per key so that a flood from one key
// does not format it for every message: it must read exactly as it always
// did (the audit store keeps it and query shows it), for a key seen many
// times and for keys that change with every message (which keep the cache
// bounded); and a key that becomes a peer is judged as one at once.
func TestCheck_UnknownSenderDetailCached(t *testing.T) {
	f := newFixture(t)
	f.rules.Audit = true
	c := f.checker(t)
	want := func(k sign.PublicKey) string {
		return "sender " + k.String() + " is not in [ Peers ] (refused before its signature was checked)"
	}
	for i := range 3 {
		v := c.Check(seal(t, msg(func(m *sign.Message) { m.UUID = strings.Repeat("x", i+1) }), f.mallory))
		if v.Reason != ReasonUnknownSender || v.Detail != want(f.mallory.Public()) {
			t.Fatalf("copy %d: %q, want %q", i, v.Detail, want(f.mallory.Public()))
		}
	}
	// A flood with a new key in every message: each detail names its
	// own key, and the cache never holds more than its bound.
	for i := range 3 * maxUnknownDetails {
		var seed [64]byte
		rand.Read(seed[:])
		k, err := sign.GenerateKey(bytes.NewReader(seed[:]))
		if err != nil {
			t.Fatal(err)
		}
		v := c.Check(seal(t, msg(), k))
		if v.Reason != ReasonUnknownSender || v.Detail != want(k.Public()) {
			t.Fatalf("fresh key %d: %q, want %q", i, v.Detail, want(k.Public()))
		}
		if len(c.unknown) > maxUnknownDetails {
			t.Fatalf("the unknown-sender cache holds %d keys, bound %d", len(c.unknown), maxUnknownDetails)
		}
	}
	// mallory's detail is cached (or was dropped): once mallory is a
	// peer, its messages are verified and accepted, not refused from
	// the cache.
	c.Check(seal(t, msg(func(m *sign.Message) { m.UUID = "again" }), f.mallory))
	peers := append(append([]Peer{}, f.rules.Peers...), Peer{Dest: "com.crypto.us.mallory", Key: f.mallory.Public(), Verbs: AllVerbs()})
	c.SetPeers(peers, NewVerifiers(peers))
	if v := c.Check(seal(t, msg(func(m *sign.Message) { m.UUID = "as-a-peer" }), f.mallory)); !v.Accepted() {
		t.Fatalf("mallory as a peer: %v", v.Error())
	}
	in := seal(t, msg(func(m *sign.Message) { m.UUID = "forged" }), f.mallory)
	in.Body[len(in.Body)-1] ^= 1
	if v := c.Check(in); v.Reason != ReasonBadSignature {
		t.Fatalf("mallory as a peer, forged: %v, want bad-signature", v.Error())
	}
}
