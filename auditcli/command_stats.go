package auditcli

import (
	"context"
	"io"
)

// cmdStats prints the counters by verdict, verb and sender.
func cmdStats(_ context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	return ExitOK, printStats(args, stdout, stderr)
}

// printStats parses stats's flags and prints the counters.
func printStats(args []string, stdout, stderr io.Writer) error {
	c := newFlags("stats", synopses["stats"], stderr, "warn")
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
