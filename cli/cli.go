package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/remaphore/remaphore/internal/exitcode"
	"github.com/remaphore/remaphore/internal/version"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/remaphore/remaphore/config"
	"github.com/remaphore/remaphore/node"
	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/sign"
	"github.com/remaphore/remaphore/transport"
)

// options holds the parsed command line.
type options struct {
	send, request, example bool
	version                bool
	json                   bool
	configPath             string
	channel                string
	dest                   string
	destSet                bool
	anyDest                bool
	once                   bool
	pubkey                 string
	pubkeySet              bool // -p was given (validated even if it parses to nothing)
	timeout                time.Duration
	uuid                   string
	verbs                  string
	since                  time.Duration
	logLevel               string
	barrier                string        // -n as given: a number or "all"
	need                   int           // -n parsed: node.BarrierAll for "all"
	from                   string        // -from
	splay                  time.Duration // -splay
	splaySet               bool
	args                   []string
}

const usageText = `Usage:
  remaphore -s [options] [message]      send a message and return once it is stored
  remaphore -r [options] [message]      send a request and print every answer
  remaphore [options] [script [args]]   wait for messages (and run script for each)
  remaphore -C [FILE]                   write an example config file (fresh key) to FILE at mode 0600, or print it

Options:
`

func parseFlags(args []string, stdout io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("remaphore", flag.ContinueOnError)
	// The flag package would print its error and the whole usage on a bad
	// flag; remaphore prints one error line and a hint instead, and the
	// usage only when asked (-h), on stdout.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {} // the flag package calls it on every bad flag
	printUsage := func() {
		fs.SetOutput(stdout)
		fmt.Fprint(stdout, usageText)
		fs.PrintDefaults()
		fmt.Fprint(stdout, "\nExit codes: 0 received/answered/sent, 1 timeout (-r: a responder missing; -n: the barrier incomplete), 2 usage or config error, 3 NATS error, 4 script failed (-o/-u/-n; -r: a responder answered non-zero), 128+N stopped by signal N\n")
	}
	fs.BoolVar(&o.send, "s", false, "Send and forget: send the message and return once the stream has stored it")
	fs.BoolVar(&o.request, "r", false, "Request: send the message and wait for every expected responder's answer (not with -s)")
	fs.BoolVar(&o.example, "C", false, "Write an example config file (with a fresh key): -C FILE creates FILE at mode 0600 (never overwriting); -C alone prints it")
	fs.StringVar(&o.configPath, "c", config.DefaultPath, "Config `file`")
	fs.StringVar(&o.channel, "S", transport.DefaultChannel, "NATS subject (channel) to communicate on; sender and receivers must agree")
	fs.StringVar(&o.dest, "D", "", "Send: destination `pattern` to match (default **). Receive: destination to match for (default: the config's)")
	fs.BoolVar(&o.anyDest, "d", false, "Receive: do not match for destination (dangerous)")
	fs.BoolVar(&o.once, "o", false, "Receive: exit after one matching message")
	fs.StringVar(&o.pubkey, "p", "", "Send: use this public `key` (one of [ Identities ]). Receive: only accept messages signed by it")
	fs.DurationVar(&o.timeout, "t", 0, fmt.Sprintf("Timeout for the operation (like 30s, 1h2m3s4ms). Without it a receiver waits forever, -s gives up after %s, -r after %s", defaultSendTimeout, defaultRequestTimeout))
	fs.StringVar(&o.uuid, "u", "", "Send: the UUID to put in the message. Receive: only match this UUID (implies -o)")
	fs.StringVar(&o.verbs, "v", "", "Send: the `verb` to send (default ping). Receive: -v verb[,verb...] to match")
	fs.DurationVar(&o.since, "since", 0, "Receive: also accept messages stored up to this long before start (late joiners)")
	fs.BoolVar(&o.json, "json", false, "Print JSON, one object per line (see docs/json.md): -r one per answer and a summary; a receiver one per accepted message (a script's stdout then goes to stderr); -s the stored message's id and sequence")
	fs.StringVar(&o.barrier, "n", "", "Receive: barrier: wait for matching messages from `N` distinct senders (-n all: every peer that may send them), run the script once, exit")
	fs.StringVar(&o.from, "from", "", "Receive with -n: count only peers whose destination matches this `pattern` (as -D of a sender)")
	fs.DurationVar(&o.splay, "splay", 0, "Receive: wait a random time in [0, `D`) after the message (or the completed -n barrier) before the script runs or remaphore exits")
	fs.BoolVar(&o.version, "version", false, "Print the version of this build and exit")
	fs.StringVar(&o.logLevel, "log", "warn", "Log `level` on stderr: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage()
			return nil, err
		}
		hint := "run remaphore -h for the options"
		if strings.Contains(err.Error(), "flag -t") || strings.Contains(err.Error(), "flag -since") || strings.Contains(err.Error(), "flag -splay") {
			hint = "durations look like 30s, 5m, 24h or 1h2m3s4ms"
		}
		return nil, &exitcode.Error{Code: ExitUsage, Err: err, Hint: hint}
	}
	var empty []string
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "D":
			o.destSet = true
		case "p":
			o.pubkeySet = true
		case "splay":
			o.splaySet = true
		}
		// A flag given an empty value is almost always an unset shell
		// variable (-u "$JOB"); taking it as "not given" would silently
		// drop a filter: -u "" would match every UUID and not stop
		// after one message. No string flag has a meaning for "".
		if g, ok := f.Value.(flag.Getter); ok {
			if v, ok := g.Get().(string); ok && v == "" {
				empty = append(empty, f.Name)
			}
		}
	})
	if len(empty) > 0 {
		return nil, usageErr("-"+empty[0]+" needs a value: is the variable empty?", "-%s is empty", empty[0])
	}
	o.args = fs.Args()
	return o, o.validate()
}

