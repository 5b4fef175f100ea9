package node_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/remaphore/remaphore/config"
	"github.com/remaphore/remaphore/node"
	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/sign"
)

// barrierFleet is a config trusting four peers: eu.west and eu.east (any
// verb), us.left (ping, deploy) and us.right (status only), and their
// keys by destination.
func barrierFleet(t *testing.T) (*config.Config, map[string]sign.PrivateKey) {
	t.Helper()
	keys := map[string]sign.PrivateKey{}
	cfg := &config.Config{Subject: "remaphore", Destination: "com.crypto.build"}
	for _, p := range []struct{ dest, verbs string }{
		{"com.crypto.eu.west", "*"}, {"com.crypto.eu.east", "*"}, {"com.crypto.us.left", "ping, deploy"}, {"com.crypto.us.right", "status"},
	} {
		k := newKey(t)
		keys[p.dest] = k
		v, err := policy.ParseVerbList(p.verbs)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Peers = append(cfg.Peers, policy.Peer{Dest: p.dest, Key: k.Public(), Verbs: v})
	}
	return cfg, keys
}

func verdict(t *testing.T, cfg *config.Config, key sign.PrivateKey, payload string) policy.Verdict {
	t.Helper()
	env, err := sign.Seal(&sign.Message{Kind: sign.KindMsg, Root: "remaphore", Channel: "all", Dest: "**", Verb: "ping",
		UUID: "shards_done", Sent: time.Now(), Payload: []byte(payload)}, key)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := cfg.Peer(key.Public())
	return policy.Verdict{Reason: policy.ReasonAccepted, Env: env, Peer: p}
}

func candidateDests(ps []policy.Peer) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Dest)
	}
	return out
}

func TestBarrierCandidates(t *testing.T) {
	cfg, keys := barrierFleet(t)
	ping, _ := policy.ParseVerbList("ping")
	status, _ := policy.ParseVerbList("status")
	eu, _ := policy.ParsePattern("com.crypto.eu.**")
	for _, c := range []struct {
		name   string
		verbs  *policy.Verbs
		sender sign.PublicKey
		from   *policy.Pattern
		want   []string
	}{
		{"any verb", nil, sign.PublicKey{}, nil, []string{"com.crypto.eu.west", "com.crypto.eu.east", "com.crypto.us.left", "com.crypto.us.right"}},
		{"-v ping leaves out the status-only peer", &ping, sign.PublicKey{}, nil, []string{"com.crypto.eu.west", "com.crypto.eu.east", "com.crypto.us.left"}},
		{"-v status", &status, sign.PublicKey{}, nil, []string{"com.crypto.eu.west", "com.crypto.eu.east", "com.crypto.us.right"}},
		{"-from eu", nil, sign.PublicKey{}, &eu, []string{"com.crypto.eu.west", "com.crypto.eu.east"}},
		{"-p", nil, keys["com.crypto.us.left"].Public(), nil, []string{"com.crypto.us.left"}},
		{"-p outside -from", nil, keys["com.crypto.us.left"].Public(), &eu, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, self := node.BarrierCandidates(cfg, c.verbs, c.sender, c.from)
			if !slices.Equal(candidateDests(got), c.want) || self != nil {
				t.Errorf("candidates %q, self %q; want %q, none", candidateDests(got), self, c.want)
			}
		})
	}
}

// A node never waits for itself: a config written by remaphore -C lists
// the node among its own peers.
func TestBarrierCandidatesNotSelf(t *testing.T) {
	cfg, keys := barrierFleet(t)
	cfg.Identities = []policy.Identity{{Key: keys["com.crypto.eu.east"], Verbs: policy.AllVerbs()}}
	got, self := node.BarrierCandidates(cfg, nil, sign.PublicKey{}, nil)
	if want := []string{"com.crypto.eu.west", "com.crypto.us.left", "com.crypto.us.right"}; !slices.Equal(candidateDests(got), want) ||
		!slices.Equal(self, []string{"com.crypto.eu.east"}) {
		t.Errorf("candidates %q, self %q; want %q, [com.crypto.eu.east]", candidateDests(got), self, want)
	}
}

func TestNewBarrierSize(t *testing.T) {
	cfg, _ := barrierFleet(t)
	if _, err := node.NewBarrier(cfg.Peers, 5); !errors.Is(err, node.ErrBarrierSize) || !strings.Contains(err.Error(), "5 senders wanted, and only 4 peers may send") {
		t.Errorf("-n 5 of 4: %v, want ErrBarrierSize naming 5 and 4", err)
	}
	if _, err := node.NewBarrier(nil, node.BarrierAll); !errors.Is(err, node.ErrBarrierSize) {
		t.Errorf("no candidates: %v, want ErrBarrierSize", err)
	}
	if _, err := node.NewBarrier(cfg.Peers, -1); !errors.Is(err, node.ErrBarrierSize) {
		t.Errorf("-1: %v, want ErrBarrierSize", err)
	}
	b, err := node.NewBarrier(cfg.Peers, node.BarrierAll)
	if err != nil || b.Need() != 4 {
		t.Fatalf("all: need %v, %v; want 4", b, err)
	}
}

