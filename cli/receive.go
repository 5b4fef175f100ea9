package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/remaphore/remaphore/node"
	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/script"
	"github.com/remaphore/remaphore/sign"
	"github.com/remaphore/remaphore/transport"
)

// receive waits for matching messages, runs the script for each, answers
// requests, and returns the exit code.
func (r *runner) receive(ctx context.Context) (int, error) {
	o := r.o
	once := o.once || o.uuid != "" // -u implies -o
	verbs, err := r.verbFilter()
	if err != nil {
		return 0, err
	}
	sender, err := r.pubkeyFlag()
	if err != nil {
		return 0, err
	}
	cmd := script.Command{Argv: o.args, Stdout: r.stdout, Stderr: r.stderr}
	// Before anything is consumed: a script that cannot run would use up
	// the message it was waiting for.
	if err := cmd.Check(); err != nil {
		return 0, usageErr(script.Hint(err), "%v", err)
	}
	if err := r.loadConfig(); err != nil {
		return 0, err
	}
	dest := r.cfg.Destination
	if o.dest != "" {
		if err := policy.ValidateName(o.dest); err != nil {
			return 0, usageErr("a receiver's -D is a plain destination name like com.crypto.us.left", "-D: %v", err)
		}
		dest = o.dest
	}
	if !sender.IsZero() {
		if _, ok := r.cfg.Peer(sender); !ok {
			return 0, usageErr("-p must name one of the [ Peers ] in "+r.cfg.Path, "-p %s is not a configured peer: no message from it would be accepted", sender)
		}
	}
	ro := node.ReceiverOptions{
		Config: r.cfg, Channel: o.channel, Since: o.since, Logger: r.log,
		Filters: policy.Rules{Destination: dest, AnyDestination: o.anyDest, UUID: o.uuid, Verbs: verbs, Sender: sender},
	}
	if len(r.cfg.Peers) == 0 {
		r.log.Warn("the config has no [ Peers ]: no message can be accepted", "config", r.cfg.Path)
	}
	rcv, err := node.StartReceiver(ctx, ro)
	if errors.Is(err, node.ErrRules) {
		return 0, usageErr("", "%v", err)
	}
	if err != nil {
		// The error says why it gave up (the context's cause: -t ran
		// out, or a signal) once; Main turns a signal into its code.
		return 0, r.dialErr(err)
	}
	defer rcv.Close()
	conn := rcv.Conn()
	r.log.Info("ready", "channel", o.channel, "destination", dest, "any_destination", o.anyDest, "uuid", o.uuid, "verbs", o.verbs)

	received := 0
	for {
		v, d, err := rcv.Next(ctx)
		if err != nil {
			if sig := signalOf(ctx); sig != nil {
				return 0, sig
			}
			if received > 0 {
				return ExitOK, nil
			}
			r.log.Info("timeout, nothing received")
			return ExitTimeout, nil
		}
		received++
		env := v.Env
		r.log.Info("accepted", "id", env.ID, "seq", d.Seq, "sender", env.Sender, "peer", v.Peer.Dest, "verb", env.Verb, "uuid", env.UUID, "request", env.Request)
		code := 0
		if len(cmd.Argv) > 0 || env.Request {
			code, err = r.handle(ctx, conn, cmd, env, v.Peer, dest)
			if err != nil {
				return 0, err
			}
		}
		if once {
			if code != 0 {
				fmt.Fprintf(r.stderr, "remaphore: script %s exited %d\n", cmd.Argv[0], code)
				return ExitScript, nil
			}
			return ExitOK, nil
		}
	}
}

// handle runs the script for an accepted message and, for a request, sends
// the signed reply. It returns the script's exit code (-1 when it could
// not run).
func (r *runner) handle(ctx context.Context, conn *transport.Conn, cmd script.Command, env *sign.Envelope, from policy.Peer, dest string) (int, error) {
	call := script.Call{Verb: env.Verb, Payload: env.Payload, Capture: env.Request, Env: []string{
		"REMAPHORE_SENDER=" + env.Sender.String(),
		"REMAPHORE_VERB=" + env.Verb,
		"REMAPHORE_TIME=" + strconv.FormatInt(env.Sent.Unix(), 10),
		"REMAPHORE_UUID=" + env.UUID,
		"REMAPHORE_MSG=" + string(env.Payload),
	}}
	if !r.o.anyDest {
		call.Env = append(call.Env, "REMAPHORE_DESTMATCH="+dest, "REMOPHORE_DESTMATCH="+dest)
	}
	res := script.Result{}
	if len(cmd.Argv) > 0 {
		var err error
		res, err = cmd.Run(ctx, call)
		if err != nil {
			r.log.Warn("script failed", "err", err)
			if res.ExitCode == 0 {
				res.ExitCode = -1
			}
		}
	}
	if env.Request {
		if err := r.reply(ctx, conn, env, from, dest, res); err != nil {
			return 0, err
		}
	}
	return res.ExitCode, nil
}

// reply signs the script's result with this node's identity and stores it
// on the request's reply subject.
func (r *runner) reply(ctx context.Context, conn *transport.Conn, req *sign.Envelope, from policy.Peer, dest string, res script.Result) error {
	id, ok := r.replyIdentity()
	if !ok {
		r.log.Warn("cannot answer a request: the config has no [ Identities ] to sign with", "request", req.ID)
		return nil
	}
	reqID, _ := sign.ParseID(req.ID)
	m := &sign.Message{
		Kind: sign.KindReply, Root: req.Root, Channel: req.Channel,
		Dest: from.Dest, Verb: req.Verb, UUID: req.UUID, Sent: time.Now(),
		Payload: res.Output, RequestID: reqID, ResponderDest: dest, ExitCode: int32(res.ExitCode),
	}
	env, err := sign.Seal(m, id.Key)
	if err != nil {
		return fmt.Errorf("sign reply: %w", err)
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), defaultSendTimeout)
	defer cancel()
	if _, err := conn.Publish(pctx, r.streamSpec(), transport.ReplySubject(req.Root, req.ID), env.Body(), env.ID); err != nil {
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

// replyIdentity is the key replies are signed with: default_identity, or
// the first identity.
func (r *runner) replyIdentity() (policy.Identity, bool) {
	if !r.cfg.DefaultIdentity.IsZero() {
		if id, ok := r.cfg.Identity(r.cfg.DefaultIdentity); ok {
			return id, true
		}
	}
	if len(r.cfg.Identities) > 0 {
		return r.cfg.Identities[0], true
	}
	return policy.Identity{}, false
}
