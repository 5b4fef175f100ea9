package node_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/remaphore/remaphore/config"
	"github.com/remaphore/remaphore/internal/natstest"
	"github.com/remaphore/remaphore/node"
	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/script"
	"github.com/remaphore/remaphore/sign"
	"github.com/remaphore/remaphore/transport"
)

// A request collects the first valid answer of each responder: a forged
// reply in a responder's name and a responder's second reply are ignored,
// a failed answer is listed in Failed, and a responder that never answers
// is listed in Missing when the context ends (with no error).
func TestRequestFirstAnswerForgeriesAndMissing(t *testing.T) {
	nats := natstest.Start(t)
	aKey, bKey, cKey, dKey, forger := newKey(t), newKey(t), newKey(t), newKey(t), newKey(t)
	a := nodeConfig(t, nats, "com.t.a", aKey, "com.t.b", bKey.Public(), "com.t.c", cKey.Public(), "com.t.d", dKey.Public())
	b := nodeConfig(t, nats, "com.t.b", bKey, "com.t.a", aKey.Public())
	c := nodeConfig(t, nats, "com.t.c", cKey, "com.t.a", aKey.Public())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	conn, err := node.Dial(ctx, a, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msg := node.Message{Dest: "com.t.*", Verb: "status", UUID: "q1"}
	pat, err := msg.Check()
	if err != nil {
		t.Fatal(err)
	}
	env, err := node.Seal(a, msg, true)
	if err != nil {
		t.Fatal(err)
	}
	expected, self := node.Responders(a, pat)
	if len(expected) != 3 || len(self) != 0 {
		t.Fatalf("responders %v, self %v: want b, c and d", expected, self)
	}

	// b's answer is preceded by a forgery in its name and followed by a
	// second reply; c answers with exit 3; d never answers.
	rb := receiver(t, ctx, b, "q1")
	rc := receiver(t, ctx, c, "q1")
	reqID, _ := sign.ParseID(env.ID)
	forged, err := sign.Seal(&sign.Message{Kind: sign.KindReply, Root: env.Root, Channel: env.Channel, Dest: "com.t.a",
		Verb: "status", UUID: "q1", Sent: time.Now(), Payload: []byte("forged"), RequestID: reqID, ResponderDest: "com.t.b"}, forger)
	if err != nil {
		t.Fatal(err)
	}
	// The forger signs as itself but claims b's key.
	body := forged.Body()
	fk, bk := forger.Public(), bKey.Public()
	j := strings.Index(string(body), string(fk[:]))
	if j < 0 {
		t.Fatal("sender key not found in the forged body")
	}
	copy(body[j:], bk[:])

	var out *node.Outcome
	var answers []node.Answer
	done := make(chan error, 1)
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	defer rcancel()
	go func() {
		var err error
		out, err = node.Request(rctx, conn, a, env, node.RequestOptions{Expected: expected,
			OnAnswer: func(ans node.Answer) error { answers = append(answers, ans); return nil }})
		done <- err
	}()
	// Once b has the request, the requester's listener exists.
	vb, _, err := rb.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Publish(ctx, node.StreamSpec(a), transport.ReplySubject(a.Subject, env.ID), body, sign.MessageID(body[:len(body)-64])); err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"first\n", "second\n"} {
		if err := rb.Reply(ctx, vb.Env, vb.Peer, script.Result{Output: []byte(text)}); err != nil {
			t.Fatal(err)
		}
	}
	vc, _, err := rc.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Reply(ctx, vc.Env, vc.Peer, script.Result{ExitCode: 3, Output: []byte("broken")}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Request: %v", err)
	}
	if len(answers) != 2 || len(out.Answers) != 2 {
		t.Fatalf("answers %+v, want b's first and c's", answers)
	}
	for _, ans := range out.Answers {
		if ans.Responder.Dest == "com.t.b" && string(ans.Output) != "first\n" {
			t.Errorf("b's answer %q, want its first reply (not the forgery, not the second)", ans.Output)
		}
		// The reply's own id and times (the -json output prints them).
		if len(ans.ID) != 64 || ans.ID == env.ID || ans.Seq == 0 || ans.Sent.Before(env.Sent) || ans.Stored.IsZero() {
			t.Errorf("%s's answer: id %q seq %d sent %v stored %v (request sent %v)", ans.Responder.Dest, ans.ID, ans.Seq, ans.Sent, ans.Stored, env.Sent)
		}
	}
	if strings.Join(out.Failed, " ") != "com.t.c" || strings.Join(out.Missing, " ") != "com.t.d" || out.Complete() || out.OK() {
		t.Errorf("failed %v, missing %v: want c failed and d missing", out.Failed, out.Missing)
	}
}