func (o *options) validate() error {
	if o.example {
		// The arguments are then -C's file: "remaphore -C -s hi" would
		// write a config named hi and send nothing.
		for _, m := range []struct {
			set  bool
			flag string
		}{{o.send, "-s"}, {o.request, "-r"}, {o.once, "-o"}, {o.anyDest, "-d"}, {o.barrier != "", "-n"}, {o.since > 0, "-since"}, {o.splaySet, "-splay"}, {o.json, "-json"}} {
			if m.set {
				return usageErr("-C only writes an example config: run it on its own, remaphore -C FILE", "-C does not take %s", m.flag)
			}
		}
	}
	switch {
	case o.send && o.request:
		return usageErr("use -s to send and forget, or -r to wait for answers", "-s and -r cannot be used together")
	case o.anyDest && o.destSet:
		return usageErr("use -D NAME to match another destination, or -d to match any", "-d and -D cannot be used together")
	case o.timeout < 0:
		return usageErr("", "-t %s is negative", o.timeout)
	case o.since < 0:
		return usageErr("", "-since %s is negative", o.since)
	case (o.send || o.request) && (o.anyDest || o.once || o.since > 0):
		return usageErr("-d, -o and -since are receive options", "%s does not take -d, -o or -since", map[bool]string{true: "-s", false: "-r"}[o.send])
	case (o.send || o.request) && (o.barrier != "" || o.from != "" || o.splaySet):
		return usageErr("-n, -from and -splay are receive options", "%s does not take -n, -from or -splay", map[bool]string{true: "-s", false: "-r"}[o.send])
	case o.splay < 0:
		return usageErr("-splay takes the window to spread over, like 30s; without it nothing waits", "-splay %s is negative", o.splay)
	case o.from != "" && o.barrier == "":
		return usageErr("-from narrows a barrier: give -n N or -n all", "-from without -n")
	}
	if o.barrier != "" {
		if err := o.parseBarrier(); err != nil {
			return err
		}
	}
	if err := transport.ValidateChannel(o.channel); err != nil {
		return usageErr("", "-S: %v", err)
	}
	return nil
}

// parseBarrier reads -n: "all" or a positive number of senders.
func (o *options) parseBarrier() error {
	if o.barrier == "all" {
		o.need = node.BarrierAll
		return nil
	}
	n, err := strconv.Atoi(o.barrier)
	if err != nil || n <= 0 {
		return usageErr("-n takes the number of distinct senders to wait for (like 3), or all", "-n %q: not a positive number", o.barrier)
	}
	o.need = n
	return nil
}

// Main runs remaphore with args (without the program name) and returns the
// exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	if err != nil {
		return printError(stderr, err)
	}
	if o.version {
		fmt.Fprintln(stdout, version.String("remaphore"))
		return ExitOK
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return printError(stderr, usageErr("use one of debug, info, warn, error", "-log %q: not a level", o.logLevel))
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	if o.example {
		if err := writeExample(o.args, stdout, stderr); err != nil {
			return printError(stderr, err)
		}
		return ExitOK
	}

	ctx, stop := signalContext()
	defer stop()
	if o.timeout > 0 {
		var cancel context.CancelFunc
		// The cause is what errors and the missing-responders line say
		// when the timeout ends the wait.
		ctx, cancel = context.WithTimeoutCause(ctx, o.timeout, ranOut(fmt.Sprintf("-t %s ran out", o.timeout)))
		defer cancel()
	}
	r := &runner{o: o, log: log, stdout: stdout, stderr: stderr}
	var code int
	switch {
	case o.send:
		err = r.send(ctx)
	case o.request:
		code, err = r.request(ctx)
	default:
		code, err = r.receive(ctx)
	}
	if sig := signalOf(ctx); sig != nil && (err != nil || code != ExitOK) {
		// A signal, not a timeout or a failure, ended the run: exit
		// 128+signal as a shell would, and say so once.
		switch {
		case err == nil || errors.Is(err, sig):
			fmt.Fprintf(stderr, "remaphore: %v\n", sig)
		case strings.Contains(err.Error(), sig.Error()):
			fmt.Fprintf(stderr, "remaphore: error: %v\n", err) // it already says which signal
		default:
			fmt.Fprintf(stderr, "remaphore: error: %v\nremaphore: %v\n", err, sig)
		}
		return sig.code()
	}
	if err != nil {
		return printError(stderr, err)
	}
	return code
}

