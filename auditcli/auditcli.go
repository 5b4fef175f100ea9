package auditcli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/remaphore/remaphore/internal/exitcode"
	"github.com/remaphore/remaphore/internal/version"
)

// synopses are the commands' flags, as -h and each command's -h show
// them (and cmd/remaphore-audit/README.md: TestSynopsesInManual).
var synopses = map[string]string{
	"run":      "[-c FILE] [-db FILE] [-name NAME] [-metrics ADDR] [-max-rejected N] [-max-rejected-bytes N] [-batch N]",
	"query":    "[-c FILE | -db FILE] [filters | -gaps] [-limit N] [-json [-body]]",
	"tail":     "[-c FILE | -db FILE] [filters] [-n N] [-f [-interval D]] [-json [-body]]",
	"verify":   "[-c FILE | -db FILE] [-allow-gaps] [-json]",
	"stats":    "[-c FILE | -db FILE] [-json]",
	"receipts": "[-c FILE | -db FILE] (-uuid U | -id ID) [-since T] [-until T] [-json]",
}

// usageText is what remaphore-audit -h prints.
var usageText = `Usage:
  remaphore-audit run    ` + synopses["run"] + `
  remaphore-audit query  ` + synopses["query"] + `
  remaphore-audit tail   ` + synopses["tail"] + `
  remaphore-audit verify ` + synopses["verify"] + `
  remaphore-audit stats  ` + synopses["stats"] + `
  remaphore-audit receipts ` + synopses["receipts"] + `
  remaphore-audit -version

  run     read every message, reply and receipt of the stream into the database
  query   print stored records (accepted, or with -rejected the refused ones)
  tail    print the last records; with -f, follow new ones
  verify  re-check the hash chains, every signature and the indexes
  stats   counts by verdict, verb and sender
  receipts  who acted on a message: destination, exit code, delay (receipts: true)

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
		return printError(stderr, usageErr("the commands are run, query, tail, verify, stats and receipts; remaphore-audit -h says more", "no command given"))
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usageText)
		return ExitOK
	case "-version", "--version":
		fmt.Fprintln(stdout, version.String("remaphore-audit"))
		return ExitOK
	}
	cmd, ok := commands[args[0]]
	if !ok {
		return printError(stderr, usageErr("the commands are run, query, tail, verify, stats and receipts", "unknown command %q", args[0]))
	}
	code, err := cmd(ctx, args[1:], stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	if err != nil {
		return printError(stderr, err)
	}
	return code
}

// command is one subcommand (command_<name>.go): it returns its exit code,
// or the error that decides it (see printError).
type command func(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error)

// commands are the subcommands by name.
var commands = map[string]command{
	"run":    guarded(cmdRun),
	"query":  guarded(cmdQuery),
	"tail":   guarded(cmdTail),
	"verify": guarded(cmdVerify),
	"stats":  guarded(cmdStats),
	// receipts: command_receipts.go
	"receipts": guarded(cmdReceipts),
}

// guarded guards a command that opens the database: a damaged file (a
// disk fault, or bytes changed outside the auditor) makes bbolt read past
// its pages or trip its own assertions, which would otherwise end the
// command with a Go panic or a fault and its stack trace, exit 2 (a usage
// error). The command fails with what happened instead: exit 3, the
// database error. Only the command's own goroutine is guarded (run's
// ingest goroutines are not).
func guarded(cmd command) command {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) (code int, err error) {
		// A fault on the memory-mapped file becomes a panic, recovered below.
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer func() {
			if p := recover(); p != nil {
				err = &exitcode.Error{Code: ExitBackend, Err: fmt.Errorf("the database file is damaged: reading it failed (%v)", p),
					Hint: "restore the file from a backup, or keep it as evidence and start the auditor on a new file (-db or audit_db)"}
			}
		}()
		return cmd(ctx, args, stdout, stderr)
	}
}
