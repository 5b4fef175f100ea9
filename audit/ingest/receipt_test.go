package ingest

import (
	"testing"
	"time"

	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/sign"
)

// The auditor's checks of receipts: a receipt from a peer on its message's
// receipt subject is accepted (also for a message the auditor never saw);
// one from a key that is not a peer is unknown-sender, a forged one
// bad-signature, one on another message's receipt subject wrong-request,
// a message on a receipt subject and a receipt on a message or reply
// subject wrong-kind, and the same receipt again (another subject copy
// past the stream's duplicate window) replay. A receipt naming a receiver
// other than its signer's [ Peers ] destination (another peer, a host not
// in [ Peers ], a name with control characters) is wrong-responder.
func TestReceiptChecks(t *testing.T) {
	peerKey, _ := sign.GenerateKey(nil)
	stranger, _ := sign.GenerateKey(nil)
	otherPeer, _ := sign.GenerateKey(nil)
	peers := []policy.Peer{{Dest: "com.t.r1", Key: peerKey.Public(), Verbs: policy.AllVerbs()},
		{Dest: "com.t.r2", Key: otherPeer.Public(), Verbs: policy.AllVerbs()}}
	p, err := newCheckerPool("remaphore", peers, 5*time.Second, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	now := time.Now()
	hexMsg := sign.MessageID([]byte("x")) // a message this auditor never saw
	msgID, _ := sign.ParseID(hexMsg)
	receiptAs := func(key sign.PrivateKey, dest string) *sign.Envelope {
		e, err := sign.Seal(&sign.Message{Kind: sign.KindReceipt, Root: "remaphore", Channel: "all", Verb: "deploy", Sent: now,
			RequestID: msgID, ResponderDest: dest, Accepted: now, Finished: now}, key)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	receipt := func(key sign.PrivateKey) *sign.Envelope { return receiptAs(key, "com.t.r1") }
	good, alien := receipt(peerKey), receipt(stranger)
	forged := good.Body()
	forged[len(forged)-3] ^= 1
	msg, err := sign.Seal(&sign.Message{Kind: sign.KindMsg, Root: "remaphore", Channel: "all", Dest: "**", Verb: "deploy", Sent: now}, peerKey)
	if err != nil {
		t.Fatal(err)
	}
	other := sign.MessageID([]byte("y"))
	for _, tc := range []struct {
		name, subject string
		body          []byte
		id            string
		want          policy.Reason
	}{
		{"peer's receipt", "remaphore.receipt." + hexMsg, good.Body(), good.ID, policy.ReasonAccepted},
		{"same receipt again", "remaphore.receipt." + hexMsg, good.Body(), good.ID, policy.ReasonReplay},
		{"non-peer", "remaphore.receipt." + hexMsg, alien.Body(), alien.ID, policy.ReasonUnknownSender},
		{"forged", "remaphore.receipt." + hexMsg, forged, good.ID, policy.ReasonBadSignature},
		{"another message's subject", "remaphore.receipt." + other, receipt(peerKey).Body(), "", policy.ReasonWrongRequest},
		{"message on a receipt subject", "remaphore.receipt." + hexMsg, msg.Body(), msg.ID, policy.ReasonWrongKind},
		{"receipt on a message subject", "remaphore.msg.all", receipt(peerKey).Body(), "", policy.ReasonWrongKind},
		{"claims another peer", "remaphore.receipt." + hexMsg, receiptAs(otherPeer, "com.t.r1").Body(), "", policy.ReasonWrongResponder},
		{"claims a host not in [ Peers ]", "remaphore.receipt." + hexMsg, receiptAs(peerKey, "com.evil.x").Body(), "", policy.ReasonWrongResponder},
		{"name with ESC", "remaphore.receipt." + hexMsg, receiptAs(peerKey, "com.t.r1\x1b[2J").Body(), "", policy.ReasonWrongResponder},
		{"name with CR LF", "remaphore.receipt." + hexMsg, receiptAs(peerKey, "com.t.r1\r\ncom.t.r2").Body(), "", policy.ReasonWrongResponder},
		{"own name, other peer", "remaphore.receipt." + hexMsg, receiptAs(otherPeer, "com.t.r2").Body(), "", policy.ReasonAccepted},
		{"receipt on a reply subject", "remaphore.reply." + hexMsg, receipt(peerKey).Body(), "", policy.ReasonWrongKind},
	} {
		id := tc.id
		if id == "" {
			id = sign.MessageID(tc.body[:len(tc.body)-64])
		}
		it := &item{subject: tc.subject, in: policy.Input{Body: tc.body, HeaderID: id, Stored: now}, seq: 1}
		p.decide([]*item{it})
		if it.entry.Reason != tc.want {
			t.Errorf("%s: %s (%s), want %s", tc.name, it.entry.Reason, it.entry.Detail, tc.want)
		}
	}
}