// ranOut is the cause of a context whose bound ran out: it says which
// bound, and is still a context.DeadlineExceeded to errors.Is.
type ranOut string

func (r ranOut) Error() string        { return string(r) }
func (r ranOut) Is(target error) bool { return target == context.DeadlineExceeded }

// stopSignal is the cause of the run's context when SIGINT or SIGTERM
// arrived.
type stopSignal struct{ sig syscall.Signal }

func (s *stopSignal) Error() string {
	name := map[syscall.Signal]string{syscall.SIGINT: "SIGINT", syscall.SIGTERM: "SIGTERM"}[s.sig]
	return fmt.Sprintf("stopped by %s (exit %d)", name, s.code())
}

func (s *stopSignal) code() int { return 128 + int(s.sig) }

// signalContext is cancelled, with a *stopSignal cause, by the first
// SIGINT or SIGTERM. After that one the signals get their default action
// back, so a second Ctrl-C ends a run that is slow to stop.
func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	c := make(chan os.Signal, 1)
	signal.Notify(c, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-c:
			signal.Stop(c)
			sig, _ := s.(syscall.Signal)
			cancel(&stopSignal{sig: sig})
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(c)
		close(done)
		cancel(nil)
	}
}

// signalOf returns the signal that cancelled ctx, or nil.
func signalOf(ctx context.Context) *stopSignal {
	var s *stopSignal
	if errors.As(context.Cause(ctx), &s) {
		return s
	}
	return nil
}

// runner holds what every mode shares.
type runner struct {
	o              *options
	log            *slog.Logger
	stdout, stderr io.Writer
	cfg            *config.Config
}

func (r *runner) loadConfig() error {
	cfg, err := config.Load(r.o.configPath)
	if err != nil {
		return err
	}
	r.cfg = cfg
	return nil
}

func (r *runner) streamSpec() transport.StreamSpec { return node.StreamSpec(r.cfg) }

// connect dials the config's servers; retry keeps trying until ctx is done.
func (r *runner) connect(ctx context.Context, retry bool) (*transport.Conn, error) {
	conn, err := node.Dial(ctx, r.cfg, retry, r.log)
	if err != nil {
		return nil, r.dialErr(err)
	}
	return conn, nil
}

func (r *runner) dialErr(err error) error {
	switch {
	case node.IsCredentialsError(err):
		return &exitcode.Error{Code: ExitUsage, Err: err, Hint: "credentials: in " + r.cfg.Path + " must name a NATS .creds file or an nkey seed file"}
	case node.DialHint(r.cfg, err) != "":
		return &exitcode.Error{Code: ExitNATS, Err: err, Hint: node.DialHint(r.cfg, err)}
	}
	return natsErr(err)
}

// verbFilter parses -v for receivers: nil when not given.
func (r *runner) verbFilter() (*policy.Verbs, error) {
	if r.o.verbs == "" {
		return nil, nil
	}
	v, err := policy.ParseVerbList(r.o.verbs)
	if err != nil {
		return nil, usageErr("write -v ping or -v deploy,status", "-v: %v", err)
	}
	return &v, nil
}

// sendVerb parses -v for senders: exactly one verb, default ping.
func (r *runner) sendVerb() (string, error) {
	if r.o.verbs == "" {
		return policy.DefaultVerb, nil
	}
	if strings.Contains(r.o.verbs, ",") {
		return "", usageErr("a receiver may match several verbs; a message carries one", "-v %q: send one verb at a time", r.o.verbs)
	}
	v, err := policy.NormalizeVerb(strings.TrimSpace(r.o.verbs))
	if err != nil {
		return "", usageErr("", "-v: %v", err)
	}
	return v, nil
}

// pubkeyFlag parses -p: the zero key when -p was not given (a given -p
// never parses to it: the zero key is a small-order point, refused).
func (r *runner) pubkeyFlag() (sign.PublicKey, error) {
	if !r.o.pubkeySet {
		return sign.PublicKey{}, nil
	}
	k, err := sign.ParsePublicKey(r.o.pubkey)
	if err != nil {
		return k, usageErr("give the base58 public key as written in the config", "-p: %v", err)
	}
	return k, nil
}
