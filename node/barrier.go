package node

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/remaphore/remaphore/config"
	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/script"
	"github.com/remaphore/remaphore/sign"
)

// BarrierAll is the Need of a barrier that waits for every candidate
// (remaphore -n all).
const BarrierAll = 0

// BarrierCandidates splits the peers of cfg whose messages a barrier
// could count, those that may send one of verbs (any verb when verbs is
// nil), equal to sender when it is not zero (-p), and whose destination
// matches from when it is not nil (-from), into the candidates and the
// destinations of this node's own identities (self). As for a request
// (see Responders), a node does not wait for itself: a config written by
// remaphore -C lists the node as its own peer, and -n all would wait for
// a message the waiter never sends. A peer the policy would refuse every
// such verb to could never count, so it is not waited for either.
func BarrierCandidates(cfg *config.Config, verbs *policy.Verbs, sender sign.PublicKey, from *policy.Pattern) (candidates []policy.Peer, self []string) {
	own := make(map[sign.PublicKey]bool, len(cfg.Identities))
	for _, id := range cfg.Identities {
		own[id.Key.Public()] = true
	}
	for _, p := range cfg.Peers {
		switch {
		case !sender.IsZero() && p.Key != sender:
		case from != nil && !from.Match(p.Dest):
		case !maySendAny(p.Verbs, verbs):
		case own[p.Key]:
			self = append(self, p.Dest)
		default:
			candidates = append(candidates, p)
		}
	}
	return candidates, self
}

// maySendAny reports whether a peer allowed have may send one of want
// (nil: any verb at all).
func maySendAny(have policy.Verbs, want *policy.Verbs) bool {
	switch {
	case have.Empty():
		return false
	case want == nil || want.All() || have.All():
		return true
	}
	for _, v := range want.List() {
		if have.Allows(v) {
			return true
		}
	}
	return false
}

// ErrBarrierSize: a barrier asks for more senders than can ever arrive,
// or there is nobody to wait for.
var ErrBarrierSize = errors.New("barrier cannot complete")

// Barrier counts accepted messages by distinct sender until Need of its
// candidates have sent one. A sender is a destination: a node listed in
// [ Peers ] with several keys (its several identities) counts once,
// whichever of them it signs with. It only counts what the policy checker
// accepted: forgeries, unknown senders, verbs a peer may not send and
// replays never reach it; a second message of a counted sender (a retry,
// another UUID, another of its keys) does not count again.
type Barrier struct {
	need       int
	candidates map[sign.PublicKey]policy.Peer
	order      []string      // the candidates' destinations, each once, as in the config
	arrived    []policy.Peer // counted senders, in arrival order
	counted    map[string]bool
	last       policy.Verdict
}

// NewBarrier waits for need distinct senders among candidates, or for all
// of them when need is BarrierAll. need larger than the candidates, or no
// candidates, is ErrBarrierSize.
func NewBarrier(candidates []policy.Peer, need int) (*Barrier, error) {
	if len(candidates) == 0 {
		return nil, fmt.Errorf("%w: no peer may send a message that counts", ErrBarrierSize)
	}
	b := &Barrier{candidates: make(map[sign.PublicKey]policy.Peer, len(candidates)), order: destinations(candidates)}
	for _, p := range candidates {
		b.candidates[p.Key] = p
	}
	if need == BarrierAll {
		need = len(b.order)
	}
	if need < 0 || need > len(b.order) {
		return nil, fmt.Errorf("%w: %d senders wanted, and only %d peers may send (%s)", ErrBarrierSize, need, len(b.order), strings.Join(b.order, " "))
	}
	b.need, b.counted = need, make(map[string]bool, need)
	return b, nil
}

// Add counts the accepted message v and reports whether it counted: its
// sender is a candidate not counted yet.
func (b *Barrier) Add(v policy.Verdict) bool {
	if !v.Accepted() || v.Env == nil {
		return false
	}
	p, ok := b.candidates[v.Env.Sender]
	if !ok || b.counted[p.Dest] {
		return false
	}
	b.counted[p.Dest] = true
	b.arrived = append(b.arrived, p)
	b.last = v
	return true
}

// Need is the number of distinct senders the barrier waits for.
func (b *Barrier) Need() int { return b.need }

// Count is the number of distinct senders counted so far.
func (b *Barrier) Count() int { return len(b.arrived) }

// Complete reports whether Need senders have been counted.
func (b *Barrier) Complete() bool { return len(b.arrived) >= b.need }

// IsCandidate reports whether a message from key can count.
func (b *Barrier) IsCandidate(key sign.PublicKey) bool {
	_, ok := b.candidates[key]
	return ok
}

// Senders are the destinations of the counted senders, in arrival order.
func (b *Barrier) Senders() []string { return dests(b.arrived) }

// Missing are the destinations of the candidates not counted, sorted.
func (b *Barrier) Missing() []string {
	var out []string
	for _, d := range b.order {
		if !b.counted[d] {
			out = append(out, d)
		}
	}
	sort.Strings(out)
	return out
}

// Last is the last counted message: the one that completed the barrier.
func (b *Barrier) Last() policy.Verdict { return b.last }

// BarrierCall is how a barrier's script runs: as ScriptCall for the last
// counted message (its verb and payload as arguments, its sender, verb,
// time, UUID and payload in REMAPHORE_*), plus REMAPHORE_COUNT (the senders counted) and
// REMAPHORE_SENDERS (their destinations, comma-separated, in arrival
// order). The script runs once for the barrier, so it answers no request:
// its output is not captured.
func (b *Barrier) Call(dest string, anyDest bool) script.Call {
	call := ScriptCall(b.last.Env, dest, anyDest)
	call.Capture = false
	call.Env = append(call.Env,
		"REMAPHORE_COUNT="+strconv.Itoa(b.Count()),
		"REMAPHORE_SENDERS="+strings.Join(b.Senders(), ","))
	return call
}

// HandleBarrier runs cmd once for the completed barrier b (see
// Barrier.Call) and returns the script's exit code (-1 when it could not
// run). No request among the counted messages is answered: a barrier's
// script is not any one message's answer.
func (r *Receiver) HandleBarrier(ctx context.Context, cmd script.Command, b *Barrier) int {
	if len(cmd.Argv) == 0 {
		return 0
	}
	res, err := cmd.Run(ctx, b.Call(r.dest, r.anyDest))
	if err != nil {
		r.log.Warn("script failed", "err", err)
		if res.ExitCode == 0 {
			res.ExitCode = -1
		}
	}
	return res.ExitCode
}

// Splay returns a uniformly random duration in [0, max): how long a
// receiver waits after the message, so that a fleet woken by one
// broadcast does not act in the same second. 0 when max <= 0. The
// delays need to differ between hosts, not to be secret: math/rand/v2
// (seeded per process by the runtime) is enough.
func Splay(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	return rand.N(max)
}

func dests(peers []policy.Peer) []string {
	out := make([]string, len(peers))
	for i, p := range peers {
		out[i] = p.Dest
	}
	return out
}
