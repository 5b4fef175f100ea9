package auditcli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"reflect"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/remaphore/remaphore/audit"
	"github.com/remaphore/remaphore/audit/ingest"
	"github.com/remaphore/remaphore/audit/metrics"
	"github.com/remaphore/remaphore/config"
	"github.com/remaphore/remaphore/internal/exitcode"
	"github.com/remaphore/remaphore/node"
	"github.com/remaphore/remaphore/policy"
)

// cmdRun is the auditor: it reads the stream into the database until
// ctx is done (SIGINT, SIGTERM).
func cmdRun(ctx context.Context, args []string, _, stderr io.Writer) (int, error) {
	return ExitOK, runAuditor(ctx, args, stderr)
}

// runAuditor parses run's flags and runs the auditor until ctx is done.
func runAuditor(ctx context.Context, args []string, stderr io.Writer) error {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(ingest.GCPercent)
	}
	// SIGHUP re-reads the config (see reloader); caught from the start so
	// that one sent while the auditor starts does not kill it.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	c := newFlags("run", synopses["run"], stderr, "info")
	name := c.fs.String("name", "", "durable consumer `name` (default: remaphore-audit-HOST-HASH, from the host and the database file's path, so that each auditor has its own)")
	maxRejected := c.fs.Int("max-rejected", audit.DefaultMaxRejected, "most refused records kept; the oldest are evicted first")
	maxRejectedBytes := c.fs.Int64("max-rejected-bytes", 0, "most `bytes` the refused records may take; the oldest are evicted first (default: audit_refused_max_bytes from the config, else 268435456)")
	batch := c.fs.Int("batch", ingest.DefaultBatch, "most messages fetched and committed at once")
	metricsAddr := c.fs.String("metrics", "", "serve Prometheus metrics (/metrics) and a health check (/healthz) on `ADDR`, HOST:PORT like 127.0.0.1:9464 (default: audit_metrics from the config, else none)")
	if err := c.parse(args); err != nil {
		return err
	}
	switch {
	case *maxRejected < 1:
		return usageErr("", "-max-rejected %d: must be at least 1", *maxRejected)
	case *maxRejectedBytes != 0 && *maxRejectedBytes < 1<<20:
		return usageErr("", "-max-rejected-bytes %d: must be at least 1048576 (1 MiB)", *maxRejectedBytes)
	case *batch < 1 || *batch > 10000:
		return usageErr("", "-batch %d: must be from 1 to 10000", *batch)
	}
	if *metricsAddr != "" {
		if err := config.CheckListenAddr(*metricsAddr); err != nil {
			return usageErr(config.ListenAddrHint, "-metrics %q: %v", *metricsAddr, err)
		}
	}
	if *name != "" {
		if err := ingest.ValidConsumerName(*name); err != nil {
			return usageErr("a consumer name is one word of letters, digits, - and _, like remaphore-audit-2", "-name %q: not a consumer name: %v", *name, err)
		}
	}
	log, err := c.logger(stderr)
	if err != nil {
		return err
	}
	path, cfg, err := c.db(true)
	if err != nil {
		return err
	}
	if *maxRejectedBytes == 0 {
		*maxRejectedBytes = int64(cfg.AuditRefusedMax)
	}
	store := audit.Options{MaxRejected: *maxRejected, MaxRejectedBytes: *maxRejectedBytes}
	if len(cfg.Peers) == 0 {
		log.Warn("the config lists no [ Peers ]: every message will be recorded as refused (unknown-sender)")
	}
	// The database first: a second auditor or an unwritable file fails
	// before any network wait.
	lock, err := audit.LockDaemon(path)
	if err != nil {
		return err
	}
	defer lock.Release()
	s, err := audit.Open(path, store)
	if err != nil {
		return err
	}
	s.Close()
	if *metricsAddr == "" {
		*metricsAddr = cfg.AuditMetrics
	}
	var m *metrics.Auditor
	if *metricsAddr != "" {
		m = metrics.New(metrics.Options{DB: path})
		stop, err := serveMetrics(*metricsAddr, m, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	reload := make(chan []policy.Peer)
	rl := &reloader{path: c.configPath, db: c.dbPath, cur: cfg, log: log, m: m}
	rctx, stopReload := context.WithCancel(ctx)
	defer stopReload()
	go rl.run(rctx, hup, reload)
	conn, err := node.Dial(ctx, cfg, false, log)
	if err != nil {
		if hint := node.DialHint(cfg, err); hint != "" {
			return &exitcode.Error{Code: ExitBackend, Err: err, Hint: hint}
		}
		return err
	}
	defer conn.Close()
	err = ingest.Run(ctx, ingest.RunOptions{
		Conn:      conn,
		Stream:    node.StreamSpec(cfg),
		Peers:     cfg.Peers,
		AllowSkew: cfg.AllowSkew,
		Consumer:  *name,
		DB:        path,
		Store:     store,
		Batch:     *batch,
		Logger:    log,
		Lock:      lock,
		Metrics:   m,
		Reload:    reload,
	})
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return nil // stopped while starting up
	}
	return err
}

