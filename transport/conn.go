package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Options say how to connect.
type Options struct {
	Servers     []string // failover order
	Credentials string   // path of a .creds file or an nkey seed file
	TLSCA       string
	TLSCert     string
	TLSKey      string
	Name        string // client name shown by the server
	// Retry keeps dialing until ctx is done (receivers with -t). Without it
	// Connect tries each server once, each within DialTimeout.
	Retry bool
	// DialTimeout bounds one attempt on one server (default 2s).
	DialTimeout time.Duration
	Logger      *slog.Logger
}

// Conn is a NATS connection with its JetStream context.
type Conn struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	log    *slog.Logger
	mu     sync.Mutex
	onConn []func() // called after each reconnect
}

// NATS returns the underlying connection.
func (c *Conn) NATS() *nats.Conn { return c.nc }

// JetStream returns the JetStream context.
func (c *Conn) JetStream() jetstream.JetStream { return c.js }

// Close drains nothing: remaphore has published and acked all it needs.
func (c *Conn) Close() { c.nc.Close() }

// Connect dials the servers in order. Its error names the servers tried
// and matches ErrConnect or ErrCredentials.
func Connect(ctx context.Context, o Options) (*Conn, error) {
	if len(o.Servers) == 0 {
		return nil, fmt.Errorf("%w: no server configured", ErrConnect)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Conn{log: log}
	opts, err := natsOptions(o, c)
	if err != nil {
		return nil, err
	}
	url := strings.Join(o.Servers, ",")
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		nc, err := dial(ctx, url, opts)
		if err == nil {
			c.nc = nc
			break
		}
		if errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) || errors.Is(err, nats.ErrAuthRevoked) {
			return nil, fmt.Errorf("%w: %s refused the credentials in %s: %v", ErrConnect, strings.Join(o.Servers, ", "), o.Credentials, err)
		}
		if !o.Retry || ctx.Err() != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrConnect, strings.Join(o.Servers, ", "), err)
		}
		log.Warn("cannot connect, retrying", "servers", url, "attempt", attempt, "err", err)
		if !sleep(ctx, jitter(backoff)) {
			return nil, fmt.Errorf("%w: %s: %v (gave up at the timeout)", ErrConnect, strings.Join(o.Servers, ", "), err)
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	js, err := jetstream.New(c.nc)
	if err != nil {
		c.nc.Close()
		return nil, fmt.Errorf("%w: %v", ErrJetStream, err)
	}
	c.js = js
	return c, nil
}

// dial runs nats.Connect so that ctx can cut it short; nats.Connect itself
// is bounded by the per-server timeout.
func dial(ctx context.Context, url string, opts []nats.Option) (*nats.Conn, error) {
	type result struct {
		nc  *nats.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(url, opts...)
		ch <- result{nc, err}
	}()
	select {
	case r := <-ch:
		return r.nc, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

func natsOptions(o Options, c *Conn) ([]nats.Option, error) {
	timeout := o.DialTimeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.Timeout(timeout),
		nats.DontRandomize(), // the configured order is the failover order
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		nats.NoCallbacksAfterClientClose(),
		// Notice a dead connection (a network cut, an address change) in
		// about 20 s instead of the client default of minutes.
		nats.PingInterval(10 * time.Second),
		nats.MaxPingsOutstanding(2),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if err != nil {
				c.log.Warn("disconnected from NATS", "server", nc.ConnectedUrlRedacted(), "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			c.log.Info("reconnected to NATS", "server", nc.ConnectedUrlRedacted())
			c.mu.Lock()
			fns := append([]func(){}, c.onConn...)
			c.mu.Unlock()
			for _, f := range fns {
				f()
			}
		}),
		nats.ErrorHandler(func(nc *nats.Conn, s *nats.Subscription, err error) {
			c.log.Warn("NATS error", "err", err)
		}),
	}
	if o.Credentials != "" {
		opt, err := credentialsOption(o.Credentials)
		if err != nil {
			return nil, err
		}
		opts = append(opts, opt)
	}
	if o.TLSCA != "" {
		opts = append(opts, nats.RootCAs(o.TLSCA))
	}
	if o.TLSCert != "" || o.TLSKey != "" {
		opts = append(opts, nats.ClientCert(o.TLSCert, o.TLSKey))
	}
	return opts, nil
}

// credentialsOption reads a .creds file (user JWT and seed) or a file that
// holds only an nkey user seed.
func credentialsOption(path string) (nats.Option, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v (set credentials: in the config to a NATS .creds or nkey seed file)", ErrCredentials, err)
	}
	switch {
	case bytes.Contains(data, []byte("BEGIN NATS USER JWT")):
		return nats.UserCredentials(path), nil
	case bytes.Contains(data, []byte("SU")):
		opt, err := nats.NkeyOptionFromSeed(path)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrCredentials, path, err)
		}
		return opt, nil
	}
	return nil, fmt.Errorf("%w: %s holds neither a user JWT (.creds) nor an nkey user seed (SU…)", ErrCredentials, path)
}

func (c *Conn) onReconnect(f func()) (remove func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onConn = append(c.onConn, f)
	i := len(c.onConn) - 1
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.onConn[i] = func() {}
	}
}

