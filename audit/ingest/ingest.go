package ingest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/remaphore/remaphore/audit"
	"github.com/remaphore/remaphore/audit/metrics"
	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/transport"
)

// ConsumerIdle is how long the server keeps an auditor's consumer that
// nothing reads from.
const ConsumerIdle = 72 * time.Hour

// GCPercent is the garbage collector's target that remaphore-audit run
// sets unless GOGC is set. The auditor's live heap is a few MB (one batch,
// the replay caches, the key tables) while it allocates per message (bbolt cursors
// and nodes, NATS messages): at Go's default of 100 it collects every few
// thousand messages, ~10% of its CPU. 400 lets the heap reach five times
// the live set, still tens of MB, and ingests ~20% more messages per
// second (BenchmarkIngestBacklog).
const GCPercent = 400

// Defaults of RunOptions.
const (
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
	// Consumer is the durable consumer's name (DefaultConsumerName(DB)
	// when ""). Run creates, deletes and re-creates only a consumer it
	// created itself (tagged with the database's auditor id); any other
	// of that name is ErrConsumerTaken.
	Consumer string
	// DB is the database file; Store sets its cap on refused records and
	// how long one open waits for readers before it logs and tries again.
	DB    string
	Store audit.Options
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

	// Metrics, when set, is told about every fetch and every commit
	// (remaphore-audit run -metrics).
	Metrics *metrics.Auditor
	// Reload delivers new [ Peers ] (the config re-read on SIGHUP).
	// Batches handed to the checkers after a reload is applied are
	// judged by the new peers, those before by the old (a batch never by
	// both); the replay caches are kept.
	// Reloaded, when set, is called once each is applied.
	Reload   <-chan []policy.Peer
	Reloaded func(peers []policy.Peer)

	// Lock, when set, is the daemon lock the caller already holds on DB
	// (see [audit.LockDaemon]); Run then does not take it, and does not release
	// it.
	Lock *audit.DaemonLock

	// lose, in tests, drops fetched messages as if lost on the way.
	lose func(jetstream.Msg) bool
	// afterAppend, in benchmarks, runs after each commit's Append: a
	// sleep there stands for a disk whose fsync is slower than this
	// machine's.
	afterAppend func()
}

