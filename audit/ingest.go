package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/transport"
)

// Defaults of RunOptions.
const (
	DefaultConsumer  = "remaphore-audit"
	DefaultBatch     = 500
	DefaultFetchWait = 250 * time.Millisecond
	DefaultHoldMax   = time.Second
)

// RunOptions configure [Run].
type RunOptions struct {
	Conn   *transport.Conn
	Stream transport.StreamSpec
	// Peers are every sender and responder the auditor trusts; AllowSkew
	// is the config's allow_skew.
	Peers     []policy.Peer
	AllowSkew time.Duration
	// Consumer is the durable consumer's name (DefaultConsumer when "").
	Consumer string
	// DB is the database file; Store sets its cap on refused records and
	// how long one open waits for readers before it logs and tries again.
	DB    string
	Store Options
	// Batch is the most messages fetched, decided and committed at once
	// (DefaultBatch); FetchWait is how long a fetch waits for a full batch
	// (DefaultFetchWait).
	Batch     int
	FetchWait time.Duration
	// Workers is the number of policy shards checking signatures at once
	// (GOMAXPROCS when 0).
	Workers int
	// HoldMax is the longest the database stays open while a backlog is
	// written (DefaultHoldMax): then it is closed for a moment so that
	// queries get in.
	HoldMax time.Duration
	Logger  *slog.Logger
	// Ready is called once the consumer exists; OnCommit after every
	// commit (tests and benchmarks).
	Ready    func(last uint64)
	OnCommit func(CommitInfo)

	// Lock, when set, is the daemon lock the caller already holds on DB
	// (see [LockDaemon]); Run then does not take it, and does not release
	// it.
	Lock *DaemonLock

	// lose, in tests, drops fetched messages as if lost on the way.
	lose func(jetstream.Msg) bool
}

// CommitInfo describes one committed batch.
type CommitInfo struct {
	AppendResult
	Fetched int
}

