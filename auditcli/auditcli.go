package auditcli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/remaphore/remaphore/internal/version"
)

const usageText = `Usage:
  remaphore-audit run    [-c FILE] [-db FILE] [-name NAME] [-max-rejected N] [-max-rejected-bytes N]
  remaphore-audit query  [-c FILE | -db FILE] [filters | -gaps] [-limit N] [-json]
  remaphore-audit tail   [-c FILE | -db FILE] [filters] [-n N] [-f] [-json]
  remaphore-audit verify [-c FILE | -db FILE] [-allow-gaps] [-json]
  remaphore-audit stats  [-c FILE | -db FILE] [-json]
  remaphore-audit receipts [-c FILE | -db FILE] (-uuid U | -id ID) [-json]
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
	"run":    cmdRun,
	"query":  cmdQuery,
	"tail":   cmdTail,
	"verify": cmdVerify,
	"stats":  cmdStats,
	// receipts: command_receipts.go
	"receipts": cmdReceipts,
}
