package auditcli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/remaphore/remaphore/audit/ingest"
	"github.com/remaphore/remaphore/internal/exitcode"

	"github.com/remaphore/remaphore/audit"
	"github.com/remaphore/remaphore/client"
	"github.com/remaphore/remaphore/config"
	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/sign"
)

const usageText = `Usage:
  remaphore-audit run    [-c FILE] [-db FILE] [-name NAME] [-max-rejected N] [-max-rejected-bytes N]
  remaphore-audit query  [-c FILE | -db FILE] [filters | -gaps] [-limit N] [-json]
  remaphore-audit tail   [-c FILE | -db FILE] [filters] [-n N] [-f] [-json]
  remaphore-audit verify [-c FILE | -db FILE] [-allow-gaps] [-json]
  remaphore-audit stats  [-c FILE | -db FILE] [-json]

  run     read every message and reply of the stream into the database
  query   print stored records (accepted, or with -rejected the refused ones)
  tail    print the last records; with -f, follow new ones
  verify  re-check the hash chains, every signature and the indexes
  stats   counts by verdict, verb and sender

Filters (query and tail):
  -since T, -until T   stream time: a duration back from now (2h) or RFC 3339
  -verb V   -uuid U   -sender KEY|DEST   -dest NAME|PATTERN   -request ID   -rejected
  query -gaps lists the gap records: stream sequences never recorded

Run remaphore-audit COMMAND -h for a command's flags.
Exit codes: 0 ok, 1 verify found a problem or a gap / tail found nothing,
            2 usage or config error, 3 NATS, JetStream or database error
`

// Main runs remaphore-audit with args (without the program name) and
// returns the exit code. SIGINT and SIGTERM stop run and tail -f cleanly.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, args, stdout, stderr)
}

// Run is Main with the context given: run and tail -f return when it is
// done.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return printError(stderr, usageErr("the commands are run, query, tail, verify and stats; remaphore-audit -h says more", "no command given"))
	}
	cmd, rest := args[0], args[1:]
	var err error
	code := ExitOK
	switch cmd {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usageText)
		return ExitOK
	case "run":
		err = cmdRun(ctx, rest, stderr)
	case "query":
		code, err = cmdQuery(ctx, rest, stdout, stderr, false)
	case "tail":
		code, err = cmdQuery(ctx, rest, stdout, stderr, true)
	case "verify":
		code, err = cmdVerify(rest, stdout, stderr)
	case "stats":
		err = cmdStats(rest, stdout, stderr)
	default:
		return printError(stderr, usageErr("the commands are run, query, tail, verify and stats", "unknown command %q", cmd))
	}
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	if err != nil {
		return printError(stderr, err)
	}
	return code
}

// common holds the flags every command takes.
type common struct {
	fs         *flag.FlagSet
	configPath string
	dbPath     string
	logLevel   string
	wait       time.Duration
	configSet  bool
	help       func()
}

func newFlags(name, synopsis string, stderr io.Writer, defaultLog string) *common {
	c := &common{fs: flag.NewFlagSet("remaphore-audit "+name, flag.ContinueOnError)}
	// The flag package prints its error and the usage on every bad flag;
	// the command prints one error line and a hint instead, and the usage
	// only for -h.
	c.fs.SetOutput(io.Discard)
	c.fs.Usage = func() {}
	c.help = func() {
		c.fs.SetOutput(stderr)
		fmt.Fprintf(stderr, "Usage: remaphore-audit %s %s\n\nFlags:\n", name, synopsis)
		c.fs.PrintDefaults()
	}
	c.fs.StringVar(&c.configPath, "c", config.DefaultPath, "config `file` (for audit_db, and for run: servers, credentials and [ Peers ])")
	c.fs.StringVar(&c.dbPath, "db", "", "database `file` (default: audit_db from the config)")
	c.fs.StringVar(&c.logLevel, "log", defaultLog, "log `level` on stderr: debug, info, warn or error")
	return c
}

// waitFlag adds -wait to a reading command.
func (c *common) waitFlag() {
	c.fs.DurationVar(&c.wait, "wait", audit.DefaultTimeout, "how long to wait for the file while the auditor writes to it")
}

func (c *common) parse(args []string) error {
	if err := c.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			c.help()
			return err
		}
		return &exitcode.Error{Code: ExitUsage, Err: err, Hint: "run " + c.fs.Name() + " -h for its flags"}
	}
	if c.fs.NArg() > 0 {
		return usageErr("run "+c.fs.Name()+" -h for its flags", "unexpected argument %q", c.fs.Arg(0))
	}
	c.fs.Visit(func(f *flag.Flag) {
		if f.Name == "c" {
			c.configSet = true
		}
	})
	return nil
}