// Run is the auditor: it reads the stream through a durable pull consumer
// from where the store stops, decides on every message with the policy
// package (freshness judged against the stream's time, so a backlog is not
// refused as stale), writes each batch in one transaction and only then
// acks it. It returns nil when ctx is done, or the error that stopped it.
//
// # Exactly once
//
// The store, not the consumer, holds the position: the highest sequence
// stored. Run starts the consumer there: it keeps the existing durable
// consumer when that one has delivered exactly up to the store's position
// with nothing pending (a clean restart), and otherwise deletes it and
// creates it anew at the store's position + 1 (a crash between commit and
// ack, a new database file, a consumer changed by hand). Messages arrive in
// sequence order; anything at or below the position (a redelivery) is
// skipped and acked. A kill at any point therefore loses nothing and stores
// nothing twice.
//
// # Acks
//
// The consumer uses AckAll: after a commit, one ack of the batch's highest
// sequence acknowledges the whole batch. It says exactly what is true (every
// sequence up to it is stored) and costs the server one ack per batch
// instead of one per message.
//
// # The database lock
//
// bbolt locks the whole file while it is open, and a reader (query, tail,
// verify, stats) cannot open it while a writer does. Run therefore opens
// the file only to write: it keeps it open while a backlog streams in, for
// at most HoldMax at a time, and closes it whenever it has caught up. A
// separate lock file ([LockDaemon]) keeps a second Run out for its whole
// life.
func Run(ctx context.Context, o RunOptions) error {
	if o.Consumer == "" {
		o.Consumer = DefaultConsumer
	}
	if o.Batch <= 0 {
		o.Batch = DefaultBatch
	}
	if o.FetchWait <= 0 {
		o.FetchWait = DefaultFetchWait
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.HoldMax <= 0 {
		o.HoldMax = DefaultHoldMax
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	pool, err := newCheckerPool(o.Stream.Root, o.Peers, o.AllowSkew, o.Workers)
	if err != nil {
		return err
	}
	defer pool.close()
	if o.Lock == nil {
		lock, err := LockDaemon(o.DB)
		if err != nil {
			return err
		}
		defer lock.Release()
	}
	w := &writer{path: o.DB, opts: o.Store, log: o.Logger}
	defer w.close()
	s, err := w.open(ctx)
	if err != nil {
		return err
	}
	last, _, err := s.Last()
	if err != nil {
		return err
	}
	ident, err := s.streamIdentity()
	if err != nil {
		return err
	}
	primer, err := primeItems(s, o.AllowSkew)
	if err != nil {
		return err
	}
	w.close()
	// The replay caches as they were before a restart.
	pool.decide(primer)
	if len(primer) > 0 {
		o.Logger.Debug("replay cache primed from the store", "records", len(primer))
	}

	st, err := o.Conn.EnsureStream(ctx, o.Stream)
	if err != nil {
		return err
	}
	info := st.CachedInfo()
	now := info.Config.Name + " created " + info.Created.UTC().Format(time.RFC3339Nano)
	switch {
	case ident != "" && ident != now:
		return fmt.Errorf("%w: %s holds stream %s, the server now has stream %s", ErrStreamChanged, o.DB, ident, now)
	case info.State.LastSeq < last:
		return fmt.Errorf("%w: %s holds records up to seq %d, stream %s ends at seq %d", ErrStreamChanged, o.DB, last, info.Config.Name, info.State.LastSeq)
	case ident == "":
		s, err := w.open(ctx)
		if err != nil {
			return err
		}
		if err := s.setStreamIdentity(now); err != nil {
			return err
		}
		w.close()
	}

	in := &ingester{o: o, pool: pool, w: w, log: o.Logger, stream: st}
	cons, err := in.consumer(ctx, last, false)
	if err != nil {
		return err
	}
	o.Logger.Info("ready", "db", o.DB, "stream", st.CachedInfo().Config.Name, "consumer", o.Consumer, "last_seq", last)
	if o.Ready != nil {
		o.Ready(last)
	}
	return in.run(ctx, cons, last)
}

// primeItems returns the accepted records that could still be replayed
// (stored within twice allow_skew of the newest), oldest first, to be fed
// through the checkers so that the replay caches are what they were
// before a restart.
func primeItems(s *Store, skew time.Duration) ([]*item, error) {
	_, lastStored, err := s.Last()
	if err != nil || lastStored.IsZero() {
		return nil, err
	}
	var items []*item
	err = s.Query(Query{Since: lastStored.Add(-2 * skew), Reverse: true, Limit: policy.DefaultReplayCap}, func(r *Record) error {
		items = append(items, &item{subject: r.Subject, seq: r.Seq,
			in: policy.Input{Body: r.Body, HeaderID: r.HeaderID, Stored: r.Stored}})
		return nil
	})
	slices.Reverse(items)
	return items, err
}

type ingester struct {
	o      RunOptions
	pool   *checkerPool
	w      *writer
	log    *slog.Logger
	stream jetstream.Stream
}

// consumer returns the durable consumer positioned after seq last.
func (in *ingester) consumer(ctx context.Context, last uint64, restart bool) (jetstream.Consumer, error) {
	cfg := jetstream.ConsumerConfig{
		Durable:       in.o.Consumer,
		Description:   "remaphore-audit: every message and reply, in sequence order",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckAllPolicy,
		AckWait:       time.Minute,
		MaxDeliver:    -1,
		FilterSubject: in.o.Stream.Root + ".>",
		ReplayPolicy:  jetstream.ReplayInstantPolicy,
		MaxAckPending: 8 * in.o.Batch,
	}
	if last > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, last+1
	}
	c, err := in.stream.Consumer(ctx, cfg.Durable)
	switch {
	case err == nil:
		info := c.CachedInfo()
		startsAfter := info.Config.DeliverPolicy == jetstream.DeliverByStartSequencePolicy && info.Config.OptStartSeq > last+1
		if !restart && info.Config.AckPolicy == cfg.AckPolicy && info.Config.FilterSubject == cfg.FilterSubject &&
			info.NumAckPending == 0 && info.Delivered.Stream == last && !startsAfter {
			return c, nil
		}
		in.log.Info("starting the consumer again at the next sequence to record",
			"consumer", cfg.Durable, "delivered", info.Delivered.Stream, "ack_floor", info.AckFloor.Stream,
			"pending_acks", info.NumAckPending, "store_last", last)
		if err := in.stream.DeleteConsumer(ctx, cfg.Durable); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil, fmt.Errorf("%w: delete consumer %s: %v", transport.ErrJetStream, cfg.Durable, err)
		}
	case !errors.Is(err, jetstream.ErrConsumerNotFound):
		return nil, fmt.Errorf("%w: consumer %s: %v", transport.ErrJetStream, cfg.Durable, err)
	}
	c, err = in.stream.CreateConsumer(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: create consumer %s: %v", transport.ErrJetStream, cfg.Durable, err)
	}
	return c, nil
}

// fetched is one fetch's messages; checked is a batch ready to commit.
type fetched struct {
	msgs []jetstream.Msg
	mds  []*jetstream.MsgMetadata // each message's metadata; nil when it had none
}

type checked struct {
	entries []Entry
	ack     jetstream.Msg // the message with the highest sequence (AckAll)
	fetched int
}

