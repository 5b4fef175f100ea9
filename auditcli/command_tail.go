package auditcli

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/remaphore/remaphore/audit"
)

// cmdTail prints the last records the filters find, oldest first, and
// with -f follows new ones until ctx is done. It exits ExitFailed when it
// found none and does not follow.
func cmdTail(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	c := newRecordFlags("tail", synopses["tail"], stderr,
		"n", 10, "print the last `N` records first")
	follow := c.fs.Bool("f", false, "follow: keep printing new records until interrupted")
	interval := c.fs.Duration("interval", time.Second, "with -f: how often to look for new records")
	if err := c.parse(args, nil); err != nil {
		return 0, err
	}
	if *interval <= 0 {
		return 0, usageErr("", "-interval must be positive")
	}
	s, q, out, err := c.open(stdout, stderr)
	if err != nil {
		return 0, err
	}
	if *follow {
		out.followWidths()
	}
	q.Limit, q.Reverse = c.limit, true
	var recs []*audit.Record
	if c.limit > 0 {
		err = s.Query(q, func(r *audit.Record) error { recs = append(recs, r); return nil })
	}
	for i := len(recs) - 1; i >= 0 && err == nil; i-- {
		err = out.record(recs[i])
	}
	var last uint64
	if err == nil {
		last, _, err = s.Last()
	}
	s.Close()
	if err == nil {
		err = out.flush()
	}
	switch {
	case err != nil:
		return 0, err
	case !*follow && len(recs) == 0:
		return ExitFailed, nil
	case !*follow:
		return ExitOK, nil
	}
	q.Limit, q.Reverse = 0, false
	return ExitOK, c.follow(ctx, q, out, last, *interval)
}

// follow prints the records q finds past sequence last every interval
// until ctx is done. It opens the store, reads what is new and closes it,
// so that the auditor is never kept waiting for long.
func (c *recordFlags) follow(ctx context.Context, q audit.Query, out *printer, last uint64, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return out.flush()
		case <-t.C:
		}
		s, _, err := c.openRead(false)
		if err != nil {
			if errors.Is(err, audit.ErrBusy) {
				continue
			}
			return err
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
			return err
		}
	}
}
