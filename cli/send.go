package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/remaphore/remaphore/node"
	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/sign"
)

// defaultSendTimeout bounds a send without -t: connect, and wait for the
// stream's acknowledgement.
const defaultSendTimeout = node.SendTimeout

// defaultRequestTimeout bounds -r without -t. A requester waits for every
// expected responder, and one that is down would otherwise keep it (and
// the cron job or CI step around it) waiting forever. A minute covers a
// fleet's health checks; longer scripts need an explicit -t.
var defaultRequestTimeout = time.Minute

// prepare builds and signs the message for -s and -r, turning node's
// errors into the flags' usage errors and hints.
func (r *runner) prepare(request bool) (*sign.Envelope, policy.Pattern, error) {
	verb, err := r.sendVerb()
	m := node.Message{Channel: r.o.channel, Dest: r.o.dest, Verb: verb, UUID: r.o.uuid, Payload: []byte(strings.Join(r.o.args, " "))}
	// The pattern is checked first: a bad -D is the error the user sees
	// even when -v is bad too.
	pat, perr := m.Check()
	var me *node.MessageError
	if errors.As(perr, &me) && me.Field == node.FieldDest {
		return nil, pat, usageErr("write segments like com.crypto.*.us or com.crypto.**", "-D: %v", me.Err)
	}
	if err != nil {
		return nil, pat, err
	}
	if m.From, err = r.pubkeyFlag(); err != nil {
		return nil, pat, err
	}
	if errors.As(perr, &me) {
		if me.Field == node.FieldUUID {
			return nil, pat, usageErr("", "-u is %d bytes, limit %d", me.Size, me.Limit)
		}
		return nil, pat, usageErr("remaphore is for coordination, not file transfer", "message is %d bytes, limit %d", me.Size, me.Limit)
	}
	if err := r.loadConfig(); err != nil {
		return nil, pat, err
	}
	env, err := node.Seal(r.cfg, m, request)
	if errors.Is(err, policy.ErrNoIdentity) {
		return nil, pat, usageErr(r.identityHint(m.From, verb), "%v", err)
	}
	if err != nil {
		return nil, pat, usageErr("", "%v", err)
	}
	return env, pat, nil
}

// identityHint says how to fix a failed identity choice: -p names a key
// that is not an identity, or names one that may not send the verb, or no
// identity may send it. It offers -v only when -v was not given.
func (r *runner) identityHint(explicit sign.PublicKey, verb string) string {
	if r.o.pubkeySet {
		if _, ok := r.cfg.Identity(explicit); !ok {
			return "-p takes the public key (first field) of one of the [ Identities ] in " + r.cfg.Path + "; a peer's key cannot sign"
		}
		return "add " + verb + " to that identity's [verbs] in " + r.cfg.Path + ", or leave out -p to let remaphore choose the identity"
	}
	if len(r.cfg.Identities) == 0 {
		return "add an identity (public key, private key, [verbs]) under [ Identities ] in " + r.cfg.Path + "; remaphore -C prints one with a fresh key"
	}
	if r.o.verbs != "" {
		return "add " + verb + " to an identity's [verbs] in " + r.cfg.Path
	}
	return "add " + verb + " to an identity's [verbs] in " + r.cfg.Path + ", or send another verb with -v"
}

func (r *runner) send(ctx context.Context) error {
	start := time.Now()
	env, _, err := r.prepare(false)
	if err != nil {
		return err
	}
	r.log.Debug("signed", "elapsed", time.Since(start))
	if r.o.timeout == 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, defaultSendTimeout, ranOut(fmt.Sprintf("the send's default bound of %s ran out; give -t for longer", defaultSendTimeout)))
		defer cancel()
	}
	conn, err := r.connect(ctx, false)
	if err != nil {
		return err
	}
	defer conn.Close()
	r.log.Debug("connected", "elapsed", time.Since(start), "server", conn.NATS().ConnectedUrlRedacted())
	seq, err := node.Send(ctx, conn, r.cfg, env)
	if err != nil {
		return natsErr(err)
	}
	r.log.Info("sent", "id", env.ID, "seq", seq, "verb", env.Verb, "uuid", env.UUID, "dest", env.Dest, "sender", env.Sender, "elapsed", time.Since(start))
	if r.o.json {
		return r.sentJSON(env, seq)
	}
	return nil
}

// request sends a request and prints the answers of the expected
// responders: the configured peers whose destination matches -D.
func (r *runner) request(ctx context.Context) (int, error) {
	env, pat, err := r.prepare(true)
	if err != nil {
		return 0, err
	}
	expected, self := node.Responders(r.cfg, pat)
	if len(expected) == 0 {
		if len(self) > 0 {
			return 0, usageErr("-r waits for the other [ Peers ] in "+r.cfg.Path+" whose destination matches -D", "the only peers matching %q (%s) are this node's own identities: nobody else to wait for", pat, strings.Join(self, " "))
		}
		return 0, usageErr("-r waits for the [ Peers ] in "+r.cfg.Path+" whose destination matches -D", "no configured peer matches %q: nobody to wait for", pat)
	}
	if len(self) > 0 {
		r.log.Info("not waiting for this node's own identities", "peers", strings.Join(self, " "))
	}
	if r.o.timeout == 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, defaultRequestTimeout, ranOut(fmt.Sprintf("-r's default bound of %s ran out; give -t for longer", defaultRequestTimeout)))
		defer cancel()
	}
	conn, err := r.connect(ctx, false)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	w := newRecordWriter(r.stdout, isTerminal(r.stdout))
	onAnswer := func(a node.Answer) error { return w.write(a.Responder.Dest, a.ExitCode, a.Output) }
	if r.o.json {
		onAnswer = r.answerJSON(env)
	}
	out, err := node.Request(ctx, conn, r.cfg, env, node.RequestOptions{Expected: expected, Logger: r.log, OnAnswer: onAnswer})
	if errors.Is(err, node.ErrRules) {
		return 0, usageErr("", "%v", err)
	}
	if err != nil {
		return 0, natsErr(err)
	}
	if r.o.json {
		if err := r.summaryJSON(ctx, env, out); err != nil {
			return 0, err
		}
	}
	return r.exitOf(ctx, out)
}

// exitOf says on stderr who did not answer or who failed, and returns the
// exit code of the outcome, or the signal's error when a signal ended the
// wait.
func (r *runner) exitOf(ctx context.Context, out *node.Outcome) (int, error) {
	n := len(out.Responders)
	switch {
	case !out.Complete():
		if sig := signalOf(ctx); sig != nil {
			// Main says which signal stopped the wait.
			fmt.Fprintf(r.stderr, "remaphore: no answer from %d of %d responders: %s\n", len(out.Missing), n, strings.Join(out.Missing, " "))
			return 0, sig
		}
		fmt.Fprintf(r.stderr, "remaphore: no answer from %d of %d responders (%v): %s\n", len(out.Missing), n, context.Cause(ctx), strings.Join(out.Missing, " "))
		return ExitTimeout, nil
	case len(out.Failed) > 0:
		// Every responder answered, and some failed: a
		// "remaphore -r healthcheck && deploy" must stop here.
		fmt.Fprintf(r.stderr, "remaphore: %d of %d responders answered with a non-zero exit code: %s\n", len(out.Failed), n, strings.Join(out.Failed, " "))
		return ExitScript, nil
	}
	return ExitOK, nil
}