// run is the pipeline: fetch, decide, commit and ack, each in its own
// goroutine so that fetching and committing overlap with the signature
// checks.
func (in *ingester) run(ctx context.Context, cons jetstream.Consumer, last uint64) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	fetchC := make(chan fetched, 2)
	commitC := make(chan checked, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(fetchC)
		in.fetch(ctx, cons, last, fetchC)
	})
	wg.Go(func() {
		defer close(commitC)
		in.decide(ctx, fetchC, commitC, last)
	})
	err := in.commit(ctx, commitC)
	if err != nil {
		cancel(err)
	}
	for range commitC { // let the others finish
	}
	wg.Wait()
	return err
}

// fetch pulls batches in sequence order. A message past the next
// expected sequence is a gap: either the stream no longer holds (or never
// held) the sequences in between (expired, deleted, another subject),
// which is logged and passed over, or messages were delivered and lost on
// the way (a cut connection): the server would redeliver them only after
// the ack wait, behind newer ones. The stream is asked which (the first
// message at or after the expected sequence); when messages were lost the
// consumer starts again at the first missing one, and what was fetched
// past it is dropped.
func (in *ingester) fetch(ctx context.Context, cons jetstream.Consumer, last uint64, out chan<- fetched) {
	expect := last + 1
	var restartedAt uint64 // the consumer was started again at this sequence
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		b, err := cons.Fetch(in.o.Batch, jetstream.FetchMaxWait(in.o.FetchWait))
		var msgs []jetstream.Msg
		var mds []*jetstream.MsgMetadata
		restart := false
		if err == nil {
			msgs = make([]jetstream.Msg, 0, in.o.Batch)
			mds = make([]*jetstream.MsgMetadata, 0, in.o.Batch)
			for m := range b.Messages() {
				if in.o.lose != nil && in.o.lose(m) {
					continue
				}
				md, merr := m.Metadata()
				if merr != nil { // passed on: decide logs and skips it
					msgs, mds = append(msgs, m), append(mds, nil)
					continue
				}
				seq := md.Sequence.Stream
				if seq > expect {
					if restartedAt != expect && !in.gapIsReal(ctx, expect, seq) {
						in.log.Warn("messages were delivered but not received; reading again from the first missing one",
							"first_missing", expect, "received", seq)
						restart = true
						break
					}
					in.log.Warn("stream sequences not delivered: removed from the stream before the auditor read them, or outside its subjects",
						"first", expect, "last", seq-1)
				}
				expect = max(expect, seq+1)
				msgs, mds = append(msgs, m), append(mds, md)
			}
			if err == nil {
				err = b.Error()
			}
		}
		if len(msgs) > 0 || (err == nil && !restart) {
			select {
			case out <- fetched{msgs: msgs, mds: mds}:
			case <-ctx.Done():
				return
			}
		}
		if restart {
			restartedAt = expect
			c, cerr := in.consumer(ctx, expect-1, true)
			if cerr == nil {
				cons = c
				continue
			}
			err = cerr
		}
		if err == nil {
			backoff = 100 * time.Millisecond
			continue
		}
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) {
			in.log.Warn("the consumer is gone; creating it again", "consumer", in.o.Consumer, "at_seq", expect)
			restartedAt = expect
			if c, cerr := in.consumer(ctx, expect-1, true); cerr == nil {
				cons = c
				continue
			} else {
				err = cerr
			}
		}
		in.log.Warn("fetch failed, retrying", "err", err)
		if !sleepCtx(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// gapIsReal reports whether the stream holds no message on the auditor's
// subjects from sequence from up to (not including) got. When the stream
// cannot be asked, the gap is not taken as real: the consumer starts again
// at from, and if the gap is still there then, it is.
func (in *ingester) gapIsReal(ctx context.Context, from, got uint64) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	m, err := in.stream.GetMsg(ctx, from, jetstream.WithGetMsgSubject(in.o.Stream.Root+".>"))
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return true
	case err != nil:
		in.log.Debug("cannot ask the stream about a gap", "from", from, "err", err)
		return false
	}
	return m.Sequence >= got
}

