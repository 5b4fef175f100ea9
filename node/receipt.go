package node

import (
	"context"
	"time"

	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/sign"
	"github.com/remaphore/remaphore/transport"
)

// receiptKey is the key a receiver with receipts on signs them with (the
// one replies use, ReplyIdentity); zero when receipts are off or the
// config has no identity, which StartReceiver logs once.
func (r *Receiver) initReceipts() {
	if !r.cfg.Receipts {
		return
	}
	id, ok := ReplyIdentity(r.cfg)
	if !ok {
		r.log.Warn("receipts are off: the config sets receipts: true but has no [ Identities ] to sign them with; add one (remaphore -C prints a key pair)", "config", r.cfg.Path)
		return
	}
	r.receiptKey = id.Key
}

// ReceiptsOn reports whether this receiver publishes receipts.
func (r *Receiver) ReceiptsOn() bool { return !r.receiptKey.IsZero() }

// Receipt publishes, when receipts are on, the signed receipt of the
// accepted message v: this node's configured destination (not -D's name:
// the auditor accepts a receipt only under the name its signing key has in
// [ Peers ], so that no receiver can speak for another host), whether a script ran and
// its exit code, when the message was accepted and now (finished). A
// receipt that cannot be signed or stored in SendTimeout is logged at warn
// and dropped: it reports what the receiver did, and must never change
// what it does or its exit code, so Receipt returns nothing.
func (r *Receiver) Receipt(ctx context.Context, v policy.Verdict, accepted time.Time, ranScript bool, exitCode int) {
	if r.receiptKey.IsZero() || v.Env == nil {
		return
	}
	env := v.Env
	msgID, ok := env.IDBytes()
	if !ok {
		return
	}
	now := time.Now()
	m := &sign.Message{
		Kind: sign.KindReceipt, Root: env.Root, Channel: env.Channel,
		Dest: v.Peer.Dest, Verb: env.Verb, UUID: env.UUID, Sent: now,
		RequestID: msgID, ResponderDest: r.cfg.Destination, Accepted: accepted, Finished: now,
	}
	if ranScript {
		m.Script, m.ExitCode = true, int32(exitCode)
	}
	rec, err := sign.Seal(m, r.receiptKey)
	if err != nil {
		r.log.Warn("receipt not signed", "id", env.ID, "err", err)
		return
	}
	// The receiver may be on its way out (-o, -t): the receipt still gets
	// its SendTimeout.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), SendTimeout)
	defer cancel()
	if _, err := r.conn.Publish(pctx, StreamSpec(r.cfg), transport.ReceiptSubject(env.Root, env.ID), rec.Body(), rec.ID); err != nil {
		r.log.Warn("receipt not sent", "id", env.ID, "err", err)
		return
	}
	r.log.Debug("receipt sent", "id", env.ID, "receipt", rec.ID, "script", ranScript, "exit_code", exitCode)
}
