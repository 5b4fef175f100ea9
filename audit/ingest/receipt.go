package ingest

import (
	"encoding/hex"
	"fmt"

	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/sign"
)

// checkReceipt decides on a body the policy accepted (v) on the receipt
// subject of token (<root>.receipt.<message id>): it must be a receipt, of
// that message, naming as its receiver a valid destination name that is
// its signer's own [ Peers ] destination: a receipt only proves what its
// key's holder did, so a receiver run with -D, or one forging receipts,
// cannot claim (or, stored first, hide) another host's. Its sender (the receiver) was checked like any other: a
// key that is not a peer is unknown-sender, a bad signature bad-signature,
// freshness and replay as for messages. A receipt of a message this
// auditor never recorded is still accepted and stored: the message may be
// older than the stream, or evicted; `remaphore-audit receipts` shows such
// receipts without their message.
func checkReceipt(v policy.Verdict, subject, token string) (policy.Reason, string) {
	env := v.Env
	switch {
	case env.Kind != sign.KindReceipt:
		return policy.ReasonWrongKind, fmt.Sprintf("a %s on receipt subject %s", env.Kind, subject)
	case hex.EncodeToString(env.RequestID[:]) != token:
		return policy.ReasonWrongRequest, fmt.Sprintf("a receipt of message %x… stored on the receipt subject of %.16s…", env.RequestID[:8], token)
	case policy.ValidateName(env.ResponderDest) != nil:
		return policy.ReasonWrongResponder, fmt.Sprintf("the receipt's receiver: %v", policy.ValidateName(env.ResponderDest))
	case env.ResponderDest != v.Peer.Dest:
		return policy.ReasonWrongResponder, fmt.Sprintf("the receipt names %s, but its key is %s's in [ Peers ]", env.ResponderDest, v.Peer.Dest)
	}
	return policy.ReasonAccepted, ""
}
