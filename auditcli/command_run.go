package auditcli

import (
	"context"
	"errors"
	"io"
	"os"
	"runtime/debug"

	"github.com/remaphore/remaphore/audit"
	"github.com/remaphore/remaphore/audit/ingest"
	"github.com/remaphore/remaphore/node"
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
	c := newFlags("run", "[-c FILE] [-db FILE] [-name NAME] [-max-rejected N] [-max-rejected-bytes N]", stderr, "info")
	name := c.fs.String("name", "", "durable consumer `name` (default: remaphore-audit-HOST-HASH, from the host and the database file's path, so that each auditor has its own)")
	maxRejected := c.fs.Int("max-rejected", audit.DefaultMaxRejected, "most refused records kept; the oldest are evicted first")
	maxRejectedBytes := c.fs.Int64("max-rejected-bytes", 0, "most `bytes` the refused records may take; the oldest are evicted first (default: audit_refused_max_bytes from the config, else 268435456)")
	batch := c.fs.Int("batch", ingest.DefaultBatch, "most messages fetched and committed at once")
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
	conn, err := node.Dial(ctx, cfg, false, log)
	if err != nil {
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
	})
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return nil // stopped while starting up
	}
	return err
}
