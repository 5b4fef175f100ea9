package auditcli

import (
	"context"
	"errors"
	"flag"
	"io"
	"strings"

	"github.com/remaphore/remaphore/audit"
)

// cmdQuery prints the records the filters find, oldest first, or with
// -gaps the gap records.
func cmdQuery(_ context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	c := newRecordFlags("query", synopses["query"], stderr,
		"limit", 0, "print at most `N` records (0: all)")
	gaps := c.fs.Bool("gaps", false, "list the gap records instead: runs of stream sequences the stream no longer held when the auditor came to read them")
	if err := c.parse(args, func() error { return onlyGapFlags(c.fs, *gaps) }); err != nil {
		return 0, err
	}
	s, q, out, err := c.open(stdout, stderr)
	if err != nil {
		return 0, err
	}
	if *gaps {
		err = listGaps(s, out, c.limit)
	} else {
		q.Limit = c.limit
		err = s.Query(q, out.record)
	}
	s.Close()
	if err == nil {
		err = out.flush()
	}
	return ExitOK, err
}

// onlyGapFlags refuses the record filters beside -gaps.
func onlyGapFlags(fs *flag.FlagSet, gaps bool) error {
	if !gaps {
		return nil
	}
	var other []string
	fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "gaps", "limit", "json", "c", "db", "wait", "log":
		default:
			other = append(other, "-"+fl.Name)
		}
	})
	if len(other) > 0 {
		return usageErr("query -gaps lists every gap record; it takes -limit and -json, not the record filters",
			"-gaps with %s", strings.Join(other, " "))
	}
	return nil
}

var errStopGaps = errors.New("enough gaps")

// listGaps prints at most limit (0: every) gap record.
func listGaps(s *audit.Store, out *printer, limit int) error {
	n := 0
	err := s.Gaps(func(g *audit.Gap) error {
		if limit > 0 && n >= limit {
			return errStopGaps
		}
		n++
		return out.gap(g)
	})
	if errors.Is(err, errStopGaps) {
		return nil
	}
	return err
}
