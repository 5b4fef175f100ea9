package node

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/remaphore/remaphore/config"
	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/sign"
	"github.com/remaphore/remaphore/transport"
)

// Responders splits the config's peers whose destination matches pat
// into those a request waits for and the destinations of this node's own
// identities (self). A node never answers its own request (a receiver on
// this host is another process, but the requester cannot tell), so a peer
// whose key is one of the config's identities is never waited for.
func Responders(cfg *config.Config, pat policy.Pattern) (expected []policy.Peer, self []string) {
	own := make(map[sign.PublicKey]bool, len(cfg.Identities))
	for _, id := range cfg.Identities {
		own[id.Key.Public()] = true
	}
	for _, p := range cfg.Peers {
		switch {
		case !pat.Match(p.Dest):
		case own[p.Key]:
			self = append(self, p.Dest)
		default:
			expected = append(expected, p)
		}
	}
	return expected, self
}

// Answer is one responder's accepted reply.
type Answer struct {
	Responder policy.Peer
	ExitCode  int // the responder's script's exit code (-1: it could not run)
	Output    []byte
	Seq       uint64 // stream sequence of the reply
	ID        string // the reply's message id
	// Sent is when the responder signed the reply (its clock), Stored
	// when the stream stored it (the server's clock).
	Sent, Stored time.Time
}

// RequestOptions configure Request.
type RequestOptions struct {
	// Expected are the responders to wait for (see Responders).
	Expected []policy.Peer
	// OnAnswer, when set, is called with each accepted answer as it
	// arrives (the remaphore command prints it); an error from it ends
	// the request with that error.
	OnAnswer func(Answer) error
	Logger   *slog.Logger
}

// Outcome is what a request collected. A responder is a destination: a
// node listed in [ Peers ] with several keys (its several identities)
// answers once, with whichever of them it signs replies.
type Outcome struct {
	Expected []policy.Peer
	// Responders are the destinations of Expected, each once, in the
	// config's order: who is waited for.
	Responders []string
	Answers    []Answer // the first answer of each responder, in arrival order
	Missing    []string // destinations of the expected responders that did not answer, sorted
	Failed     []string // destinations of the responders that answered non-zero, sorted
}

// Complete reports whether every expected responder answered.
func (o *Outcome) Complete() bool { return len(o.Missing) == 0 }

// OK reports whether every expected responder answered with exit code 0.
func (o *Outcome) OK() bool { return o.Complete() && len(o.Failed) == 0 }

// Request stores env (a request from Seal) and collects the replies of
// o.Expected until each responder (destination) has answered once or ctx
// ends: a responder's first valid reply, signed with any of its keys,
// counts, and a reply that fails the policy checks (a
// forgery, another request's, a second one) is logged and ignored. The
// listener exists before the request is stored, so no reply is missed.
//
// The error is for what stopped the request from being asked (invalid
// rules: ErrRules; NATS) or OnAnswer's; when ctx ends first, Request
// returns the outcome with Missing filled in and a nil error.
func Request(ctx context.Context, conn *transport.Conn, cfg *config.Config, env *sign.Envelope, o RequestOptions) (*Outcome, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reqID, _ := sign.ParseID(env.ID)
	checker, err := policy.NewChecker(policy.Rules{
		Root: cfg.Subject, Channel: env.Channel, Kind: sign.KindReply,
		Peers: o.Expected, AllowSkew: cfg.AllowSkew, RequestID: reqID,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRules, err)
	}
	spec := StreamSpec(cfg)
	sub, err := conn.Subscribe(ctx, transport.SubscribeOptions{Stream: spec, Subject: transport.ReplySubject(cfg.Subject, env.ID)})
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: timed out before the reply listener was ready", err)
		}
		return nil, err
	}
	defer sub.Close()
	if _, err := Send(ctx, conn, cfg, env); err != nil {
		return nil, err
	}
	log.Info("request sent", "id", env.ID, "verb", env.Verb, "dest", env.Dest, "expected", len(o.Expected))

	// Ignored replies are the work of whoever may publish: log a few of
	// each reason, then count.
	ignoredLog := NewRefusalLog(log, "ignored reply", 0, 0)
	defer ignoredLog.Flush()
	out := &Outcome{Expected: o.Expected, Responders: destinations(o.Expected)}
	answered := make(map[string]bool, len(out.Responders))
	for len(answered) < len(out.Responders) {
		select {
		case <-ctx.Done():
			for _, d := range out.Responders {
				if !answered[d] {
					out.Missing = append(out.Missing, d)
				}
			}
			sort.Strings(out.Missing)
			sort.Strings(out.Failed)
			return out, nil
		case d := <-sub.C:
			v := checker.Check(policy.Input{Body: d.Body, HeaderID: d.HeaderID, Stored: d.Stored})
			if !v.Accepted() {
				ignoredLog.Log(slog.LevelWarn, v.Reason.String(), "detail", v.Detail, "seq", d.Seq)
				continue
			}
			if answered[v.Peer.Dest] {
				ignoredLog.Log(slog.LevelWarn, "second-reply", "responder", v.Peer.Dest, "seq", d.Seq)
				continue
			}
			answered[v.Peer.Dest] = true
			a := Answer{Responder: v.Peer, ExitCode: int(v.Env.ExitCode), Output: v.Env.Payload, Seq: d.Seq,
				ID: v.Env.ID, Sent: v.Env.Sent, Stored: d.Stored}
			out.Answers = append(out.Answers, a)
			if a.ExitCode != 0 {
				out.Failed = append(out.Failed, a.Responder.Dest)
			}
			if o.OnAnswer != nil {
				if err := o.OnAnswer(a); err != nil {
					return out, err
				}
			}
		}
	}
	sort.Strings(out.Failed)
	return out, nil
}

// destinations returns the destinations of peers, each once, in their
// order: the nodes they are (a node may be listed with several keys).
func destinations(peers []policy.Peer) []string {
	seen := make(map[string]bool, len(peers))
	var out []string
	for _, p := range peers {
		if !seen[p.Dest] {
			seen[p.Dest] = true
			out = append(out, p.Dest)
		}
	}
	return out
}