func receiver(t *testing.T, ctx context.Context, cfg *config.Config, uuid string) *node.Receiver {
	t.Helper()
	r, err := node.StartReceiver(ctx, node.ReceiverOptions{Config: cfg, Filters: policy.Rules{UUID: uuid}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// Message.Check and Seal refuse what cannot be sent, saying which field;
// Seal refuses a key that is not one of the identities.
func TestSealRefuses(t *testing.T) {
	nats := natstest.Start(t)
	aKey, bKey := newKey(t), newKey(t)
	a := nodeConfig(t, nats, "com.t.a", aKey, "com.t.b", bKey.Public())
	for _, c := range []struct {
		m     node.Message
		field string
	}{
		{node.Message{Dest: "com.**.x"}, node.FieldDest},
		{node.Message{UUID: strings.Repeat("u", sign.MaxUUID+1)}, node.FieldUUID},
		{node.Message{Payload: make([]byte, sign.MaxPayload+1)}, node.FieldPayload},
	} {
		_, err := node.Seal(a, c.m, false)
		var me *node.MessageError
		if !errors.As(err, &me) || me.Field != c.field {
			t.Errorf("Seal(%+v): %v, want a MessageError about %s", c.m.Dest, err, c.field)
		}
	}
	if _, err := node.Seal(a, node.Message{From: bKey.Public()}, false); !errors.Is(err, policy.ErrNoIdentity) {
		t.Errorf("Seal from a peer's key: %v, want ErrNoIdentity", err)
	}
	env, err := node.Seal(a, node.Message{}, false)
	if err != nil || env.Verb != policy.DefaultVerb || env.Dest != policy.AnyDestination || env.Channel != transport.DefaultChannel || env.Sender != aKey.Public() {
		t.Errorf("Seal of the zero Message: %+v, %v; want ping to ** on the default channel, signed by a's identity", env, err)
	}
}

// The script's environment names the message; REMAPHORE_DESTMATCH (and the
// specification's misspelt twin) only when the receiver matched its
// destination.
func TestScriptCall(t *testing.T) {
	k := newKey(t)
	env, err := sign.Seal(&sign.Message{Kind: sign.KindMsg, Root: "r", Channel: "all", Dest: "**", Verb: "deploy", UUID: "u1",
		Sent: time.Unix(1700000000, 0), Request: true, Payload: []byte("v42")}, k)
	if err != nil {
		t.Fatal(err)
	}
	call := node.ScriptCall(env, "com.t.a", false)
	want := "REMAPHORE_SENDER=" + k.Public().String() + " REMAPHORE_VERB=deploy REMAPHORE_TIME=1700000000 REMAPHORE_UUID=u1 REMAPHORE_MSG=v42 REMAPHORE_DESTMATCH=com.t.a REMOPHORE_DESTMATCH=com.t.a"
	if got := strings.Join(call.Env, " "); got != want || !call.Capture || string(call.Payload) != "v42" {
		t.Errorf("env %q capture %v payload %q\nwant %q", got, call.Capture, call.Payload, want)
	}
	if got := node.ScriptCall(env, "com.t.a", true).Env; strings.Contains(strings.Join(got, " "), "DESTMATCH") {
		t.Errorf("with -d the env names a destination match: %q", got)
	}
}
