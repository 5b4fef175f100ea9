package cli

import (
	"io"

	"github.com/remaphore/remaphore/internal/exitcode"
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

func natsErr(err error) error { return &exitcode.Error{Code: ExitNATS, Err: err} }

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