// serveMetrics listens on addr, exactly where it says (an empty host is
// every interface), and serves m there until stop is called. The listener
// is opened before the auditor connects, so that a port in use fails at
// once.
func serveMetrics(addr string, m *metrics.Auditor, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, usageErr("choose a free port (-metrics or audit_metrics), or stop what listens there",
			"-metrics %s: cannot listen: %v", addr, err)
	}
	srv := &http.Server{Handler: m.Handler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	log.Info("serving metrics", "addr", ln.Addr().String(), "metrics", "http://"+ln.Addr().String()+"/metrics", "healthz", "http://"+ln.Addr().String()+"/healthz")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
	}, nil
}

// reloader re-reads the config on SIGHUP and passes the new [ Peers ] to
// the auditor. A config that fails to load (a syntax error, a file others
// may read) is logged and the one in use kept. Settings read only at
// start are logged as ignored when they changed.
type reloader struct {
	path string // -c
	db   string // -db, "" when from audit_db
	cur  *config.Config
	log  *slog.Logger
	m    *metrics.Auditor
}

func (r *reloader) run(ctx context.Context, hup <-chan os.Signal, out chan<- []policy.Peer) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		cfg, err := config.Load(r.path)
		if err != nil {
			r.m.Reloaded(false)
			r.log.Error("SIGHUP: config not reloaded; the auditor goes on with the config it has", "config", r.path, "err", err)
			continue
		}
		for _, name := range r.restartOnly(cfg) {
			r.log.Warn("SIGHUP: a setting read only at start changed; it is ignored until the auditor restarts", "key", name, "config", r.path)
		}
		if len(cfg.Peers) == 0 {
			r.log.Warn("SIGHUP: the config lists no [ Peers ]: every message will be recorded as refused (unknown-sender)")
		}
		added, removed, changed := diffPeers(r.cur.Peers, cfg.Peers)
		r.log.Info("SIGHUP: config re-read", "config", r.path, "peers", len(cfg.Peers),
			"added", added, "removed", removed, "changed", changed)
		select {
		case out <- cfg.Peers:
		case <-ctx.Done():
			return
		}
		r.m.Reloaded(true)
		r.cur = cfg
	}
}

// restartOnly names the settings that changed and that the auditor reads
// only at start: the connection, the stream, the database.
func (r *reloader) restartOnly(cfg *config.Config) []string {
	old := r.cur
	var names []string
	diff := func(name string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			names = append(names, name)
		}
	}
	diff("server", old.Servers, cfg.Servers)
	diff("credentials", old.Resolve(old.Credentials), cfg.Resolve(cfg.Credentials))
	diff("tls_ca", old.Resolve(old.TLSCA), cfg.Resolve(cfg.TLSCA))
	diff("tls_cert", old.Resolve(old.TLSCert), cfg.Resolve(cfg.TLSCert))
	diff("tls_key", old.Resolve(old.TLSKey), cfg.Resolve(cfg.TLSKey))
	diff("subject", old.Subject, cfg.Subject)
	diff("stream", old.Stream, cfg.Stream)
	diff("replicas", old.Replicas, cfg.Replicas)
	diff("retention", old.Retention, cfg.Retention)
	diff("max_consumers", old.MaxConsumers, cfg.MaxConsumers)
	diff("max_bytes", old.MaxBytes, cfg.MaxBytes)
	diff("allow_skew", old.AllowSkew, cfg.AllowSkew)
	if r.db == "" {
		diff("audit_db", old.Resolve(old.AuditDB), cfg.Resolve(cfg.AuditDB))
	}
	diff("audit_refused_max_bytes", old.AuditRefusedMax, cfg.AuditRefusedMax)
	diff("audit_metrics", old.AuditMetrics, cfg.AuditMetrics)
	return names
}

// diffPeers names the peers (by destination and key) added, removed, and
// whose verbs or destination changed.
func diffPeers(old, cur []policy.Peer) (added, removed, changed []string) {
	name := func(p policy.Peer) string { return fmt.Sprintf("%s %s", p.Dest, p.Key) }
	was := map[any]policy.Peer{}
	for _, p := range old {
		was[p.Key] = p
	}
	for _, p := range cur {
		o, ok := was[p.Key]
		switch {
		case !ok:
			added = append(added, name(p))
		case o.Dest != p.Dest || o.Verbs.String() != p.Verbs.String():
			changed = append(changed, name(p))
		}
		delete(was, p.Key)
	}
	for _, p := range old {
		if _, ok := was[p.Key]; ok {
			removed = append(removed, name(p))
		}
	}
	return added, removed, changed
}