// A second message of a counted sender (or the same one again, as a
// replay that got past the checker would be), a message of a peer
// outside the candidates and a verdict that was not an acceptance never
// count; the script's environment is the completing message's plus the
// count and the senders in arrival order.
func TestBarrierCounting(t *testing.T) {
	cfg, keys := barrierFleet(t)
	eu, _ := policy.ParsePattern("com.crypto.eu.**")
	candidates, _ := node.BarrierCandidates(cfg, nil, sign.PublicKey{}, &eu)
	b, err := node.NewBarrier(candidates, node.BarrierAll)
	if err != nil {
		t.Fatal(err)
	}
	east1 := verdict(t, cfg, keys["com.crypto.eu.east"], "east 1")
	if !b.Add(east1) {
		t.Fatal("the first message of eu.east did not count")
	}
	if b.Add(east1) {
		t.Error("the same message counted twice")
	}
	if b.Add(verdict(t, cfg, keys["com.crypto.eu.east"], "east 2")) {
		t.Error("a second message of eu.east counted")
	}
	if b.Add(verdict(t, cfg, keys["com.crypto.us.left"], "us")) {
		t.Error("us.left counted, outside -from")
	}
	refused := verdict(t, cfg, keys["com.crypto.eu.west"], "forged")
	refused.Reason = policy.ReasonBadSignature
	if b.Add(refused) {
		t.Error("a refused message counted")
	}
	if b.Add(policy.Verdict{Reason: policy.ReasonAccepted}) {
		t.Error("a verdict without an envelope counted")
	}
	if b.Complete() || b.Count() != 1 || !slices.Equal(b.Missing(), []string{"com.crypto.eu.west"}) {
		t.Fatalf("after eu.east: complete %v, count %d, missing %q; want false, 1, [com.crypto.eu.west]", b.Complete(), b.Count(), b.Missing())
	}
	if !b.Add(verdict(t, cfg, keys["com.crypto.eu.west"], "west")) || !b.Complete() {
		t.Fatal("eu.west did not complete the barrier")
	}
	if b.Missing() != nil {
		t.Errorf("missing %q after completion", b.Missing())
	}
	call := b.Call("com.crypto.build", false)
	for _, want := range []string{"REMAPHORE_COUNT=2", "REMAPHORE_SENDERS=com.crypto.eu.east,com.crypto.eu.west", "REMAPHORE_MSG=west",
		"REMAPHORE_SENDER=" + keys["com.crypto.eu.west"].Public().String(), "REMAPHORE_UUID=shards_done", "REMAPHORE_DESTMATCH=com.crypto.build"} {
		if !slices.Contains(call.Env, want) {
			t.Errorf("script environment lacks %s: %q", want, call.Env)
		}
	}
	if string(call.Payload) != "west" || call.Capture {
		t.Errorf("script call payload %q capture %v, want the last message's payload, not captured", call.Payload, call.Capture)
	}
}

func TestSplay(t *testing.T) {
	if d := node.Splay(0); d != 0 {
		t.Errorf("Splay(0) = %v", d)
	}
	if d := node.Splay(-time.Second); d != 0 {
		t.Errorf("Splay(-1s) = %v", d)
	}
	const window = time.Second
	seen := map[time.Duration]bool{}
	for range 1000 {
		d := node.Splay(window)
		if d < 0 || d >= window {
			t.Fatalf("Splay(%v) = %v, outside [0, %v)", window, d, window)
		}
		seen[d] = true
	}
	// 1000 draws among 10^9 nanoseconds: a repeat or two at most.
	if len(seen) < 990 {
		t.Errorf("%d distinct delays in 1000 draws", len(seen))
	}
}

// A node listed in [ Peers ] with two keys (two identities) is one
// sender: -n all waits for it once, and a message signed with its second
// key does not count again.
func TestBarrierCountsNodesNotKeys(t *testing.T) {
	cfg, keys := barrierFleet(t)
	second := newKey(t)
	deploy, _ := policy.ParseVerbList("deploy")
	cfg.Peers = append(cfg.Peers, policy.Peer{Dest: "com.crypto.eu.east", Key: second.Public(), Verbs: deploy})
	eu, _ := policy.ParsePattern("com.crypto.eu.**")
	candidates, _ := node.BarrierCandidates(cfg, nil, sign.PublicKey{}, &eu)
	if len(candidates) != 3 {
		t.Fatalf("candidates %q, want eu.west and eu.east's two keys", candidateDests(candidates))
	}
	if _, err := node.NewBarrier(candidates, 3); !errors.Is(err, node.ErrBarrierSize) || !strings.Contains(err.Error(), "only 2 peers may send (com.crypto.eu.west com.crypto.eu.east)") {
		t.Errorf("-n 3 of two nodes: %v, want ErrBarrierSize naming the two", err)
	}
	b, err := node.NewBarrier(candidates, node.BarrierAll)
	if err != nil || b.Need() != 2 {
		t.Fatalf("-n all: need %v, %v; want 2", b, err)
	}
	if !b.Add(verdict(t, cfg, keys["com.crypto.eu.east"], "east")) {
		t.Fatal("eu.east's first message did not count")
	}
	if b.Add(verdict(t, cfg, second, "east again")) {
		t.Error("eu.east counted again with its second key")
	}
	if b.Complete() || !slices.Equal(b.Missing(), []string{"com.crypto.eu.west"}) {
		t.Fatalf("complete %v, missing %q; want false, [com.crypto.eu.west]", b.Complete(), b.Missing())
	}
	if !b.Add(verdict(t, cfg, keys["com.crypto.eu.west"], "west")) || !b.Complete() || b.Count() != 2 {
		t.Errorf("eu.west did not complete the barrier: count %d", b.Count())
	}
}
