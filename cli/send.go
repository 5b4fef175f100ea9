package cli

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/remaphore/remaphore/node"
	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/sign"
	"github.com/remaphore/remaphore/transport"
)

// defaultSendTimeout bounds a send without -t: connect, and wait for the
// stream's acknowledgement.
const defaultSendTimeout = 10 * time.Second

// defaultRequestTimeout bounds -r without -t. A requester waits for every
// expected responder, and one that is down would otherwise keep it (and
// the cron job or CI step around it) waiting forever. A minute covers a
// fleet's health checks; longer scripts need an explicit -t.
var defaultRequestTimeout = time.Minute

// prepare builds and signs the message for -s and -r.
func (r *runner) prepare(request bool) (*sign.Envelope, policy.Pattern, error) {
	pattern := policy.AnyDestination
	if r.o.dest != "" {
		pattern = r.o.dest
	}
	pat, err := policy.ParsePattern(pattern)
	if err != nil {
		return nil, pat, usageErr("write segments like com.crypto.*.us or com.crypto.**", "-D: %v", err)
	}
	verb, err := r.sendVerb()
	if err != nil {
		return nil, pat, err
	}
	explicit, err := r.pubkeyFlag()
	if err != nil {
		return nil, pat, err
	}
	if len(r.o.uuid) > sign.MaxUUID {
		return nil, pat, usageErr("", "-u is %d bytes, limit %d", len(r.o.uuid), sign.MaxUUID)
	}
	payload := strings.Join(r.o.args, " ")
	if len(payload) > sign.MaxPayload {
		return nil, pat, usageErr("remaphore is for coordination, not file transfer", "message is %d bytes, limit %d", len(payload), sign.MaxPayload)
	}
	if err := r.loadConfig(); err != nil {
		return nil, pat, err
	}
	id, err := policy.ChooseIdentity(r.cfg.Identities, r.cfg.DefaultIdentity, explicit, verb)
	if err != nil {
		return nil, pat, usageErr(r.identityHint(explicit, verb), "%v", err)
	}
	m := &sign.Message{
		Kind:    sign.KindMsg,
		Root:    r.cfg.Subject,
		Channel: r.o.channel,
		Dest:    pattern,
		Verb:    verb,
		UUID:    r.o.uuid,
		Sent:    time.Now(),
		Request: request,
		Payload: []byte(payload),
	}
	env, err := sign.Seal(m, id.Key)
	if err != nil {
		return nil, pat, usageErr("", "%v", err)
	}
	return env, pat, nil
}

