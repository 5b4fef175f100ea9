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
	onConn []func()        // called after each reconnect
	ok     map[string]bool // streams checked on this connection
	warned map[string]bool // "stream setting" warnings already logged
}

// NATS returns the underlying connection.
func (c *Conn) NATS() *nats.Conn { return c.nc }

// JetStream returns the JetStream context.
func (c *Conn) JetStream() jetstream.JetStream { return c.js }

// Close drains nothing: remaphore has published and acked all it needs.
func (c *Conn) Close() { c.nc.Close() }

// IsMaxPayload reports whether err is a publish the server refused for
// its max_payload.
func IsMaxPayload(err error) bool { return errors.Is(err, nats.ErrMaxPayload) }

// IsRefused reports whether err is a server's refusal of the credentials
// (an unknown, expired or revoked user) rather than a server not reached.
func IsRefused(err error) bool {
	return errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) || errors.Is(err, nats.ErrAuthRevoked)
}

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
	// What errors and logs show: a password or token in a server URL
	// never appears (the config's author wrote it; a log reader may not
	// be allowed to see it).
	shown := RedactURLs(o.Servers)
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		nc, err := dial(ctx, url, opts)
		if err == nil {
			c.nc = nc
			break
		}
		if IsRefused(err) {
			return nil, fmt.Errorf("%w: %s refused the credentials in %s: %w", ErrConnect, shown, o.Credentials, err)
		}
		if !o.Retry || ctx.Err() != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrConnect, shown, err)
		}
		log.Warn("cannot connect, retrying", "servers", shown, "attempt", attempt, "err", err)
		if !sleep(ctx, jitter(backoff)) {
			// The cause says why, once: the caller's timeout or a signal.
			return nil, fmt.Errorf("%w: %s: %v (gave up: %v)", ErrConnect, shown, err, context.Cause(ctx))
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
		return nil, cutShort{context.Cause(ctx)} // why it was cut short: a timeout, a signal
	}
}

// cutShort is a dial that its context ended before the server answered
// (or failed to): it says nothing about the server. Its message is the
// context's cause.
type cutShort struct{ cause error }

func (e cutShort) Error() string { return e.cause.Error() }
func (e cutShort) Unwrap() error { return e.cause }

// IsCutShort reports whether err is a connection attempt the caller's
// context (a timeout, a signal) ended before the server answered.
func IsCutShort(err error) bool {
	var c cutShort
	return errors.As(err, &c)
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
				c.log.Warn("disconnected from NATS", "server", RedactURL(nc.ConnectedUrl()), "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			c.log.Info("reconnected to NATS", "server", RedactURL(nc.ConnectedUrl()))
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

// checked reports whether EnsureStream accepted the named stream on this
// connection.
func (c *Conn) checked(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ok[name]
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
// not capture <root>.> is ErrStreamMismatch, and with spec.MinDuplicates
// set one weaker than spec is ErrStreamWeak (see StreamSpec). A server
// without JetStream for the account is ErrNoJetStream, at once.
func (c *Conn) EnsureStream(ctx context.Context, spec StreamSpec) (jetstream.Stream, error) {
	name := spec.name()
	s, err := c.js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = c.createStream(ctx, spec)
	}
	if err != nil {
		var se *StreamError
		if errors.As(err, &se) {
			return nil, err
		}
		if noJetStream(err) {
			return nil, noJSError{fmt.Errorf("%w: %s has no JetStream for this account (enable jetstream in the server's config): %w", ErrJetStream, RedactURL(c.nc.ConnectedUrl()), err)}
		}
		return nil, fmt.Errorf("%w: stream %s: %w", ErrJetStream, name, err)
	}
	cfg := s.CachedInfo().Config
	if err := checkStream(cfg, spec); err != nil {
		return nil, err
	}
	if cfg.Mirror != nil && spec.MinDuplicates > 0 && cfg.Mirror.External == nil && cfg.Mirror.Domain == "" {
		// The origin is in this account's domain: the messages a mirror
		// holds were deduplicated (or not) there.
		if o, err := c.js.Stream(ctx, cfg.Mirror.Name); err == nil {
			if err := checkStream(o.CachedInfo().Config, StreamSpec{Root: spec.Root, Name: cfg.Mirror.Name,
				MinDuplicates: spec.MinDuplicates, MaxMsgSize: spec.MaxMsgSize}); err != nil {
				return nil, err
			}
		}
	}
	if spec.MinDuplicates > 0 && cfg.Mirror == nil {
		c.warnDiffers(cfg, spec)
	}
	c.mu.Lock()
	if c.ok == nil {
		c.ok = map[string]bool{}
	}
	c.ok[name] = true
	c.mu.Unlock()
	return s, nil
}

// noJetStream reports an error that says nobody serves the JetStream API
// for this account: the server has JetStream off, or the account has none.
// A retry does not help; during a leader election the API times out
// instead, which is retried.
func noJetStream(err error) bool {
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrJetStreamNotEnabled) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount)
}

