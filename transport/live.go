package transport

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Delivery is one stored message handed to a live receiver.
type Delivery struct {
	Subject  string
	Body     []byte
	HeaderID string    // Nats-Msg-Id; empty when absent
	Stored   time.Time // the stream's timestamp
	Seq      uint64    // stream sequence
	// Received is when this client took the message from the server, by
	// the local clock (SubscribeOptions.Now): the time it then waits for
	// its reader (a receiver running the script of the message before)
	// is not the server's doing.
	Received time.Time
}

// SubscribeOptions configure a live receiver.
type SubscribeOptions struct {
	Stream  StreamSpec
	Subject string // filter: MsgSubject or ReplySubject
	// StartSeq, when not zero, is the first stream sequence wanted instead
	// of the one after the stream's last (a requester reads the sequence
	// before it publishes).
	StartSeq uint64
	// Since starts that far back in time instead (late joiners).
	Since time.Duration
	// InactiveThreshold is how long the server keeps the consumer of a
	// receiver that stopped pulling (killed): default 5s.
	InactiveThreshold time.Duration
	// Heartbeat is the idle heartbeat that detects a lost consumer: two
	// missed heartbeats recreate it from the next wanted sequence, so a
	// consumer lost while its connection stays up (in a cluster, the
	// server holding it stopped while the receiver is connected to
	// another) delays delivery by up to twice this, and loses nothing. A
	// reconnect, and a consumer the server deletes, are noticed at once
	// regardless. Default 5s, at most MaxHeartbeat.
	Heartbeat time.Duration
	// LocalHeartbeat, when longer than Heartbeat, is used instead while
	// the consumer lives on the server this connection is connected to
	// (one server, a leaf node's mirror, or a cluster that placed it
	// there): losing that server is a disconnect, noticed at once (or by
	// the connection's pings when it dies silently), so the heartbeat is
	// only the last resort. Each waiting receiver costs the server one
	// heartbeat per interval: long-lived receivers set this (node's
	// config.DefaultHeartbeat).
	LocalHeartbeat time.Duration
	// Retry keeps retrying JetStream failures (timeouts, API queue full,
	// maximum consumers) with jittered backoff until ctx is done.
	Retry bool
	// Buffer is the number of deliveries queued for a slow reader (default 64).
	Buffer int
	// Now is the clock of Delivery.Received (time.Now when nil).
	Now func() time.Time
}

// Subscription is a live receiver. Read deliveries from C; after Close
// nothing more arrives on it.
type Subscription struct {
	C <-chan Delivery

	conn   *Conn
	opts   SubscribeOptions
	stream string
	out    chan Delivery
	cancel context.CancelFunc
	done   chan struct{}
	unhook func()
	resetC chan struct{}

	mu   sync.Mutex
	gen  int                      // generation of the current consumer
	next uint64                   // next stream sequence wanted
	dseq uint64                   // last consumer sequence of this generation
	cons jetstream.Consumer       // current consumer
	cc   jetstream.ConsumeContext // current consumption
	hb   time.Duration            // its idle heartbeat
}

