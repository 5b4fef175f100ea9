package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/remaphore/remaphore/node"
	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/script"
	"github.com/remaphore/remaphore/sign"
)

// newBarrier builds the barrier -n asks for: the peers that may send one
// of the -v verbs (any verb without -v), narrowed by -p and -from.
func (r *runner) newBarrier(verbs *policy.Verbs, sender sign.PublicKey) (*node.Barrier, error) {
	var from *policy.Pattern
	if r.o.from != "" {
		pat, err := policy.ParsePattern(r.o.from)
		if err != nil {
			return nil, usageErr("-from takes a destination pattern like com.crypto.eu.** or com.*.shard", "-from: %v", err)
		}
		from = &pat
	}
	candidates, self := node.BarrierCandidates(r.cfg, verbs, sender, from)
	if len(self) > 0 {
		r.log.Info("not waiting for this node's own identities", "peers", strings.Join(self, " "))
	}
	b, err := node.NewBarrier(candidates, r.o.need)
	if errors.Is(err, node.ErrBarrierSize) {
		return nil, usageErr("-n counts distinct [ Peers ] in "+r.cfg.Path+" that may send the verb (narrowed by -v, -p and -from; never this node's own identities): lower -n, or use -n all", "-n %s: %v", r.o.barrier, err)
	}
	return b, err
}

// waitBarrier counts accepted messages by distinct sender until the
// barrier completes, then splays, runs the script once and exits like -o.
func (r *runner) waitBarrier(ctx context.Context, rcv *node.Receiver, cmd script.Command, b *node.Barrier) (int, error) {
	r.log.Info("barrier", "need", b.Need(), "of", len(b.Missing()), "from", r.o.from)
	// The counted messages and when each was accepted: with receipts on,
	// each gets one once the barrier's script has run (that is when this
	// host acted on them).
	type counted struct {
		v  policy.Verdict
		at time.Time
	}
	var acted []counted
	for !b.Complete() {
		v, d, err := rcv.Next(ctx)
		if err != nil {
			return r.barrierIncomplete(ctx, b)
		}
		at := time.Now()
		env := v.Env
		if !b.Add(v) {
			why := "sender already counted"
			if !b.IsCandidate(env.Sender) {
				why = "sender not counted by this barrier (-from, -v, -p, or this node's own identity)"
			}
			r.log.Info("accepted, not counted", "reason", why, "id", env.ID, "seq", d.Seq, "peer", v.Peer.Dest)
			continue
		}
		r.log.Info("accepted", "id", env.ID, "seq", d.Seq, "sender", env.Sender, "peer", v.Peer.Dest, "verb", env.Verb, "uuid", env.UUID, "count", b.Count(), "need", b.Need())
		acted = append(acted, counted{v, at})
		if r.o.json {
			// One line per counted message, as a receiver without -n prints.
			if err := r.messageJSON(v, d, rcv.Destination(), r.o.anyDest); err != nil {
				return 0, err
			}
		}
		if env.Request {
			// One script for the whole barrier answers no single request.
			r.log.Warn("request counted, not answered: a barrier (-n) runs its script once, not per message", "id", env.ID, "peer", v.Peer.Dest)
		}
	}
	r.log.Info("barrier complete", "count", b.Count(), "senders", strings.Join(b.Senders(), ","))
	if ok, err := r.splayWait(ctx); !ok {
		if err != nil {
			return 0, err
		}
		return ExitTimeout, nil
	}
	code := rcv.HandleBarrier(ctx, cmd, b)
	for _, c := range acted {
		rcv.Receipt(ctx, c.v, c.at, len(cmd.Argv) > 0, code)
	}
	if code != 0 {
		fmt.Fprintf(r.stderr, "remaphore: script %s exited %d\n", cmd.Argv[0], code)
		return ExitScript, nil
	}
	return ExitOK, nil
}

// barrierIncomplete says on stderr how many senders arrived (and, for -n
// all, who is missing) when ctx ended the wait: exit 1 for -t, the
// signal's error otherwise (Main says which signal).
func (r *runner) barrierIncomplete(ctx context.Context, b *node.Barrier) (int, error) {
	line := fmt.Sprintf("remaphore: barrier incomplete: %d of %d senders arrived", b.Count(), b.Need())
	sig := signalOf(ctx)
	if sig == nil {
		line = fmt.Sprintf("remaphore: barrier incomplete (%v): %d of %d senders arrived", context.Cause(ctx), b.Count(), b.Need())
	}
	if b.Count() > 0 {
		line += ": " + strings.Join(b.Senders(), " ")
	}
	if r.o.need == node.BarrierAll {
		line += "; missing: " + strings.Join(b.Missing(), " ")
	}
	fmt.Fprintln(r.stderr, line)
	if sig != nil {
		return 0, sig
	}
	return ExitTimeout, nil
}

// splayWait waits the random -splay delay, if any, and reports whether it
// ran to its end. -t bounds the whole run, splay included: when it runs
// out first, splayWait says so on stderr and returns false and no error;
// a signal returns its error.
func (r *runner) splayWait(ctx context.Context) (bool, error) {
	if r.o.splay <= 0 {
		return true, nil
	}
	d := node.Splay(r.o.splay)
	r.log.Info("splay", "delay", d, "window", r.o.splay)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true, nil
	case <-ctx.Done():
		if sig := signalOf(ctx); sig != nil {
			return false, sig
		}
		fmt.Fprintf(r.stderr, "remaphore: %v during the splay of %s, after the message was accepted: give -t room for -splay\n", context.Cause(ctx), d.Round(time.Millisecond))
		return false, nil
	}
}