// noJSError matches ErrNoJetStream without repeating it in the text.
type noJSError struct{ error }

func (noJSError) Is(target error) bool { return target == ErrNoJetStream }
func (e noJSError) Unwrap() error      { return e.error }

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
		MaxBytes:     spec.MaxBytes,
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = -1 // NATS's "no limit"
	}
	s, err := c.js.CreateStream(ctx, cfg)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		// Another process created it first: use theirs.
		return c.js.Stream(ctx, cfg.Name)
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode == 10047 || apiErr.ErrorCode == 10023) {
		// The server's (or the account's) JetStream storage is smaller
		// than the stream's byte limit: no retry helps.
		return nil, &StreamError{Stream: cfg.Name, Setting: "max_bytes", kind: ErrStreamLimits,
			Msg: fmt.Sprintf("the server cannot reserve max_bytes %d bytes (x%d replicas) for it: %s", cfg.MaxBytes, cfg.Replicas, apiErr.Description),
			Fix: "lower max_bytes in the config, or give JetStream more storage (max_file in the server's jetstream block, or the account's limit)"}
	}
	if err == nil {
		c.log.Info("created stream", "stream", cfg.Name, "subjects", cfg.Subjects, "replicas", cfg.Replicas, "max_age", cfg.MaxAge,
			"max_bytes", cfg.MaxBytes, "max_msg_size", cfg.MaxMsgSize, "duplicate_window", cfg.Duplicates)
	}
	return s, err
}

// checkStream refuses an existing stream that does not capture the root's
// subjects, and, when spec.MinDuplicates is set, one weaker than spec.
func checkStream(cfg jetstream.StreamConfig, spec StreamSpec) error {
	root := spec.Root
	streamErr := func(kind error, setting, msg, fix string) error {
		return &StreamError{Stream: cfg.Name, Setting: setting, Msg: msg, Fix: fix, kind: kind}
	}
	if m := cfg.Mirror; m != nil {
		// A mirror (a leaf node's local copy) has no subjects of its own
		// but holds the messages under their original subjects: receivers
		// may consume from it, when it copies the root's stream whole.
		want := StreamName(root)
		if spec.MinDuplicates > 0 && m.Name != want {
			return streamErr(ErrStreamWeak, "mirror", fmt.Sprintf("is a mirror of stream %s, not of %s (the stream of subject %s)", m.Name, want, root),
				fmt.Sprintf("set stream: in the config to a mirror of %s, or remove the line to use %s itself", want, want))
		}
		if spec.MinDuplicates > 0 && (m.FilterSubject != "" && m.FilterSubject != root+".>" || len(m.SubjectTransforms) > 0) {
			return streamErr(ErrStreamWeak, "mirror", fmt.Sprintf("mirrors only part of %s, or rewrites its subjects", m.Name),
				fmt.Sprintf("mirror %s whole: no filter subject and no subject transforms", m.Name))
		}
		return nil
	}
	covered := false
	for _, s := range cfg.Subjects {
		if s == root+".>" || s == ">" {
			covered = true
		}
	}
	if !covered {
		return streamErr(ErrStreamMismatch, "subjects", fmt.Sprintf("captures %v, not %s.>", cfg.Subjects, root),
			fmt.Sprintf("set stream: in the config to another name, or add the subjects: nats stream edit %s --subjects '%s.>'", cfg.Name, root))
	}
	if spec.MinDuplicates <= 0 {
		return nil
	}
	if cfg.Duplicates < spec.MinDuplicates {
		return streamErr(ErrStreamWeak, "duplicate_window",
			fmt.Sprintf("duplicate window %s is shorter than allow_skew needs (%s = 2*allow_skew + 1m): a captured message published again after %s would be stored and delivered again",
				cfg.Duplicates, spec.MinDuplicates, cfg.Duplicates),
			fmt.Sprintf("nats stream edit %s --dupe-window %s", cfg.Name, max(spec.Duplicates, spec.MinDuplicates)))
	}
	if spec.MaxMsgSize > 0 && (cfg.MaxMsgSize <= 0 || cfg.MaxMsgSize > spec.MaxMsgSize) {
		have := "unlimited"
		if cfg.MaxMsgSize > 0 {
			have = fmt.Sprintf("%d bytes", cfg.MaxMsgSize)
		}
		return streamErr(ErrStreamWeak, "max_msg_size",
			fmt.Sprintf("message size limit is %s, more than the %d bytes a remaphore message can be: anyone who may publish can fill it with larger junk", have, spec.MaxMsgSize),
			fmt.Sprintf("nats stream edit %s --max-msg-size %d", cfg.Name, spec.MaxMsgSize))
	}
	return nil
}