// Subscribe starts a live receiver and returns once its consumer exists:
// from then on every message stored on o.Subject is delivered in order.
// With o.Retry it keeps trying until ctx is done; the error then says what
// kept failing.
func (c *Conn) Subscribe(ctx context.Context, o SubscribeOptions) (*Subscription, error) {
	if o.InactiveThreshold <= 0 {
		o.InactiveThreshold = 5 * time.Second
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 5 * time.Second
	}
	o.Heartbeat = min(max(o.Heartbeat, 500*time.Millisecond), MaxHeartbeat) // the client's range
	o.LocalHeartbeat = min(max(o.LocalHeartbeat, o.Heartbeat), MaxHeartbeat)
	if o.Buffer <= 0 {
		o.Buffer = 64
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Subscription{conn: c, opts: o, stream: o.Stream.name(), resetC: make(chan struct{}, 1), done: make(chan struct{})}
	s.out = make(chan Delivery, o.Buffer)
	s.C = s.out

	backoff := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := s.start(ctx)
		if err == nil {
			break
		}
		if !o.Retry || !retryable(err) {
			return nil, err
		}
		c.log.Warn("cannot start receiving yet, retrying", "attempt", attempt, "err", err)
		if !sleep(ctx, jitter(backoff)) {
			return nil, fmt.Errorf("%w (gave up: %v)", err, context.Cause(ctx))
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	rctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.unhook = c.onReconnect(s.requestReset)
	go s.supervise(rctx)
	return s, nil
}

// MaxHeartbeat is the longest idle heartbeat the NATS client accepts.
const MaxHeartbeat = 30 * time.Second

// pullExpiry is how long one pull request stays pending before the client
// renews it (the server answers it with a timeout status, two messages per
// renewal): four heartbeats, at least 30s. The client requires at least
// two heartbeats per pull.
func pullExpiry(hb time.Duration) time.Duration { return max(30*time.Second, 4*hb) }

// startAttempt bounds one attempt to find or create the stream.
const startAttempt = 5 * time.Second

// start finds the stream, fixes the start sequence, and creates the first
// consumer.
func (s *Subscription) start(ctx context.Context) error {
	// With Retry one attempt is bounded: a request the server never
	// answers (one it refused for the user's permissions: the stream does
	// not exist yet and only the auditor may create it) is tried again,
	// not waited on until -t.
	sctx := ctx
	if s.opts.Retry {
		var cancel context.CancelFunc
		sctx, cancel = context.WithTimeout(ctx, startAttempt)
		defer cancel()
	}
	st, err := s.conn.EnsureStream(sctx, s.opts.Stream)
	if err != nil {
		if perr := s.conn.refused(apiStreamCreate + s.stream); perr != nil {
			return fmt.Errorf("%w; stream %s does not exist yet, and only the auditor or an admin creates it", perr, s.stream)
		}
		return err
	}
	s.next = s.opts.StartSeq
	if s.next == 0 && s.opts.Since <= 0 {
		s.next = st.CachedInfo().State.LastSeq + 1
	}
	// With Since, the first consumer starts by time; s.next stays 0 until
	// the first delivery fixes it.
	return s.consume(ctx)
}

// consume creates a consumer starting at s.next and starts pulling.
func (s *Subscription) consume(ctx context.Context) error {
	s.mu.Lock()
	next := s.next
	s.mu.Unlock()
	cfg := jetstream.ConsumerConfig{
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       next,
		AckPolicy:         jetstream.AckNonePolicy,
		FilterSubject:     s.opts.Subject,
		InactiveThreshold: s.opts.InactiveThreshold,
		MemoryStorage:     true,
		Replicas:          1,
	}
	if next == 0 { // -since, before anything was delivered
		t := time.Now().Add(-s.opts.Since)
		cfg.DeliverPolicy, cfg.OptStartSeq, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, 0, &t
	}
	// A short attempt: during a stream leader election the first one
	// times out, and the retry should not wait long behind it.
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	cons, err := s.conn.js.CreateConsumer(cctx, s.stream, cfg)
	if err != nil {
		if perr := s.conn.refusedMatch("the consumer API for "+cfg.FilterSubject, consumerCreateSubject(s.stream, cfg.FilterSubject)); perr != nil {
			return perr
		}
		return fmt.Errorf("%w: create consumer on stream %s: %w", ErrJetStream, s.stream, err)
	}
	s.mu.Lock()
	s.gen++
	gen := s.gen
	s.dseq = 0
	s.cons = cons
	s.mu.Unlock()
	hb := s.heartbeat(cons)
	cc, err := cons.Consume(func(m jetstream.Msg) { s.handle(gen, m) },
		jetstream.PullMaxMessages(64),
		jetstream.PullExpiry(pullExpiry(hb)),
		jetstream.PullHeartbeat(hb),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) { s.consumeErr(gen, err) }),
	)
	if err != nil {
		s.deleteConsumer(cons)
		return fmt.Errorf("%w: consume: %v", ErrJetStream, err)
	}
	s.mu.Lock()
	s.cc = cc
	s.hb = hb
	s.mu.Unlock()
	return nil
}

// heartbeat picks the consumer's idle heartbeat: the long LocalHeartbeat
// when the consumer lives on the server this connection is connected to
// (a standalone server reports no cluster), the short Heartbeat when it
// lives on another server, whose loss only the heartbeat notices.
func (s *Subscription) heartbeat(cons jetstream.Consumer) time.Duration {
	ci := cons.CachedInfo().Cluster
	if ci == nil || ci.Leader == "" || ci.Leader == s.conn.nc.ConnectedServerName() {
		return s.opts.LocalHeartbeat
	}
	return s.opts.Heartbeat
}

// Heartbeat is the idle heartbeat of the current consumer (for tests and
// measurements).
func (s *Subscription) Heartbeat() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hb
}

