package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/sign"
	"github.com/remaphore/remaphore/transport"
)

// defaultSendTimeout bounds a send without -t: connect, and wait for the
// stream's acknowledgement.
const defaultSendTimeout = 10 * time.Second

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
		return nil, pat, usageErr("add the verb to an identity's [verbs] in "+r.cfg.Path+", or send another verb with -v", "%v", err)
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

func (r *runner) send(ctx context.Context) error {
	start := time.Now()
	env, _, err := r.prepare(false)
	if err != nil {
		return err
	}
	r.log.Debug("signed", "elapsed", time.Since(start))
	if r.o.timeout == 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultSendTimeout)
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
	var expected []policy.Peer
	for _, p := range r.cfg.Peers {
		if pat.Match(p.Dest) {
			expected = append(expected, p)
		}
	}
	if len(expected) == 0 {
		return 0, usageErr("-r waits for the [ Peers ] in "+r.cfg.Path+" whose destination matches -D", "no configured peer matches %q: nobody to wait for", pat)
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

	w := newRecordWriter(r.stdout)
	answered := make(map[sign.PublicKey]bool, len(expected))
	for len(answered) < len(expected) {
		select {
		case <-ctx.Done():
			return r.missing(expected, answered), nil
		case d := <-sub.C:
			v := checker.Check(policy.Input{Body: d.Body, HeaderID: d.HeaderID, Stored: d.Stored})
			if !v.Accepted() {
				r.log.Warn("ignored reply", "reason", v.Reason.String(), "detail", v.Detail, "seq", d.Seq)
				continue
			}
			if answered[v.Env.Sender] {
				r.log.Warn("ignored reply", "reason", "second-reply", "responder", v.Peer.Dest, "seq", d.Seq)
				continue
			}
			answered[v.Env.Sender] = true
			if err := w.write(v.Peer.Dest, int(v.Env.ExitCode), v.Env.Payload); err != nil {
				return 0, err
			}
		}
	}
	return ExitOK, nil
}

// missing names the responders that did not answer on stderr, and returns
// the timeout code.
func (r *runner) missing(expected []policy.Peer, answered map[sign.PublicKey]bool) int {
	var names []string
	for _, p := range expected {
		if !answered[p.Key] {
			names = append(names, p.Dest)
		}
	}
	sort.Strings(names)
	fmt.Fprintf(r.stderr, "remaphore: no answer from %d of %d responders: %s\n", len(names), len(expected), strings.Join(names, " "))
	return ExitTimeout
}

// recordWriter prints reply records: "destination,exit-code,output", framed
// by "--> SEP" and "--< SEP" when the output holds a newline. One SEP per
// request; each record is written with one Write, so records never
// interleave.
type recordWriter struct {
	w   io.Writer
	sep string
}

func newRecordWriter(w io.Writer) *recordWriter {
	b := make([]byte, 8)
	rand.Read(b)
	return &recordWriter{w: w, sep: hex.EncodeToString(b)}
}

func (rw *recordWriter) write(dest string, code int, output []byte) error {
	out := strings.TrimSuffix(string(output), "\n")
	rec := dest + "," + strconv.Itoa(code) + "," + out + "\n"
	if strings.Contains(out, "\n") {
		rec = "--> " + rw.sep + "\n" + rec + "--< " + rw.sep + "\n"
	}
	_, err := io.WriteString(rw.w, rec)
	return err
}