// warnDiffers logs once per setting the ones of an existing stream that
// differ from the config's (those spec.Stated names): the stream is used
// as it is.
func (c *Conn) warnDiffers(cfg jetstream.StreamConfig, spec StreamSpec) {
	type diff struct {
		key, setting, flag string
		have, want         string
	}
	var ds []diff
	if spec.MaxAge > 0 && cfg.MaxAge != spec.MaxAge {
		ds = append(ds, diff{"retention", "max_age", "--max-age", cfg.MaxAge.String(), spec.MaxAge.String()})
	}
	if want := max(spec.Replicas, 1); cfg.Replicas != want {
		ds = append(ds, diff{"replicas", "replicas", "--replicas", fmt.Sprint(cfg.Replicas), fmt.Sprint(want)})
	}
	if spec.MaxConsumers > 0 && cfg.MaxConsumers != spec.MaxConsumers {
		ds = append(ds, diff{"max_consumers", "max_consumers", "--max-consumers", fmt.Sprint(cfg.MaxConsumers), fmt.Sprint(spec.MaxConsumers)})
	}
	if spec.MaxBytes > 0 && cfg.MaxBytes != spec.MaxBytes {
		ds = append(ds, diff{"max_bytes", "max_bytes", "--max-bytes", fmt.Sprint(cfg.MaxBytes), fmt.Sprint(spec.MaxBytes)})
	}
	for _, d := range ds {
		if spec.Stated != nil && !spec.Stated[d.key] {
			continue
		}
		k := cfg.Name + " " + d.setting
		c.mu.Lock()
		seen := c.warned[k]
		if c.warned == nil {
			c.warned = map[string]bool{}
		}
		c.warned[k] = true
		c.mu.Unlock()
		if seen {
			continue
		}
		c.log.Warn("the existing stream's "+d.setting+" differs from the config's "+d.key+"; the stream is used as it is",
			"stream", cfg.Name, "stream_value", d.have, "config_value", d.want,
			"fix", fmt.Sprintf("nats stream edit %s %s %s", cfg.Name, d.flag, d.want))
	}
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
	if spec.MinDuplicates > 0 && !c.checked(spec.name()) {
		// A stream someone set up in advance with weaker settings is
		// refused before anything is stored in it (a requester and a
		// responder checked it already, when they subscribed).
		actx, cancel := context.WithTimeout(ctx, publishAttempt)
		_, err := c.EnsureStream(actx, spec)
		cancel()
		switch {
		case err == nil:
			ensured = true
		case errors.Is(err, ErrStreamMismatch), errors.Is(err, ErrStreamWeak), errors.Is(err, ErrStreamLimits), errors.Is(err, ErrNoJetStream):
			return 0, err
		}
		// Anything else (a leader election's timeout): publish anyway,
		// as below, retrying until ctx is done.
	}
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
		if errors.Is(err, nats.ErrMaxPayload) {
			return 0, fmt.Errorf("%w: publish to %s: the message (%d bytes and its headers) is larger than the server's max_payload of %d bytes: %w",
				ErrJetStream, subject, len(body), c.nc.MaxPayload(), err)
		}
		if errors.Is(err, nats.ErrConnectionClosed) || ctx.Err() != nil {
			break
		}
		if !ensured && (errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders)) {
			// No stream captures the subject yet, or its leader is
			// being elected: create it if it is missing.
			actx, cancel := context.WithTimeout(ctx, publishAttempt)
			_, serr := c.EnsureStream(actx, spec)
			cancel()
			if errors.Is(serr, ErrStreamMismatch) || errors.Is(serr, ErrStreamWeak) || errors.Is(serr, ErrStreamLimits) || errors.Is(serr, ErrNoJetStream) {
				return 0, serr
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