// EnsureStream returns the stream for spec, creating it when missing.
// An existing stream is used as it is, never updated; one whose subjects do
// not capture <root>.> is ErrStreamMismatch.
func (c *Conn) EnsureStream(ctx context.Context, spec StreamSpec) (jetstream.Stream, error) {
	name := spec.name()
	s, err := c.js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = c.createStream(ctx, spec)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: stream %s: %w", ErrJetStream, name, err)
	}
	if err := checkSubjects(s.CachedInfo().Config, spec.Root); err != nil {
		return nil, err
	}
	return s, nil
}

func (c *Conn) createStream(ctx context.Context, spec StreamSpec) (jetstream.Stream, error) {
	cfg := jetstream.StreamConfig{
		Name:         spec.name(),
		Description:  "remaphore messages and replies",
		Subjects:     []string{spec.Root + ".>"},
		Storage:      jetstream.FileStorage,
		Retention:    jetstream.LimitsPolicy,
		Discard:      jetstream.DiscardOld,
		MaxAge:       spec.MaxAge,
		Duplicates:   spec.Duplicates,
		Replicas:     max(spec.Replicas, 1),
		MaxConsumers: spec.MaxConsumers,
		MaxMsgSize:   spec.MaxMsgSize,
	}
	s, err := c.js.CreateStream(ctx, cfg)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		// Another process created it first: use theirs.
		return c.js.Stream(ctx, cfg.Name)
	}
	if err == nil {
		c.log.Info("created stream", "stream", cfg.Name, "subjects", cfg.Subjects, "replicas", cfg.Replicas, "max_age", cfg.MaxAge)
	}
	return s, err
}

func checkSubjects(cfg jetstream.StreamConfig, root string) error {
	// A mirror or a sourced copy of the stream (a leaf node's local copy)
	// has no subjects of its own but holds the messages under their
	// original subjects: receivers may consume from it.
	if cfg.Mirror != nil || len(cfg.Sources) > 0 {
		return nil
	}
	for _, s := range cfg.Subjects {
		if s == root+".>" || s == ">" {
			return nil
		}
	}
	return fmt.Errorf("%w: stream %s captures %v, not %s.> (set stream: in the config to another name, or fix the stream's subjects)", ErrStreamMismatch, cfg.Name, cfg.Subjects, root)
}

// publishAttempt bounds one publish attempt. A stream whose leader is
// being elected (its server just died) does not answer for a few seconds;
// a short attempt retried until the caller's deadline gets through as soon
// as the new leader is up.
const publishAttempt = 2 * time.Second

// Publish stores body on subject with id as Nats-Msg-Id and returns the
// stream sequence once the stream has acknowledged it. When no stream
// captures the subject yet, it creates the stream. A publish that is not
// acknowledged is retried with the same id until ctx is done; the stream's
// duplicate window makes that safe, and a duplicate on a retry is the
// earlier attempt, stored but unacknowledged. Whichever stream captures the
// subject answers: with spec naming a local mirror (a leaf node), that is
// the hub's stream.
func (c *Conn) Publish(ctx context.Context, spec StreamSpec, subject string, body []byte, id string) (uint64, error) {
	msg := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, id)
	ensured := false
	backoff := 100 * time.Millisecond
	var lastErr error
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, publishAttempt)
		ack, err := c.js.PublishMsg(actx, msg)
		cancel()
		if err == nil {
			if ack.Duplicate && attempt == 1 {
				return ack.Sequence, fmt.Errorf("%w: the stream already holds message %s (a duplicate)", ErrJetStream, id)
			}
			return ack.Sequence, nil
		}
		lastErr = err
		if perr := c.refused(subject); perr != nil {
			return 0, perr
		}
		if errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, nats.ErrConnectionClosed) || ctx.Err() != nil {
			break
		}
		if !ensured && (errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders)) {
			// No stream captures the subject yet, or its leader is
			// being elected: create it if it is missing.
			actx, cancel := context.WithTimeout(ctx, publishAttempt)
			_, serr := c.EnsureStream(actx, spec)
			cancel()
			if errors.Is(serr, ErrStreamMismatch) {
				return 0, serr
			}
			if errors.Is(serr, nats.ErrNoResponders) || errors.Is(serr, jetstream.ErrJetStreamNotEnabled) || errors.Is(serr, jetstream.ErrJetStreamNotEnabledForAccount) {
				// Nobody answers the JetStream API itself.
				return 0, fmt.Errorf("%w: %s has no JetStream for this account (enable jetstream in the server's config): %v", ErrJetStream, c.nc.ConnectedUrlRedacted(), serr)
			}
			if serr == nil {
				ensured = true
				continue
			}
			if perr := c.refused(apiStreamCreate + spec.name()); perr != nil {
				return 0, fmt.Errorf("%w; stream %s does not exist yet, and only the auditor or an admin creates it", perr, spec.name())
			}
			lastErr = serr
		}
		c.log.Warn("publish not acknowledged yet, retrying", "subject", subject, "attempt", attempt, "err", lastErr)
		if !sleep(ctx, jitter(backoff)) {
			break
		}
		backoff = min(2*backoff, time.Second)
	}
	return 0, fmt.Errorf("%w: publish to %s: %v", ErrJetStream, subject, lastErr)
}

func jitter(d time.Duration) time.Duration {
	return d/2 + time.Duration(rand.Int64N(int64(d)))
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