func (c *common) logger(stderr io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, usageErr("use one of debug, info, warn, error", "-log %q: not a level", c.logLevel)
	}
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})), nil
}

// db returns the database path: -db, else the config's audit_db. A reading
// command given -db reads no config unless -c is given too.
func (c *common) db(needConfig bool) (string, *config.Config, error) {
	var cfg *config.Config
	if needConfig || c.dbPath == "" || c.configSet {
		var err error
		if cfg, err = config.Load(c.configPath); err != nil {
			return "", nil, err
		}
	}
	if c.dbPath != "" {
		return c.dbPath, cfg, nil
	}
	if cfg.AuditDB == "" {
		return "", nil, usageErr("add a line like audit_db: /var/lib/remaphore/audit.db to "+cfg.Path+", or pass -db FILE",
			"no database file: %s has no audit_db", cfg.Path)
	}
	return cfg.Resolve(cfg.AuditDB), cfg, nil
}

func (c *common) openRead(needConfig bool) (*audit.Store, *config.Config, error) {
	path, cfg, err := c.db(needConfig)
	if err != nil {
		return nil, nil, err
	}
	s, err := audit.Open(path, audit.Options{ReadOnly: true, Timeout: c.wait})
	return s, cfg, err
}

// RunGCPercent is the garbage collector's target for `run` unless GOGC
// is set. The auditor's live heap is a few MB (one batch, the replay
// caches, the key tables) while it allocates per message (bbolt cursors
// and nodes, NATS messages): at Go's default of 100 it collects every few
// thousand messages, ~10% of its CPU. 400 lets the heap reach five times
// the live set, still tens of MB, and ingests ~20% more messages per
// second (BenchmarkIngestBacklog).
const RunGCPercent = 400

