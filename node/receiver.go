package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/remaphore/remaphore/config"
	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/sign"
	"github.com/remaphore/remaphore/transport"
)

// ReceiverOptions configure a Receiver.
type ReceiverOptions struct {
	Config  *config.Config
	Channel string // "" is transport.DefaultChannel, as for a Message
	// Filters holds the receiver's own filters: Destination (default: the
	// config's), AnyDestination, UUID, Verbs, Sender. The security rules
	// (root, channel, peers, skew) come from Config.
	Filters policy.Rules
	// Since starts that far back (late joiners); see transport.
	Since time.Duration
	// Conn, when set, is used instead of dialing (and not closed by Close).
	Conn   *transport.Conn
	Logger *slog.Logger
	// Now is the policy checker's clock (time.Now when nil); tests move
	// it to stand where waiting would take minutes.
	Now func() time.Time
}

// Receiver is one live listener.
type Receiver struct {
	conn    *transport.Conn
	ownConn bool
	sub     *transport.Subscription
	checker *policy.Checker
	log     *slog.Logger
	refused *RefusalLog
	cfg     *config.Config
	dest    string // this node's name in replies and REMAPHORE_DESTMATCH
	anyDest bool
	// receiptKey signs receipts (config receipts: true); see receipt.go.
	receiptKey sign.PrivateKey
}

// newChecker builds the policy checker a receiver with o applies.
func newChecker(o ReceiverOptions) (*policy.Checker, string, error) {
	c := o.Config
	r := o.Filters
	r.Root, r.Channel, r.Kind = c.Subject, o.Channel, sign.KindMsg
	r.Peers, r.AllowSkew = c.Peers, c.AllowSkew
	// A message delivered late (a reconnect, a slow script before it) is
	// judged by when the stream stored it; this bounds how late.
	r.MaxDelay = transport.DuplicateWindow(c.AllowSkew)
	r.Now = o.Now
	if o.Since > 0 {
		// The backlog a late joiner asked for passes that bound; see
		// policy's "Freshness and late joiners".
		now := time.Now
		if o.Now != nil {
			now = o.Now
		}
		r.Started = now()
		r.Since = r.Started.Add(-o.Since)
	}
	name := r.Destination
	if name == "" {
		name = c.Destination
	}
	if !r.AnyDestination {
		r.Destination = name
	}
	ch, err := policy.NewChecker(r)
	return ch, name, err
}

// ErrRules: the receiver's filters or the config's rules are invalid (a
// usage or configuration error, found before any connection is made).
var ErrRules = errors.New("invalid receiver rules")

// StartReceiver connects (retrying until ctx is done), creates the live
// consumer, and returns once the receiver is ready: every message stored
// from now on reaches Next.
func StartReceiver(ctx context.Context, o ReceiverOptions) (*Receiver, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.Channel == "" {
		o.Channel = transport.DefaultChannel
	}
	checker, dest, err := newChecker(o)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRules, err)
	}
	r := &Receiver{conn: o.Conn, checker: checker, log: log, refused: NewRefusalLog(log, "rejected message", 0, 0),
		cfg: o.Config, dest: dest, anyDest: o.Filters.AnyDestination}
	r.initReceipts()
	if r.conn == nil {
		if r.conn, err = Dial(ctx, o.Config, true, log); err != nil {
			return nil, err
		}
		r.ownConn = true
	}
	r.sub, err = r.conn.Subscribe(ctx, transport.SubscribeOptions{
		Stream:  StreamSpec(o.Config),
		Subject: transport.MsgSubject(o.Config.Subject, o.Channel),
		Since:   o.Since,
		Retry:   true,
		// A waiting receiver may wait for hours: while its consumer is
		// on the server it is connected to, its heartbeat is the
		// config's (30s by default), the server's idle work per
		// receiver (see config.DefaultHeartbeat); on another server of
		// a cluster, at most transport's 5s.
		Heartbeat:      min(cmp.Or(o.Config.Heartbeat, config.DefaultHeartbeat), 5*time.Second),
		LocalHeartbeat: cmp.Or(o.Config.Heartbeat, config.DefaultHeartbeat),
		// The checker's clock: the local-clock bound on a message's
		// delay is judged at its arrival (policy.Input.Received).
		Now: o.Now,
	})
	if err != nil {
		if r.ownConn {
			r.conn.Close()
		}
		return nil, err
	}
	return r, nil
}

// Destination is this node's name: the one it matches patterns against
// (unless it matches any destination) and answers requests as.
func (r *Receiver) Destination() string { return r.dest }

// Conn is the receiver's connection (a responder publishes replies on it).
func (r *Receiver) Conn() *transport.Conn { return r.conn }

// Next returns the next accepted message, logging refusals with their
// reason: security refusals at warn through a RefusalLog (the first few
// per reason and minute, then a summary), filters at debug. It returns
// ctx's error when ctx ends first.
func (r *Receiver) Next(ctx context.Context) (policy.Verdict, transport.Delivery, error) {
	for {
		var d transport.Delivery
		select {
		case <-ctx.Done():
			return policy.Verdict{}, d, ctx.Err()
		case d = <-r.sub.C:
		}
		if v := r.screen(d); v.Accepted() {
			return v, d, nil
		}
	}
}

// screen checks one delivery and logs it when refused.
func (r *Receiver) screen(d transport.Delivery) policy.Verdict {
	v := r.checker.Check(policy.Input{Body: d.Body, HeaderID: d.HeaderID, Stored: d.Stored, Received: d.Received})
	if !v.Accepted() {
		r.logRefusal(v, d)
	}
	return v
}

func (r *Receiver) logRefusal(v policy.Verdict, d transport.Delivery) {
	attrs := []any{"detail", v.Detail, "seq", d.Seq}
	if v.Env != nil {
		attrs = append(attrs, "id", v.Env.ID, "sender", v.Env.Sender.String(), "verb", v.Env.Verb)
	}
	if v.Reason.IsFilter() {
		r.log.Debug("not for this receiver", append([]any{"reason", v.Reason.String()}, attrs...)...)
		return
	}
	// Security refusals are what a hostile publisher can cause on every
	// host at once: rate-limited, with a summary of the rest.
	r.refused.Log(slog.LevelWarn, v.Reason.String(), attrs...)
}

// Close deletes the consumer and closes the connection if the receiver
// dialed it.
func (r *Receiver) Close() {
	r.refused.Flush()
	r.sub.Close()
	if r.ownConn {
		r.conn.Close()
	}
}

// String describes the receiver for logs.
func (r *Receiver) String() string { return fmt.Sprintf("receiver(%s)", r.dest) }