// identityHint says how to fix a failed identity choice: -p names a key
// that is not an identity, or names one that may not send the verb, or no
// identity may send it. It offers -v only when -v was not given.
func (r *runner) identityHint(explicit sign.PublicKey, verb string) string {
	if !explicit.IsZero() {
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
	seq, err := conn.Publish(ctx, r.streamSpec(), transport.MsgSubject(r.cfg.Subject, r.o.channel), env.Body(), env.ID)
	if err != nil {
		return natsErr(err)
	}
	r.log.Info("sent", "id", env.ID, "seq", seq, "verb", env.Verb, "uuid", env.UUID, "dest", env.Dest, "sender", env.Sender, "elapsed", time.Since(start))
	return nil
}

// request sends a request and prints the answers of the expected
// responders: the configured peers whose destination matches -D.
func (r *runner) request(ctx context.Context) (int, error) {
	env, pat, err := r.prepare(true)
	if err != nil {
		return 0, err
	}
	// A node never answers its own request (a receiver on this host is
	// another process, but the requester cannot tell), so a peer whose
	// key is one of this node's identities is never waited for.
	own := make(map[sign.PublicKey]bool, len(r.cfg.Identities))
	for _, id := range r.cfg.Identities {
		own[id.Key.Public()] = true
	}
	var expected []policy.Peer
	var self []string
	for _, p := range r.cfg.Peers {
		switch {
		case !pat.Match(p.Dest):
		case own[p.Key]:
			self = append(self, p.Dest)
		default:
			expected = append(expected, p)
		}
	}
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
	reqID, _ := sign.ParseID(env.ID)
	checker, err := policy.NewChecker(policy.Rules{
		Root: r.cfg.Subject, Channel: r.o.channel, Kind: sign.KindReply,
		Peers: expected, AllowSkew: r.cfg.AllowSkew, RequestID: reqID,
	})
	if err != nil {
		return 0, usageErr("", "%v", err)
	}
	conn, err := r.connect(ctx, false)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	spec := r.streamSpec()
	// Listen for replies before the request exists, so none can be missed.
	sub, err := conn.Subscribe(ctx, transport.SubscribeOptions{Stream: spec, Subject: transport.ReplySubject(r.cfg.Subject, env.ID)})
	if err != nil {
		if ctx.Err() != nil {
			return 0, natsErr(fmt.Errorf("%w: timed out before the reply listener was ready", err))
		}
		return 0, natsErr(err)
	}
	defer sub.Close()
	if _, err := conn.Publish(ctx, spec, transport.MsgSubject(r.cfg.Subject, r.o.channel), env.Body(), env.ID); err != nil {
		return 0, natsErr(err)
	}
	r.log.Info("request sent", "id", env.ID, "verb", env.Verb, "dest", env.Dest, "expected", len(expected))

	w := newRecordWriter(r.stdout, isTerminal(r.stdout))
	// Ignored replies are the work of whoever may publish: log a few of
	// each reason, then count.
	ignoredLog := node.NewRefusalLog(r.log, "ignored reply", 0, 0)
	defer ignoredLog.Flush()
	answered := make(map[sign.PublicKey]bool, len(expected))
	var failed []string
	for len(answered) < len(expected) {
		select {
		case <-ctx.Done():
			return r.missing(ctx, expected, answered)
		case d := <-sub.C:
			v := checker.Check(policy.Input{Body: d.Body, HeaderID: d.HeaderID, Stored: d.Stored})
			if !v.Accepted() {
				ignoredLog.Log(slog.LevelWarn, v.Reason.String(), "detail", v.Detail, "seq", d.Seq)
				continue
			}
			if answered[v.Env.Sender] {
				ignoredLog.Log(slog.LevelWarn, "second-reply", "responder", v.Peer.Dest, "seq", d.Seq)
				continue
			}
			answered[v.Env.Sender] = true
			if v.Env.ExitCode != 0 {
				failed = append(failed, v.Peer.Dest)
			}
			if err := w.write(v.Peer.Dest, int(v.Env.ExitCode), v.Env.Payload); err != nil {
				return 0, err
			}
		}
	}
	if len(failed) > 0 {
		// Every responder answered, and some failed: a
		// "remaphore -r healthcheck && deploy" must stop here.
		sort.Strings(failed)
		fmt.Fprintf(r.stderr, "remaphore: %d of %d responders answered with a non-zero exit code: %s\n", len(failed), len(expected), strings.Join(failed, " "))
		return ExitScript, nil
	}
	return ExitOK, nil
}

// missing names the responders that did not answer on stderr, and returns
// the timeout code, or the signal's error when a signal ended the wait.
func (r *runner) missing(ctx context.Context, expected []policy.Peer, answered map[sign.PublicKey]bool) (int, error) {
	var names []string
	for _, p := range expected {
		if !answered[p.Key] {
			names = append(names, p.Dest)
		}
	}
	sort.Strings(names)
	if sig := signalOf(ctx); sig != nil {
		// Main says which signal stopped the wait.
		fmt.Fprintf(r.stderr, "remaphore: no answer from %d of %d responders: %s\n", len(names), len(expected), strings.Join(names, " "))
		return 0, sig
	}
	fmt.Fprintf(r.stderr, "remaphore: no answer from %d of %d responders (%v): %s\n", len(names), len(expected), context.Cause(ctx), strings.Join(names, " "))
	return ExitTimeout, nil
}