// CommitInfo describes one committed batch.
type CommitInfo struct {
	audit.AppendResult
	Fetched int
	// Busy is the writer's time on this commit: the transaction with its
	// fsyncs, and the ack. The writer is the one stage that cannot spread
	// over cores: the sum of Busy over a backlog is the least time any
	// machine takes to ingest it.
	Busy time.Duration
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
// # Consumers of its own
//
// The consumer's name is derived from the host and the database file
// ([DefaultConsumerName]) unless given, and each consumer Run creates is
// tagged with the database's auditor id: Run deletes or re-creates only a
// consumer carrying its own tag. A consumer of that name without it
// (another auditor's, an older auditor's, one made by hand) is
// ErrConsumerTaken, left as it is. An upgraded auditor whose old consumer
// had the old default name reads through its new one from the store's
// position + 1, so nothing is skipped or stored twice.
//
// # Gaps
//
// A sequence missing from what the consumer delivers is skipped only when
// the stream says it no longer has it; then it is written as a gap record
// ([audit.Gap]). Messages lost on the way are read again.
//
// # Bounded memory
//
// A fetch is bounded by count and by bytes, the bodies fetched and not yet
// committed by a budget of a few fetches, and refused records keep at
// most RefusedKeep bytes of their body, so that a flood of large messages
// holds tens of MB however long the backlog.
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
// separate lock file ([audit.LockDaemon]) keeps a second Run out for its whole
// life.
func Run(ctx context.Context, o RunOptions) error {
	defer o.Metrics.Stopped()
	if o.Consumer == "" {
		o.Consumer = DefaultConsumerName(o.DB)
	}
	if err := ValidConsumerName(o.Consumer); err != nil {
		return fmt.Errorf("consumer name %q: %v", o.Consumer, err)
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
	if o.Reload != nil {
		// Stopped before the pool is closed (defers run in reverse).
		stop := make(chan struct{})
		var wg sync.WaitGroup
		defer wg.Wait()
		defer close(stop)
		wg.Go(func() {
			for {
				select {
				case peers := <-o.Reload:
					pool.reload(peers)
					o.Logger.Info("peers reloaded: messages checked from now on are judged by the new [ Peers ]", "peers", len(peers))
					if o.Reloaded != nil {
						o.Reloaded(peers)
					}
				case <-stop:
					return
				}
			}
		})
	}
	if o.Lock == nil {
		lock, err := audit.LockDaemon(o.DB)
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
	ident, err := s.StreamIdentity()
	if err != nil {
		return err
	}
	primer, err := primeItems(s, o.AllowSkew)
	if err != nil {
		return err
	}
	owner, err := s.AuditorID()
	if err != nil {
		return err
	}
	sealer, err := s.Sealer()
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
		return noJetStream(o.Conn, err)
	}
	info := st.CachedInfo()
	now := info.Config.Name + " created " + info.Created.UTC().Format(time.RFC3339Nano)
	switch {
	case ident != "" && ident != now:
		return fmt.Errorf("%w: %s holds stream %s, the server now has stream %s", audit.ErrStreamChanged, o.DB, ident, now)
	case info.State.LastSeq < last:
		return fmt.Errorf("%w: %s holds records up to seq %d, stream %s ends at seq %d", audit.ErrStreamChanged, o.DB, last, info.Config.Name, info.State.LastSeq)
	case ident == "":
		s, err := w.open(ctx)
		if err != nil {
			return err
		}
		if err := s.SetStreamIdentity(now); err != nil {
			return err
		}
		w.close()
	}

	in := &ingester{o: o, pool: pool, w: w, log: o.Logger, stream: st, owner: owner, sealer: sealer, fetchBytes: DefaultFetchBytes}
	if m := int(info.Config.MaxMsgSize); m > 0 {
		// Room for two of the largest messages the stream holds.
		in.fetchBytes = min(max(in.fetchBytes, 2*m+64<<10), maxFetchBytes)
	}
	in.budget = newByteBudget(inFlightFetches * in.fetchBytes)
	in.noteLegacy(ctx)
	cons, err := in.consumer(ctx, last, false)
	if err != nil {
		return err
	}
	o.Logger.Info("ready", "db", o.DB, "stream", st.CachedInfo().Config.Name, "consumer", o.Consumer, "last_seq", last)
	o.Metrics.Ready(last)
	if o.Ready != nil {
		o.Ready(last)
	}
	return in.run(ctx, cons, last)
}

// primeItems returns the accepted records that could still be replayed
// (stored within twice allow_skew of the newest), oldest first, to be fed
// through the checkers so that the replay caches are what they were
// before a restart.
func primeItems(s *audit.Store, skew time.Duration) ([]*item, error) {
	_, lastStored, err := s.Last()
	if err != nil || lastStored.IsZero() {
		return nil, err
	}
	var items []*item
	err = s.Query(audit.Query{Since: lastStored.Add(-2 * skew), Reverse: true, Limit: policy.DefaultReplayCap}, func(r *audit.Record) error {
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
	owner  string // this database's auditor id, the consumer's owner tag
	// sealer encodes and hashes the records on the collector's goroutine,
	// so that the single writer only puts and commits them.
	sealer *audit.Sealer

	// fetchBytes bounds one fetch; budget bounds the bytes fetched and
	// not yet committed.
	fetchBytes int
	budget     *byteBudget
	fail       context.CancelCauseFunc
}

// consumer returns the durable consumer positioned after seq last. An
// existing one is kept when it is this auditor's and has delivered exactly
// up to last with nothing pending; one of this auditor's in any other
// state is deleted and created anew (restart says it must be). One this
// auditor did not create is never touched: ErrConsumerTaken.
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
		MaxAckPending: 8*in.o.Batch + 2*maxCommitEntries,
		Metadata:      in.consumerMetadata(),
		// A consumer left behind (the host renamed, a container created
		// anew, a file moved: another name) is removed by the server
		// after ConsumerIdle unused. Its auditor loses nothing by it: the
		// database holds the position, and a new consumer starts there.
		InactiveThreshold: ConsumerIdle,
	}
	if last > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, last+1
	}
	c, err := in.stream.Consumer(ctx, cfg.Durable)
	switch {
	case err == nil:
		info := c.CachedInfo()
		if info.Config.Metadata[metaKeyOwner] != in.owner {
			return nil, in.taken(info)
		}
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
	if errors.Is(err, jetstream.ErrConsumerExists) {
		// Another auditor created it in the meantime.
		if c, gerr := in.stream.Consumer(ctx, cfg.Durable); gerr == nil {
			if info := c.CachedInfo(); info.Config.Metadata[metaKeyOwner] != in.owner {
				return nil, in.taken(info)
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: create consumer %s: %v", transport.ErrJetStream, cfg.Durable, err)
	}
	return c, nil
}

// fetched is one fetch's messages and the gaps found before them; checked
// is a batch ready to commit.
type fetched struct {
	msgs []jetstream.Msg
	mds  []*jetstream.MsgMetadata // each message's metadata; nil when it had none
	gaps []audit.Gap              // in sequence order
	size int                      // bytes of the messages' bodies (the in-flight budget)
}

type checked struct {
	entries []audit.Entry
	ack     jetstream.Msg // the message with the highest sequence (AckAll)
	fetched int           // messages in the last fetch (caught up or not)
	msgs    int           // messages delivered in all the fetches here (metrics)
	size    int
}

// run is the pipeline: fetch, decide, commit and ack, each in its own
// goroutine so that fetching and committing overlap with the signature
// checks.
func (in *ingester) run(ctx context.Context, cons jetstream.Consumer, last uint64) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	in.fail = cancel
	fetchC := make(chan fetched, 2)
	commitC := make(chan checked, commitQueue)
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
	if err == nil {
		// A stage that failed (fetch: a consumer taken by another
		// auditor) cancelled with its error.
		if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
			err = cause
		}
	}
	return err
}

// fetch pulls batches in sequence order, each bounded by count and by
// bytes, and waits while more than the in-flight budget of fetched bodies
// is still to be committed. A message past the next expected sequence
// means a gap: either the stream no longer holds the sequences in between
// (expired, purged, discarded, deleted), or messages were delivered and
// lost on the way (a cut connection, a slow-consumer cut-off): the server
// would redeliver them only after the ack wait, behind newer ones. The
// stream is asked which, every time. When it still holds one, the
// consumer starts again at the first missing sequence and what was fetched
// past it is dropped; when it says they are gone, they become a gap
// record. When it cannot be asked, nothing is skipped: the consumer starts
// again at the first missing one, after a pause.
func (in *ingester) fetch(ctx context.Context, cons jetstream.Consumer, last uint64, out chan<- fetched) {
	expect := last + 1
	backoff := 100 * time.Millisecond
	var restartedAt uint64 // the consumer was last started again at this sequence
	for ctx.Err() == nil {
		if !in.budget.wait(ctx, in.fetchBytes) {
			return
		}
		b, err := cons.Fetch(in.o.Batch, jetstream.FetchMaxWait(in.o.FetchWait), jetstream.FetchMaxBytes(in.fetchBytes))
		var f fetched
		restart := false
		if err == nil {
			f.msgs = make([]jetstream.Msg, 0, min(in.o.Batch, 64))
			f.mds = make([]*jetstream.MsgMetadata, 0, min(in.o.Batch, 64))
			for m := range b.Messages() {
				if in.o.lose != nil && in.o.lose(m) {
					continue
				}
				md, merr := m.Metadata()
				if merr != nil { // passed on: decide logs and skips it
					f.msgs, f.mds = append(f.msgs, m), append(f.mds, nil)
					f.size += len(m.Data())
					continue
				}
				seq := md.Sequence.Stream
				if seq > expect {
					g, held, aerr := in.askGap(ctx, expect, seq)
					if aerr != nil || held != 0 {
						if aerr != nil {
							in.log.Warn("cannot ask the stream about missing sequences; reading again from the first one",
								"first_missing", expect, "received", seq, "err", aerr)
						} else {
							in.log.Warn("messages were delivered but not received; reading again from the first missing one",
								"first_missing", expect, "stream_holds", held, "received", seq)
						}
						restart = true
						break
					}
					if g != nil {
						in.log.Warn("stream sequences gone before the auditor read them: recorded as a gap",
							"first", g.First, "last", g.Last, "stream_said", g.Said)
						f.gaps = append(f.gaps, *g)
					}
				}
				expect = max(expect, seq+1)
				f.msgs, f.mds = append(f.msgs, m), append(f.mds, md)
				f.size += len(m.Data())
			}
			if err == nil {
				err = b.Error()
			}
		}
		if len(f.msgs) > 0 || len(f.gaps) > 0 || (err == nil && !restart) {
			in.budget.take(f.size)
			if in.o.Metrics != nil {
				in.fetchMetrics(&f, err == nil && !restart)
			}
			select {
			case out <- f:
			case <-ctx.Done():
				return
			}
		}
		if restart {
			if restartedAt == expect && !sleepCtx(ctx, backoff) {
				return
			}
			if restartedAt == expect {
				backoff = min(2*backoff, 5*time.Second)
			}
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
		if errors.Is(err, jetstream.ErrMaxBytesExceeded) && in.fetchBytes < maxFetchBytes {
			// A message larger than a whole fetch (a stream allowing
			// larger messages than it says): fetch more at once.
			in.fetchBytes = min(2*in.fetchBytes, maxFetchBytes)
			in.log.Warn("a message is larger than one fetch; fetching more bytes at once", "fetch_bytes", in.fetchBytes)
			continue
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
		if errors.Is(err, ErrConsumerTaken) {
			in.fail(err)
			return
		}
		in.log.Warn("fetch failed, retrying", "err", err)
		if !sleepCtx(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// fetchMetrics reports a fetch, before its batch is passed on (so that
// what is committed never passes what was fetched); ok when it succeeded
// and the connection is up, so that pending is what the server said.
func (in *ingester) fetchMetrics(f *fetched, ok bool) {
	var first time.Time
	var pending uint64
	// The first and the last message with metadata (all of them, but for
	// a message the server sent without): a look at each end, not a walk.
	for _, md := range f.mds {
		if md != nil {
			first = md.Timestamp
			break
		}
	}
	for i := len(f.mds) - 1; i >= 0; i-- {
		if md := f.mds[i]; md != nil {
			pending = md.NumPending
			break
		}
	}
	in.o.Metrics.Fetched(len(f.msgs), first, pending, ok && in.o.Conn.NATS().IsConnected())
}

// askGap asks the stream about sequences from up to (not including) got,
// which the consumer passed over. It returns held, the first of them the
// stream still holds on the auditor's subjects (the message was lost on
// the way), or else the gap to record: nil when the sequences were never
// the auditor's (a stream that also captures other subjects). An error
// means the stream could not be asked.
func (in *ingester) askGap(ctx context.Context, from, got uint64) (gap *audit.Gap, held uint64, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	subjects := in.o.Stream.Root + ".>"
	m, err := in.stream.GetMsg(ctx, from, jetstream.WithGetMsgSubject(subjects))
	var next string
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		next = fmt.Sprintf("no message on %s at or after seq %d", subjects, from)
	case err != nil:
		return nil, 0, err
	case m.Sequence < got:
		return nil, m.Sequence, nil
	default:
		next = fmt.Sprintf("the next message on %s is seq %d", subjects, m.Sequence)
	}
	info, err := in.stream.Info(ctx)
	if err != nil {
		return nil, 0, err
	}
	first := info.State.FirstSeq
	narrow := info.Config.Mirror == nil && len(info.Config.Sources) == 0 &&
		slices.Equal(info.Config.Subjects, []string{subjects})
	last := got - 1
	if !narrow {
		// Sequences on the stream's other subjects were never the
		// auditor's: only those below the stream's first sequence are
		// known to be gone.
		if first <= from {
			in.log.Debug("stream sequences on other subjects passed over", "first", from, "last", last)
			return nil, 0, nil
		}
		last = min(last, first-1)
	}
	return &audit.Gap{First: from, Last: last, Seen: time.Now(),
		Said: fmt.Sprintf("%s; its first sequence is %d (%d messages held)", next, first, info.State.Msgs)}, 0, nil
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
		gaps  []audit.Entry
		done  *sync.WaitGroup
	}
	pendC := make(chan pending, 2)
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for p := range pendC {
			p.done.Wait()
			p.c.entries = make([]audit.Entry, len(p.items), len(p.items)+len(p.gaps))
			for i, it := range p.items {
				p.c.entries[i] = it.entry
			}
			if len(p.gaps) > 0 {
				p.c.entries = append(p.c.entries, p.gaps...)
				slices.SortStableFunc(p.c.entries, func(a, b audit.Entry) int { return cmp.Compare(a.Seq, b.Seq) })
			}
			in.sealer.Seal(p.c.entries)
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
		c := checked{fetched: len(f.msgs), msgs: len(f.msgs), size: f.size}
		var gaps []audit.Entry
		for i := range f.gaps {
			g := &f.gaps[i]
			if g.Last > last {
				gaps = append(gaps, audit.Entry{Seq: g.Last, Gap: g})
			}
		}
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
		for _, g := range gaps {
			last = max(last, g.Seq)
		}
		p := pending{c: c, items: items, gaps: gaps, done: in.pool.submit(items)}
		select {
		case pendC <- p:
		case <-ctx.Done():
			return
		}
	}
}

// commit writes each batch, then acks it.
func (in *ingester) commit(ctx context.Context, inC <-chan checked) error {
	var total audit.AppendResult
	lastLog := time.Now()
	var sinceGC int
	for c := range inC {
		began := time.Now()
		// Group commit: batches already checked while the last one was
		// written go into one transaction (one fsync) with it, so that a
		// backlog of cheap messages (a flood of refusals) is not bound
		// by one fsync per fetch.
		for open := true; open && len(c.entries) < maxCommitEntries; {
			select {
			case more, ok := <-inC:
				if !ok {
					open = false
					break
				}
				c.entries = append(c.entries, more.entries...)
				c.size += more.size
				c.msgs += more.msgs
				c.fetched = more.fetched // caught up or not: as of the last fetch
				if more.ack != nil {
					c.ack = more.ack
				}
			default:
				open = false
			}
		}
		var res audit.AppendResult
		var took time.Duration
		if len(c.entries) > 0 {
			s, err := in.w.open(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil // shutting down: the batch is redelivered
				}
				return err
			}
			appendBegan := time.Now()
			res, err = s.Append(c.entries)
			if err != nil {
				return fmt.Errorf("write %s: %w", in.o.DB, err)
			}
			if in.o.afterAppend != nil {
				in.o.afterAppend()
			}
			took = time.Since(appendBegan)
			total.Accepted += res.Accepted
			total.Rejected += res.Rejected
			total.Skipped += res.Skipped
			total.Evicted += res.Evicted
			total.Gaps += res.Gaps
			total.Last = res.Last
			if res.Rejected > 0 {
				in.logRefused(c.entries)
			}
		}
		if c.ack != nil {
			if err := c.ack.Ack(); err != nil {
				in.log.Warn("ack failed; the batch will be redelivered and skipped", "err", err)
			}
		}
		if len(c.entries) > 0 && in.o.OnCommit != nil {
			in.o.OnCommit(CommitInfo{AppendResult: res, Fetched: c.fetched, Busy: time.Since(began)})
		}
		in.o.Metrics.Committed(c.msgs, c.entries, res, took)
		c.entries = nil
		in.budget.give(c.size)
		// Large messages are large garbage once committed: with the
		// collector's target well above the live heap (remaphore-audit
		// run sets GOGC=400 for the small-message rate), a flood of 1 MB
		// messages would let hundreds of MB of dead bodies pile up. A
		// collection after every gcEveryBytes of bodies bounds that; for
		// small messages it is one more collection per ~50,000 messages.
		if sinceGC += c.size; sinceGC >= gcEveryBytes {
			sinceGC = 0
			runtime.GC()
		}
		switch {
		case c.fetched < in.o.Batch && c.size < in.fetchBytes/2:
			in.w.close() // caught up: let readers in
		case in.w.held() > in.o.HoldMax:
			in.w.close()
			sleepCtx(ctx, yieldPause)
		}
		if time.Since(lastLog) >= 10*time.Second && total.Accepted+total.Rejected+total.Gaps > 0 {
			in.log.Info("ingested", "accepted", total.Accepted, "rejected", total.Rejected,
				"evicted", total.Evicted, "gaps", total.Gaps, "last_seq", total.Last)
			total, lastLog = audit.AppendResult{}, time.Now()
		}
	}
	return nil
}

// logRefused logs a batch's refusals: each at debug level, and one
// warning per batch with the count by reason (a flood of forged messages
// makes one line per batch, not one per message).
func (in *ingester) logRefused(entries []audit.Entry) {
	reasons := map[string]int{}
	var first *audit.Entry
	// Checked once: the arguments of a Debug call are boxed whether or
	// not it logs, three allocations per refused message of a flood, in
	// the single writer's goroutine.
	debug := in.log.Enabled(context.Background(), slog.LevelDebug)
	for i := range entries {
		e := &entries[i]
		if e.Reason == policy.ReasonAccepted {
			continue
		}
		if first == nil {
			first = e
		}
		reasons[e.Reason.String()]++
		if debug {
			in.log.Debug("refused", "seq", e.Seq, "subject", e.Subject, "reason", e.Reason.String(), "detail", e.Detail)
		}
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
	opts   audit.Options
	log    *slog.Logger
	s      *audit.Store
	opened time.Time
}

func (w *writer) open(ctx context.Context) (*audit.Store, error) {
	if w.s != nil {
		return w.s, nil
	}
	o := w.opts
	if o.Timeout <= 0 {
		o.Timeout = audit.DefaultTimeout
	}
	for {
		s, err := audit.Open(w.path, o)
		if err == nil {
			w.s, w.opened = s, time.Now()
			return s, nil
		}
		if !errors.Is(err, audit.ErrBusy) || ctx.Err() != nil {
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

// Fetch bounds. A fetch asks for at most Batch messages and at most
// fetchBytes of them, far below what the server lets a client have
// pending (64 MiB) before it cuts it off as a slow consumer; the bodies
// fetched and not yet committed are bounded by inFlightFetches fetches,
// so that a flood of large messages holds a few tens of MiB, not a
// backlog's worth.
const (
	DefaultFetchBytes = 4 << 20
	gcEveryBytes      = 16 << 20
	// commitQueue is how many checked batches may wait for the writer,
	// and maxCommitEntries bounds a group commit. A commit costs two
	// fsyncs whatever its size (a few hundred µs here, milliseconds on
	// many cloud and network disks): when the writer falls behind, the
	// batches that queue up meanwhile go into its next transaction, so
	// that the slower the disk the larger the commits, and the fsyncs per
	// message fall instead of capping the rate. The queue's bodies stay
	// within the in-flight byte budget.
	commitQueue      = 16
	maxCommitEntries = commitQueue * DefaultBatch
	maxFetchBytes    = 32 << 20
	inFlightFetches  = 4
)

// byteBudget bounds the bytes fetched and not yet committed.
type byteBudget struct {
	mu    sync.Mutex
	cond  *sync.Cond
	used  int
	limit int
}

func newByteBudget(limit int) *byteBudget {
	b := &byteBudget{limit: limit}
	b.cond = sync.NewCond(&b.mu)
	return b
}

// wait returns once at least room bytes are free (or nothing is in
// flight), false when ctx is done first.
func (b *byteBudget) wait(ctx context.Context, room int) bool {
	stop := context.AfterFunc(ctx, func() {
		b.mu.Lock()
		b.cond.Broadcast()
		b.mu.Unlock()
	})
	defer stop()
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.used > 0 && b.used+room > b.limit && ctx.Err() == nil {
		b.cond.Wait()
	}
	return ctx.Err() == nil
}

func (b *byteBudget) take(n int) {
	b.mu.Lock()
	b.used += n
	b.mu.Unlock()
}

func (b *byteBudget) give(n int) {
	b.mu.Lock()
	b.used -= n
	b.cond.Broadcast()
	b.mu.Unlock()
}
