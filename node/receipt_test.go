package node_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/remaphore/remaphore/config"
	"github.com/remaphore/remaphore/internal/natstest"
	"github.com/remaphore/remaphore/node"
	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/sign"
	"github.com/remaphore/remaphore/transport"
)

// syncBuffer is a log sink the receiver may write from any goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// acceptOne starts a receiver for recv on conn, sends one message from
// sender, and returns the receiver and what it accepted.
func acceptOne(t *testing.T, ctx context.Context, conn *transport.Conn, recv, sender *config.Config, log *slog.Logger) (*node.Receiver, policy.Verdict) {
	t.Helper()
	return acceptOneAs(t, ctx, conn, recv, sender, log, policy.Rules{})
}

// acceptOneAs is acceptOne with the receiver's own filters (-D, -d, ...).
func acceptOneAs(t *testing.T, ctx context.Context, conn *transport.Conn, recv, sender *config.Config, log *slog.Logger, filters policy.Rules) (*node.Receiver, policy.Verdict) {
	t.Helper()
	r, err := node.StartReceiver(ctx, node.ReceiverOptions{Config: recv, Conn: conn, Logger: log, Filters: filters})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	env, err := node.Seal(sender, node.Message{Dest: "**", Verb: "deploy", UUID: "u1"}, false)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := node.Dial(ctx, sender, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if _, err := node.Send(ctx, sc, sender, env); err != nil {
		t.Fatal(err)
	}
	v, _, err := r.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return r, v
}

// receiptPeers are a sender a and a receiver b with receipts: true (b's
// key is bKey), on a fresh server, and a context that bounds the test.
func receiptPeers(t *testing.T) (a, b *config.Config, bKey sign.PrivateKey, ctx context.Context) {
	t.Helper()
	nats := natstest.Start(t)
	aKey := newKey(t)
	bKey = newKey(t)
	a = nodeConfig(t, nats, "com.t.a", aKey, "com.t.b", bKey.Public())
	b = nodeConfig(t, nats, "com.t.b", bKey, "com.t.a", aKey.Public())
	b.Receipts = true
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return a, b, bKey, ctx
}

// A receiver with receipts: true publishes, on <root>.receipt.<id>, a
// receipt signed by its identity: the message's id, its destination, the
// script's exit code, the accepted and finished times.
func TestReceiptPublished(t *testing.T) {
	a, b, bKey, ctx := receiptPeers(t)
	r, v := acceptOne(t, ctx, nil, b, a, nil)
	if !r.ReceiptsOn() {
		t.Fatal("receipts: true with an identity, but ReceiptsOn is false")
	}
	accepted := time.Now()
	r.Receipt(ctx, v, accepted, true, 7)
	e, d := storedReceipt(t, ctx, r, b, v)
	msgID, _ := v.Env.IDBytes()
	if e.Kind != sign.KindReceipt || e.Sender != bKey.Public() || e.RequestID != msgID || e.ResponderDest != "com.t.b" ||
		!e.Script || e.ExitCode != 7 || !e.Accepted.Equal(accepted) || e.Finished.Before(accepted) ||
		e.Dest != "com.t.a" || e.UUID != "u1" || e.Verb != "deploy" || d.HeaderID != e.ID {
		t.Fatalf("receipt %+v (header id %s)", e.Message, d.HeaderID)
	}
}

// storedReceipt reads back the receipt r published of v.
func storedReceipt(t *testing.T, ctx context.Context, r *node.Receiver, cfg *config.Config, v policy.Verdict) (*sign.Envelope, transport.Delivery) {
	t.Helper()
	sub, err := r.Conn().Subscribe(ctx, transport.SubscribeOptions{Stream: node.StreamSpec(cfg),
		Subject: transport.ReceiptSubject(cfg.Subject, v.Env.ID), Since: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var d transport.Delivery
	select {
	case d = <-sub.C:
	case <-ctx.Done():
		t.Fatal("no receipt stored")
	}
	e, err := sign.Open(d.Body)
	if err != nil {
		t.Fatal(err)
	}
	return e, d
}

// A receiver run as another name (-D com.t.c) still signs its receipts
// as its configured destination: the name its key has in every peer's
// [ Peers ], the one the auditor checks a receipt against. A receipt
// naming com.t.c would claim that c did what b did.
func TestReceiptNamesConfiguredDestination(t *testing.T) {
	a, b, _, ctx := receiptPeers(t)
	r, v := acceptOneAs(t, ctx, nil, b, a, nil, policy.Rules{Destination: "com.t.c"})
	if r.Destination() != "com.t.c" {
		t.Fatalf("receiver answers as %q, want -D's com.t.c", r.Destination())
	}
	r.Receipt(ctx, v, time.Now(), true, 0)
	if e, _ := storedReceipt(t, ctx, r, b, v); e.ResponderDest != "com.t.b" {
		t.Fatalf("receipt names %q, want the configured destination com.t.b", e.ResponderDest)
	}
}

// A receipt that cannot be published (the connection is gone) is logged
// at warn and dropped: Receipt returns, with nothing to change the
// receiver's exit code.
func TestReceiptPublishFailureIsLogged(t *testing.T) {
	a, b, _, ctx := receiptPeers(t)
	conn, err := node.Dial(ctx, b, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	r, v := acceptOne(t, ctx, conn, b, a, slog.New(slog.NewTextHandler(&logs, nil)))
	conn.Close()
	done := make(chan struct{})
	go func() { r.Receipt(ctx, v, time.Now(), true, 0); close(done) }()
	select {
	case <-done:
	case <-time.After(node.SendTimeout + 30*time.Second):
		t.Fatal("Receipt did not return after its publish failed")
	}
	if out := logs.String(); !strings.Contains(out, `msg="receipt not sent"`) || !strings.Contains(out, "id="+v.Env.ID) {
		t.Fatalf("log:\n%s\nwant a warning naming the message", out)
	}
}
