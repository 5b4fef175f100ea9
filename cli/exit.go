package cli

import (
	"io"

	"github.com/remaphore/remaphore/internal/exitcode"
	"github.com/remaphore/remaphore/transport"
)

// Exit codes; see the package doc.
const (
	ExitOK      = 0
	ExitTimeout = 1
	ExitUsage   = 2
	ExitNATS    = 3
	ExitScript  = 4
)

func usageErr(hint, format string, args ...any) error {
	return exitcode.UsageError(hint, format, args...)
}

// natsErr marks err as a NATS or JetStream failure (exit 3), unless it is
// one the operator fixes in a file or on the server (a file the config
// names is missing or open to others, an existing stream too weak): those
// keep their usage code and hint.
func natsErr(err error) error {
	if code, _, ok := exitcode.Known(err); ok && code == ExitUsage {
		return err
	}
	if transport.IsMaxPayload(err) {
		return &exitcode.Error{Code: ExitNATS, Err: err, Hint: "set max_payload: 1060000 in the NATS servers' config (remaphore's largest message, with its envelope and headers), or send a smaller payload"}
	}
	return &exitcode.Error{Code: ExitNATS, Err: err}
}

// codeOf maps an error to its exit code and hint: configuration problems
// are usage errors; everything else that reaches Main is NATS or
// JetStream (connect, publish, stream).
func codeOf(err error) (int, string) {
	if code, hint, ok := exitcode.Known(err); ok {
		return code, hint
	}
	return ExitNATS, ""
}

func printError(w io.Writer, err error) int {
	code, hint := codeOf(err)
	return exitcode.Print(w, "remaphore", err, code, hint)
}