func (s *Subscription) handle(gen int, m jetstream.Msg) {
	md, err := m.Metadata()
	if err != nil {
		return
	}
	s.mu.Lock()
	if gen != s.gen || md.Sequence.Stream < s.next {
		s.mu.Unlock() // from a replaced consumer, or already delivered
		return
	}
	if md.Sequence.Consumer != s.dseq+1 {
		// A gap in the consumer's sequence: something was lost in
		// flight. Start again from the next wanted stream sequence.
		s.mu.Unlock()
		s.requestReset()
		return
	}
	s.dseq = md.Sequence.Consumer
	s.next = md.Sequence.Stream + 1
	s.mu.Unlock()
	d := Delivery{Subject: m.Subject(), Body: m.Data(), HeaderID: m.Headers().Get(jetstream.MsgIDHeader), Stored: md.Timestamp, Seq: md.Sequence.Stream,
		Received: s.opts.Now()}
	select {
	case s.out <- d:
	case <-s.done:
	}
}

func (s *Subscription) consumeErr(gen int, err error) {
	s.mu.Lock()
	current := gen == s.gen
	s.mu.Unlock()
	if !current {
		return
	}
	switch {
	case errors.Is(err, jetstream.ErrNoHeartbeat),
		errors.Is(err, jetstream.ErrConsumerDeleted),
		errors.Is(err, jetstream.ErrConsumerNotFound),
		errors.Is(err, nats.ErrNoResponders):
		s.conn.log.Warn("lost the consumer, recreating it", "err", err)
		s.requestReset()
	case errors.Is(err, nats.ErrConnectionClosed):
	default:
		s.conn.log.Debug("consume", "err", err)
	}
}

func (s *Subscription) requestReset() {
	select {
	case s.resetC <- struct{}{}:
	default:
	}
}

// supervise recreates the consumer from the next wanted sequence after a
// reconnect, a lost heartbeat or a deleted consumer, retrying until Close.
func (s *Subscription) supervise(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.resetC:
		}
		s.mu.Lock()
		old, oldcc := s.cons, s.cc
		s.gen++ // messages still arriving from the old consumer are dropped
		s.mu.Unlock()
		if oldcc != nil {
			oldcc.Stop()
		}
		if old != nil {
			go s.deleteConsumer(old)
		}
		backoff := 200 * time.Millisecond
		for failures := 1; ; failures++ {
			err := s.consume(ctx)
			if err == nil {
				s.conn.log.Info("consumer recreated", "next_seq", s.nextSeq())
				break
			}
			s.conn.log.Warn("cannot recreate the consumer, retrying", "err", err)
			if failures%3 == 0 && errors.Is(err, context.DeadlineExceeded) {
				// The server does not answer on this connection: it may
				// be dead without the client knowing yet (a cut network,
				// a changed address). Dial again rather than wait.
				s.conn.log.Warn("forcing a reconnect")
				_ = s.conn.nc.ForceReconnect()
			}
			if !sleep(ctx, jitter(backoff)) {
				return
			}
			backoff = min(2*backoff, 5*time.Second)
		}
	}
}

func (s *Subscription) nextSeq() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next
}

// ConsumerName returns the name of the current consumer (for tests and logs).
func (s *Subscription) ConsumerName() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cons == nil {
		return ""
	}
	return s.cons.CachedInfo().Name
}

func (s *Subscription) deleteConsumer(cons jetstream.Consumer) {
	if s.conn.nc.IsClosed() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.conn.js.DeleteConsumer(ctx, s.stream, cons.CachedInfo().Name)
}

// Close stops receiving and deletes the consumer, waiting at most two
// seconds for the server to confirm, so that receivers that come and go do
// not leave consumers behind.
func (s *Subscription) Close() {
	select {
	case <-s.done:
		return
	default:
	}
	close(s.done)
	s.cancel()
	s.unhook()
	s.mu.Lock()
	cons, cc := s.cons, s.cc
	s.gen++
	s.mu.Unlock()
	if cc != nil {
		cc.Stop()
	}
	if cons != nil {
		s.deleteConsumer(cons)
	}
}

// retryable reports whether a start-up failure may pass: everything but a
// stream that does not match, is too weak or cannot be created with the
// config's limits, a server without JetStream
// (the sender's message, at once, instead of retrying until -t), and bad
// credentials.
func retryable(err error) bool {
	return !errors.Is(err, ErrStreamMismatch) && !errors.Is(err, ErrStreamWeak) && !errors.Is(err, ErrStreamLimits) &&
		!errors.Is(err, ErrNoJetStream) && !errors.Is(err, ErrCredentials)
}