func cmdRun(ctx context.Context, args []string, stderr io.Writer) error {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(RunGCPercent)
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
	conn, err := client.Dial(ctx, cfg, false, log)
	if err != nil {
		return err
	}
	defer conn.Close()
	err = ingest.Run(ctx, ingest.RunOptions{
		Conn:      conn,
		Stream:    client.StreamSpec(cfg),
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

// filters are the query and tail flags.
type filters struct {
	since, until, verb, sender, uuid, dest, request string
	rejected, json, body                            bool
}

func (f *filters) add(fs *flag.FlagSet) {
	fs.StringVar(&f.since, "since", "", "only records stored at or after `T`: a duration back from now (2h, 30m) or an RFC 3339 time")
	fs.StringVar(&f.until, "until", "", "only records stored at or before `T` (as -since)")
	fs.StringVar(&f.verb, "verb", "", "only this `verb`")
	fs.StringVar(&f.sender, "sender", "", "only this sender: a public `key` (base58 or U…) or a peer destination")
	fs.StringVar(&f.uuid, "uuid", "", "only this `uuid` (a request and its replies share it)")
	fs.StringVar(&f.dest, "dest", "", "only messages addressed to `NAME` (patterns matching it) or with exactly this pattern")
	fs.StringVar(&f.request, "request", "", "only this request and its replies: the request's `id` (64 hex digits, or at least the first 8, as in the REQUEST column)")
	fs.BoolVar(&f.rejected, "rejected", false, "show refused records (with their reason) instead of accepted ones")
	fs.BoolVar(&f.json, "json", false, "print one JSON object per line instead of a table")
	fs.BoolVar(&f.body, "body", false, "with -json: include the raw body (base64)")
}

func (f *filters) query(now time.Time) (audit.Query, error) {
	q := audit.Query{Rejected: f.rejected, UUID: f.uuid, Dest: f.dest}
	var err error
	if q.Since, err = parseTime("-since", f.since, now); err != nil {
		return q, err
	}
	if q.Until, err = parseTime("-until", f.until, now); err != nil {
		return q, err
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && q.Until.Before(q.Since) {
		return q, usageErr("", "-until is before -since")
	}
	if f.verb != "" {
		// Verbs are lower-cased on the command line, as remaphore does.
		q.Verb = strings.ToLower(f.verb)
	}
	if f.sender != "" {
		if k, err := sign.ParsePublicKey(f.sender); err == nil {
			q.Sender = k
		} else if policy.ValidateName(f.sender) == nil {
			q.SenderDest = f.sender
		} else {
			return q, usageErr("give a base58 public key as in [ Peers ], or a peer's destination like com.example.host1",
				"-sender %q is neither a public key nor a destination", f.sender)
		}
	}
	if f.request != "" {
		id := strings.ToLower(f.request)
		if len(id) < 8 || len(id) > 64 || strings.Trim(id, "0123456789abcdef") != "" {
			return q, usageErr("give the request's id: 64 hex digits, or at least its first 8, as the REQUEST column shows them",
				"-request %q is not a request id", f.request)
		}
		q.Request = id
	}
	if f.dest != "" {
		if _, err := policy.ParsePattern(f.dest); err != nil {
			return q, usageErr("give a node name (com.example.host1) or a pattern (com.example.*)", "-dest: %v", err)
		}
	}
	return q, nil
}

// parseTime reads a duration back from now or an RFC 3339 time.
func parseTime(flagName, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, usageErr("", "%s %s: negative duration", flagName, s)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, usageErr("write a duration back from now (2h, 90m) or an RFC 3339 time (2026-01-02T15:04:05Z)",
		"%s %q: not a duration or an RFC 3339 time", flagName, s)
}

func cmdQuery(ctx context.Context, args []string, stdout, stderr io.Writer, tail bool) (int, error) {
	name, synopsis := "query", "[-c FILE | -db FILE] [filters | -gaps] [-limit N] [-json]"
	if tail {
		name, synopsis = "tail", "[-c FILE | -db FILE] [filters] [-n N] [-f] [-json]"
	}
	c := newFlags(name, synopsis, stderr, "warn")
	c.waitFlag()
	var f filters
	f.add(c.fs)
	var limit int
	var follow bool
	var interval time.Duration
	if tail {
		c.fs.IntVar(&limit, "n", 10, "print the last `N` records first")
		c.fs.BoolVar(&follow, "f", false, "follow: keep printing new records until interrupted")
		c.fs.DurationVar(&interval, "interval", time.Second, "with -f: how often to look for new records")
	} else {
		c.fs.IntVar(&limit, "limit", 0, "print at most `N` records (0: all)")
	}
	var gaps bool
	if !tail {
		c.fs.BoolVar(&gaps, "gaps", false, "list the gap records instead: runs of stream sequences the stream no longer held when the auditor came to read them")
	}
	if err := c.parse(args); err != nil {
		return 0, err
	}
	if gaps {
		var other []string
		c.fs.Visit(func(fl *flag.Flag) {
			switch fl.Name {
			case "gaps", "limit", "json", "c", "db", "wait", "log":
			default:
				other = append(other, "-"+fl.Name)
			}
		})
		if len(other) > 0 {
			return 0, usageErr("query -gaps lists every gap record; it takes -limit and -json, not the record filters",
				"-gaps with %s", strings.Join(other, " "))
		}
	}
	if limit < 0 {
		return 0, usageErr("", "-%s %d is negative", map[bool]string{true: "n", false: "limit"}[tail], limit)
	}
	if interval <= 0 && tail {
		return 0, usageErr("", "-interval must be positive")
	}
	if _, err := c.logger(stderr); err != nil {
		return 0, err
	}
	q, err := f.query(time.Now())
	if err != nil {
		return 0, err
	}
	out := newPrinter(stdout, f.json, f.body, f.rejected)
	if follow {
		out.followWidths()
	}
	s, cfg, err := c.openRead(false)
	if err != nil {
		return 0, err
	}
	if gaps {
		n := 0
		err = s.Gaps(func(g *audit.Gap) error {
			if limit > 0 && n >= limit {
				return errStopGaps
			}
			n++
			return out.gap(g)
		})
		s.Close()
		if errors.Is(err, errStopGaps) {
			err = nil
		}
		if err == nil {
			err = out.flush()
		}
		return ExitOK, err
	}
	if q.SenderDest != "" {
		if err := checkSenderDest(s, cfg, q.SenderDest); err != nil {
			s.Close()
			return 0, err
		}
	}
	var last uint64
	n := 0
	if tail {
		q.Limit, q.Reverse = limit, true
		var recs []*audit.Record
		if limit > 0 {
			err = s.Query(q, func(r *audit.Record) error { recs = append(recs, r); return nil })
		}
		for i := len(recs) - 1; i >= 0 && err == nil; i-- {
			err = out.record(recs[i])
		}
		n = len(recs)
		if err == nil {
			last, _, err = s.Last()
		}
	} else {
		q.Limit = limit
		err = s.Query(q, func(r *audit.Record) error { n++; return out.record(r) })
	}
	s.Close()
	if err == nil {
		err = out.flush()
	}
	if err != nil || !follow {
		if err == nil && tail && n == 0 {
			return ExitFailed, nil
		}
		return ExitOK, err
	}
	// Follow: open, read what is new, close, so that the auditor is never
	// kept waiting for long.
	q.Limit, q.Reverse = 0, false
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ExitOK, out.flush()
		case <-t.C:
		}
		s, _, err := c.openRead(false)
		if err != nil {
			if errors.Is(err, audit.ErrBusy) {
				continue
			}
			return 0, err
		}
		now, _, err := s.Last()
		if err == nil && now > last {
			q.AfterSeq = last
			err = s.Query(q, out.record)
			last = now
		}
		s.Close()
		if err == nil {
			err = out.flush()
		}
		if err != nil {
			return 0, err
		}
	}
}

func cmdVerify(args []string, stdout, stderr io.Writer) (int, error) {
	c := newFlags("verify", "[-c FILE | -db FILE] [-allow-gaps] [-json]", stderr, "warn")
	c.waitFlag()
	asJSON := c.fs.Bool("json", false, "print problems, gaps and the summary as JSON lines")
	allowGaps := c.fs.Bool("allow-gaps", false, "exit 0 when the only findings are gaps (stream sequences never recorded, each still printed): for gaps already known and explained")
	if err := c.parse(args); err != nil {
		return 0, err
	}
	if _, err := c.logger(stderr); err != nil {
		return 0, err
	}
	s, _, err := c.openRead(false)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	out := newPrinter(stdout, *asJSON, false, false)
	res, err := s.Verify(func(p audit.Problem) { out.problem(p) })
	if err != nil {
		return 0, err
	}
	for _, g := range res.Gaps {
		out.verifyGap(g)
	}
	out.verifySummary(res, *allowGaps)
	if err := out.flush(); err != nil {
		return 0, err
	}
	if res.Problems > 0 || (len(res.Gaps) > 0 && !*allowGaps) {
		return ExitFailed, nil
	}
	return ExitOK, nil
}

func cmdStats(args []string, stdout, stderr io.Writer) error {
	c := newFlags("stats", "[-c FILE | -db FILE] [-json]", stderr, "warn")
	c.waitFlag()
	asJSON := c.fs.Bool("json", false, "print one JSON object")
	if err := c.parse(args); err != nil {
		return err
	}
	if _, err := c.logger(stderr); err != nil {
		return err
	}
	s, _, err := c.openRead(false)
	if err != nil {
		return err
	}
	defer s.Close()
	st, err := s.Stats()
	if err != nil {
		return err
	}
	out := newPrinter(stdout, *asJSON, false, false)
	out.stats(st)
	return out.flush()
}

var errStopGaps = errors.New("enough gaps")

// checkSenderDest refuses a -sender destination that names no sender:
// neither one recorded in the database nor a peer of the config read.
// Such a query would print nothing and exit 0, and a typo would read as
// "that host sent nothing".
func checkSenderDest(s *audit.Store, cfg *config.Config, dest string) error {
	st, err := s.Stats()
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	var known []string
	addName := func(d string) {
		if d != "" && !seen[d] {
			seen[d] = true
			known = append(known, d)
		}
	}
	for _, c := range st.Senders {
		addName(c.Dest)
	}
	if cfg != nil {
		for _, p := range cfg.Peers {
			addName(p.Dest)
		}
	}
	if seen[dest] {
		return nil
	}
	hint := "give a sender's destination as remaphore-audit stats lists them, or its public key"
	if len(known) > 0 {
		list := known
		if len(list) > 5 {
			list = append(slices.Clip(list[:5]), "…")
		}
		hint = fmt.Sprintf("give a sender's destination as remaphore-audit stats lists them (%s), or its public key", strings.Join(list, ", "))
	}
	if best := closest(dest, known); best != "" {
		hint = fmt.Sprintf("did you mean -sender %s? (remaphore-audit stats lists every sender)", best)
	}
	where := "in the database"
	if cfg != nil {
		where += " or among the peers of " + cfg.Path
	}
	return usageErr(hint, "-sender %s: no sender has that destination %s", dest, where)
}

// closest returns the name in names nearest to s by edit distance, when
// it is near enough to be a likely typo (at most a third of s's length),
// else "".
func closest(s string, names []string) string {
	best, bestD := "", len(s)/3+1
	for _, n := range names {
		if d := editDistance(s, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
