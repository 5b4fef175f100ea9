package node

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/remaphore/remaphore/config"
	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/script"
	"github.com/remaphore/remaphore/sign"
	"github.com/remaphore/remaphore/transport"
)

// ScriptCall is how a script runs for an accepted message env: its
// payload on stdin and the REMAPHORE_* environment. dest is the
// receiver's destination, given to the script as REMAPHORE_DESTMATCH
// unless the receiver matched any destination (-d). A request's output is
// captured for the reply.
func ScriptCall(env *sign.Envelope, dest string, anyDest bool) script.Call {
	call := script.Call{Verb: env.Verb, Payload: env.Payload, Capture: env.Request, Env: []string{
		"REMAPHORE_SENDER=" + env.Sender.String(),
		"REMAPHORE_VERB=" + env.Verb,
		"REMAPHORE_TIME=" + strconv.FormatInt(env.Sent.Unix(), 10),
		"REMAPHORE_UUID=" + env.UUID,
		"REMAPHORE_MSG=" + string(env.Payload),
	}}
	if !anyDest {
		// The misspelt name is the user's specification's; both are set.
		call.Env = append(call.Env, "REMAPHORE_DESTMATCH="+dest, "REMOPHORE_DESTMATCH="+dest)
	}
	return call
}

// Handle runs cmd (when it has an Argv) for the accepted message v and,
// for a request, signs and stores the reply with the script's result. It
// returns the script's exit code (-1 when it could not run); the error is
// only for a reply that could not be signed.
func (r *Receiver) Handle(ctx context.Context, cmd script.Command, v policy.Verdict) (int, error) {
	env := v.Env
	res := script.Result{}
	if len(cmd.Argv) > 0 {
		var err error
		res, err = cmd.Run(ctx, ScriptCall(env, r.dest, r.anyDest))
		if err != nil {
			r.log.Warn("script failed", "err", err)
			if res.ExitCode == 0 {
				res.ExitCode = -1
			}
		}
	}
	if env.Request {
		if err := r.Reply(ctx, env, v.Peer, res); err != nil {
			return 0, err
		}
	}
	return res.ExitCode, nil
}

// Reply signs res as this node's answer to the request req from the peer
// from, with ReplyIdentity, and stores it on the request's reply subject.
// A reply that cannot be stored in SendTimeout (even after ctx ended: a
// requester is waiting for it) is logged, not returned: the requester
// names the missing responder.
func (r *Receiver) Reply(ctx context.Context, req *sign.Envelope, from policy.Peer, res script.Result) error {
	id, ok := ReplyIdentity(r.cfg)
	if !ok {
		r.log.Warn("cannot answer a request: the config has no [ Identities ] to sign with", "request", req.ID)
		return nil
	}
	reqID, _ := sign.ParseID(req.ID)
	m := &sign.Message{
		Kind: sign.KindReply, Root: req.Root, Channel: req.Channel,
		Dest: from.Dest, Verb: req.Verb, UUID: req.UUID, Sent: time.Now(),
		Payload: res.Output, RequestID: reqID, ResponderDest: r.dest, ExitCode: int32(res.ExitCode),
	}
	env, err := sign.Seal(m, id.Key)
	if err != nil {
		return fmt.Errorf("sign reply: %w", err)
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), SendTimeout)
	defer cancel()
	if _, err := r.conn.Publish(pctx, StreamSpec(r.cfg), transport.ReplySubject(req.Root, req.ID), env.Body(), env.ID); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			r.log.Warn("reply not stored in time", "request", req.ID, "err", err)
			return nil
		}
		r.log.Warn("reply not sent", "request", req.ID, "err", err)
		return nil
	}
	r.log.Info("replied", "request", req.ID, "exit_code", res.ExitCode, "bytes", len(res.Output), "truncated", res.Truncated)
	return nil
}

// ReplyIdentity is the key replies are signed with: default_identity, or
// the first identity.
func ReplyIdentity(cfg *config.Config) (policy.Identity, bool) {
	if !cfg.DefaultIdentity.IsZero() {
		if id, ok := cfg.Identity(cfg.DefaultIdentity); ok {
			return id, true
		}
	}
	if len(cfg.Identities) > 0 {
		return cfg.Identities[0], true
	}
	return policy.Identity{}, false
}