// decide turns fetched messages into entries: anything at or below the
// highest sequence seen is a redelivery and skipped (but still acked).
// Batches are handed to the checker shards as they come; a collector
// waits for each in turn and passes it on, so the shards never wait for
// the slowest of them at the end of a batch.
func (in *ingester) decide(ctx context.Context, inC <-chan fetched, out chan<- checked, last uint64) {
	type pending struct {
		c     checked
		items []*item
		done  *sync.WaitGroup
	}
	pendC := make(chan pending, 2)
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for p := range pendC {
			p.done.Wait()
			p.c.entries = make([]Entry, len(p.items))
			for i, it := range p.items {
				p.c.entries[i] = it.entry
			}
			select {
			case out <- p.c:
			case <-ctx.Done():
			}
		}
	}()
	defer func() {
		close(pendC)
		<-collected
	}()
	for f := range inC {
		c := checked{fetched: len(f.msgs)}
		// The items of a batch share one allocation.
		all := make([]item, 0, len(f.msgs))
		items := make([]*item, 0, len(f.msgs))
		var ackSeq uint64
		for i, m := range f.msgs {
			md := f.mds[i]
			if md == nil {
				_, err := m.Metadata()
				in.log.Warn("message without JetStream metadata, skipped", "subject", m.Subject(), "err", err)
				continue
			}
			seq := md.Sequence.Stream
			if seq >= ackSeq {
				c.ack, ackSeq = m, seq
			}
			if seq <= last {
				continue
			}
			last = seq
			all = append(all, item{subject: m.Subject(), seq: seq,
				in: policy.Input{Body: m.Data(), HeaderID: m.Headers().Get(jetstream.MsgIDHeader), Stored: md.Timestamp}})
			items = append(items, &all[len(all)-1])
		}
		p := pending{c: c, items: items, done: in.pool.submit(items)}
		select {
		case pendC <- p:
		case <-ctx.Done():
			return
		}
	}
}

// commit writes each batch, then acks it.
func (in *ingester) commit(ctx context.Context, inC <-chan checked) error {
	var total AppendResult
	lastLog := time.Now()
	for c := range inC {
		if len(c.entries) > 0 {
			s, err := in.w.open(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil // shutting down: the batch is redelivered
				}
				return err
			}
			res, err := s.Append(c.entries)
			if err != nil {
				return fmt.Errorf("write %s: %w", in.o.DB, err)
			}
			total.Accepted += res.Accepted
			total.Rejected += res.Rejected
			total.Skipped += res.Skipped
			total.Evicted += res.Evicted
			total.Last = res.Last
			if res.Rejected > 0 {
				in.logRefused(c.entries)
			}
			if in.o.OnCommit != nil {
				in.o.OnCommit(CommitInfo{AppendResult: res, Fetched: c.fetched})
			}
		}
		if c.ack != nil {
			if err := c.ack.Ack(); err != nil {
				in.log.Warn("ack failed; the batch will be redelivered and skipped", "err", err)
			}
		}
		switch {
		case c.fetched < in.o.Batch:
			in.w.close() // caught up: let readers in
		case in.w.held() > in.o.HoldMax:
			in.w.close()
			sleepCtx(ctx, yieldPause)
		}
		if time.Since(lastLog) >= 10*time.Second && total.Accepted+total.Rejected > 0 {
			in.log.Info("ingested", "accepted", total.Accepted, "rejected", total.Rejected,
				"evicted", total.Evicted, "last_seq", total.Last)
			total, lastLog = AppendResult{}, time.Now()
		}
	}
	return nil
}

// logRefused logs a batch's refusals: each at debug level, and one
// warning per batch with the count by reason (a flood of forged messages
// makes one line per batch, not one per message).
func (in *ingester) logRefused(entries []Entry) {
	reasons := map[string]int{}
	var first *Entry
	for i := range entries {
		e := &entries[i]
		if e.Reason == policy.ReasonAccepted {
			continue
		}
		if first == nil {
			first = e
		}
		reasons[e.Reason.String()]++
		in.log.Debug("refused", "seq", e.Seq, "subject", e.Subject, "reason", e.Reason.String(), "detail", e.Detail)
	}
	if first != nil {
		n := 0
		for _, c := range reasons {
			n += c
		}
		in.log.Warn("refused messages recorded", "count", n, "by_reason", reasons,
			"first_seq", first.Seq, "first_reason", first.Reason.String(), "first_detail", first.Detail)
	}
}

// yieldPause is how long a writer holding the file through a backlog
// leaves it closed: long enough for a reader polling every lockPoll.
const yieldPause = 10 * time.Millisecond

// writer opens the store when there is something to write and closes it
// when there is not.
type writer struct {
	path   string
	opts   Options
	log    *slog.Logger
	s      *Store
	opened time.Time
}

func (w *writer) open(ctx context.Context) (*Store, error) {
	if w.s != nil {
		return w.s, nil
	}
	o := w.opts
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	for {
		s, err := Open(w.path, o)
		if err == nil {
			w.s, w.opened = s, time.Now()
			return s, nil
		}
		if !errors.Is(err, ErrBusy) || ctx.Err() != nil {
			return nil, err
		}
		w.log.Warn("waiting for a reader of the database to finish", "db", w.path, "waited", o.Timeout)
	}
}

func (w *writer) held() time.Duration {
	if w.s == nil {
		return 0
	}
	return time.Since(w.opened)
}

func (w *writer) close() {
	if w.s != nil {
		if err := w.s.Close(); err != nil {
			w.log.Warn("close database", "err", err)
		}
		w.s = nil
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
