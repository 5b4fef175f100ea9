package audit

import (
	"testing"
	"time"

	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/sign"
)

// receiptEntry makes an accepted entry for a receipt of msg by key, from
// the receiver dest, stored at t0 + seq seconds.
func receiptEntry(t testing.TB, seq uint64, key sign.PrivateKey, msg Entry, dest string, script bool, code int32) Entry {
	t.Helper()
	at := t0.Add(time.Duration(seq) * time.Second)
	id, _ := msg.Env.IDBytes()
	m := &sign.Message{Kind: sign.KindReceipt, Root: "remaphore", Channel: "all", Dest: "com.example.sender", Verb: msg.Env.Verb,
		UUID: msg.Env.UUID, Sent: at, RequestID: id, ResponderDest: dest, Script: script, ExitCode: code,
		Accepted: at.Add(-time.Second), Finished: at}
	env, err := sign.Seal(m, key)
	if err != nil {
		t.Fatal(err)
	}
	return Entry{Seq: seq, Stored: at, Subject: "remaphore.receipt." + msg.Env.ID, HeaderID: env.ID, Body: env.Body(),
		Reason: policy.ReasonAccepted, Env: env, SenderDest: dest}
}

// Receipt records keep their own fields through the store (the encoding
// round-trips and verify finds nothing), and Receipts finds a message's
// receipts by uuid and by id (a prefix), one per receiver, a refused one
// left out.
func TestReceiptsStoredAndFound(t *testing.T) {
	s := newStore(t, Options{})
	k1, k2, k3 := testKey(t, 1), testKey(t, 2), testKey(t, 3)
	msg := msgEntry(t, 1, k1)
	r2 := receiptEntry(t, 2, k2, msg, "com.example.r2", true, 3)
	r3 := receiptEntry(t, 3, k3, msg, "com.example.r3", false, 0)
	again := receiptEntry(t, 4, k2, msg, "com.example.r2", true, 0) // a second one from r2
	bad := rejected(receiptEntry(t, 5, k3, msg, "com.example.r3-forged", true, 9), policy.ReasonBadSignature)
	other := msgEntry(t, 6, k1)
	mustAppend(t, s, msg, r2, r3, again, bad, other)
	if ps := verifyProblems(t, s); len(ps) != 0 {
		t.Fatalf("verify: %v", ps)
	}
	for _, q := range []Query{{UUID: msg.Env.UUID}, {Request: msg.Env.ID[:10]}} {
		res, err := s.Receipts(q)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Messages) != 1 || res.Messages[0].Seq != 1 || len(res.Receipts) != 2 {
			t.Fatalf("%+v: messages %d, receipts %d; want the message and 2 receipts", q, len(res.Messages), len(res.Receipts))
		}
		a, b := res.Receipts[0], res.Receipts[1]
		if a.ResponderDest != "com.example.r2" || !a.Script || a.ExitCode != 3 || a.Seq != 2 ||
			!a.FinishedAt.Equal(t0.Add(2*time.Second)) || !a.AcceptedAt.Equal(t0.Add(time.Second)) || res.MessageOf(a) != res.Messages[0] {
			t.Errorf("r2's receipt: %+v", a)
		}
		if b.ResponderDest != "com.example.r3" || b.Script || !b.IsReceipt() || b.MessageRef() != msg.Env.ID {
			t.Errorf("r3's receipt: %+v", b)
		}
	}
	// r2's key, publishing first a receipt that claims r3's name (as an
	// auditor before the wrong-responder check accepted it): it neither
	// stands for r3 nor hides r3's own receipt.
	s2 := newStore(t, Options{})
	spoof := receiptEntry(t, 2, k2, msg, "com.example.r3", false, 0)
	spoof.SenderDest = "com.example.r2"
	mustAppend(t, s2, msg, spoof, r3)
	res, err := s2.Receipts(Query{UUID: msg.Env.UUID})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Receipts) != 1 || res.Receipts[0].Seq != 3 || res.Receipts[0].Sender != k3.Public() {
		for _, r := range res.Receipts {
			t.Logf("receipt seq %d %s by %s", r.Seq, r.ResponderDest, r.SenderDest)
		}
		t.Fatalf("%d receipts; want only r3's own (seq 3)", len(res.Receipts))
	}
	if _, err := s.Receipts(Query{}); err == nil {
		t.Error("Receipts without a uuid or id: no error")
	}
}
