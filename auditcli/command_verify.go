package auditcli

import (
	"context"
	"io"

	"github.com/remaphore/remaphore/audit"
)

// cmdVerify re-checks the hash chains, signatures and indexes; it exits
// ExitFailed on any problem, and on a gap unless -allow-gaps.
func cmdVerify(_ context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	c := newFlags("verify", synopses["verify"], stderr, "warn")
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
