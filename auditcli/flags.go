package auditcli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/remaphore/remaphore/audit"
	"github.com/remaphore/remaphore/config"
	"github.com/remaphore/remaphore/internal/exitcode"
	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/sign"
)

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

// recordFlags are the flags query and tail share: the common ones, -wait,
// the filters, and how many records to print (query -limit, tail -n).
type recordFlags struct {
	*common
	filters
	limit     int
	limitName string
}

func newRecordFlags(name, synopsis string, stderr io.Writer, limitName string, limitDefault int, limitUsage string) *recordFlags {
	c := &recordFlags{common: newFlags(name, synopsis, stderr, "warn"), limitName: limitName}
	c.waitFlag()
	c.filters.add(c.fs)
	c.fs.IntVar(&c.limit, limitName, limitDefault, limitUsage)
	return c
}

// parse parses args, runs check (the command's own, when not nil), and
// refuses a negative limit.
func (c *recordFlags) parse(args []string, check func() error) error {
	if err := c.common.parse(args); err != nil {
		return err
	}
	if check != nil {
		if err := check(); err != nil {
			return err
		}
	}
	if c.limit < 0 {
		return usageErr("", "-%s %d is negative", c.limitName, c.limit)
	}
	return nil
}

// open checks -log and the filters, then opens the store read-only: the
// store, the query the filters make, and a printer for stdout. A -sender
// destination that names no sender is refused here (checkSenderDest).
func (c *recordFlags) open(stdout, stderr io.Writer) (*audit.Store, audit.Query, *printer, error) {
	if _, err := c.logger(stderr); err != nil {
		return nil, audit.Query{}, nil, err
	}
	q, err := c.filters.query(time.Now())
	if err != nil {
		return nil, q, nil, err
	}
	out := newPrinter(stdout, c.json, c.body, c.rejected)
	s, cfg, err := c.openRead(false)
	if err != nil {
		return nil, q, nil, err
	}
	if q.SenderDest != "" {
		if err := checkSenderDest(s, cfg, q.SenderDest); err != nil {
			s.Close()
			return nil, q, nil, err
		}
	}
	return s, q, out, nil
}

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
		if d := config.Distance(s, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}
