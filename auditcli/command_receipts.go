package auditcli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/remaphore/remaphore/audit"
	"github.com/remaphore/remaphore/internal/jsonesc"
)

// cmdReceipts prints who acted on one message: one line per receiver
// destination with its receipt's exit code and delay after the send.
// It exits 1 when neither the message nor a receipt of it is recorded.
func cmdReceipts(_ context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	c := newFlags("receipts", synopses["receipts"], stderr, "warn")
	c.waitFlag()
	uuid := c.fs.String("uuid", "", "the message's `uuid` (served by the uuid index)")
	id := c.fs.String("id", "", "the message's `id` (64 hex digits, or at least the first 8); reads the records of the time range")
	since := c.fs.String("since", "", "only records stored at or after `T` (bounds an -id search)")
	until := c.fs.String("until", "", "only records stored at or before `T`")
	asJSON := c.fs.Bool("json", false, "print one JSON object per receipt")
	if err := c.parse(args); err != nil {
		return 0, err
	}
	if (*uuid == "") == (*id == "") {
		return 0, usageErr("remaphore-audit receipts -uuid U, or -id MESSAGEID (the id remaphore -s -json prints, or query's id)", "give one of -uuid and -id")
	}
	if l := strings.ToLower(*id); *id != "" && (len(l) < 8 || len(l) > 64 || strings.Trim(l, "0123456789abcdef") != "") {
		return 0, usageErr("give the message's id: 64 hex digits, or at least its first 8 (remaphore -s -json prints it; query shows it)",
			"-id %q is not a message id", *id)
	}
	if _, err := c.logger(stderr); err != nil {
		return 0, err
	}
	f := filters{since: *since, until: *until, uuid: *uuid, request: *id}
	q, err := f.query(time.Now())
	if err != nil {
		return 0, err
	}
	s, _, err := c.openRead(false)
	if err != nil {
		return 0, err
	}
	res, err := s.Receipts(q)
	s.Close()
	if err != nil {
		return 0, err
	}
	if len(res.Messages) == 0 && len(res.Receipts) == 0 {
		fmt.Fprintln(stderr, "remaphore-audit: no message and no receipt recorded for that "+map[bool]string{true: "uuid", false: "id"}[*uuid != ""])
		return ExitFailed, nil
	}
	return ExitOK, printReceipts(stdout, res, *asJSON)
}

// jsonReceipt is one receipt as a JSON line.
type jsonReceipt struct {
	Message  string    `json:"message"` // the message's id
	Dest     string    `json:"dest"`    // the receiver's destination
	Script   bool      `json:"script"`
	ExitCode *int32    `json:"exit_code,omitempty"` // when a script ran
	Sent     time.Time `json:"sent,omitzero"`       // the message's; zero when not recorded
	Accepted time.Time `json:"accepted"`
	Finished time.Time `json:"finished"`
	// DelayMS is finished - sent in milliseconds, when the message is
	// recorded.
	DelayMS *float64 `json:"delay_ms,omitempty"`
	Seq     uint64   `json:"seq"`
}

func printReceipts(w io.Writer, res *audit.Receipts, asJSON bool) error {
	var b strings.Builder
	sentOf := func(r *audit.Record) time.Time {
		if m := res.MessageOf(r); m != nil {
			return m.Sent
		}
		return time.Time{}
	}
	if asJSON {
		for _, r := range res.Receipts {
			sent := sentOf(r)
			j := jsonReceipt{Message: r.MessageRef(), Dest: r.ResponderDest, Script: r.Script, Sent: sent.UTC(),
				Accepted: r.AcceptedAt.UTC(), Finished: r.FinishedAt.UTC(), Seq: r.Seq}
			if sent.IsZero() {
				j.Sent = time.Time{}
			} else {
				ms := float64(r.FinishedAt.Sub(sent)) / float64(time.Millisecond)
				j.DelayMS = &ms
			}
			if r.Script {
				code := r.ExitCode
				j.ExitCode = &code
			}
			line, err := json.Marshal(j)
			if err != nil {
				return err
			}
			b.Write(append(jsonesc.C1(line), '\n'))
		}
		_, err := io.WriteString(w, b.String())
		return err
	}
	for _, m := range res.Messages {
		// The verb and the receiver's name come from the network: quoted,
		// as query quotes them, when they hold anything unprintable.
		fmt.Fprintf(&b, "# message %s  verb %s  sent %s\n", m.ID(), cell(m.Verb), m.Sent.UTC().Format(timeFormat))
	}
	a := &aligner{}
	a.add([]string{"DEST", "EXIT", "DELAY", "MESSAGE"})
	for _, r := range res.Receipts {
		// DELAY: "-" when the message itself is not recorded (older than
		// the stream, evicted, or never sent through it).
		sent := sentOf(r)
		exit, delay := "none", "-"
		if r.Script {
			exit = strconv.Itoa(int(r.ExitCode))
		}
		if !sent.IsZero() {
			delay = r.FinishedAt.Sub(sent).Round(time.Millisecond).String()
		}
		a.add([]string{cell(r.ResponderDest), exit, delay, r.MessageRef()[:16]})
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	return a.flush(w)
}

// receiptJSON adds a receipt's own fields to query's JSON: its times, and
// no exit code when no script ran.
func receiptJSON(j *jsonRecord, r *audit.Record) {
	a, f := r.AcceptedAt.UTC(), r.FinishedAt.UTC()
	j.Accepted, j.Finished = &a, &f
	if !r.Script {
		j.ExitCode = nil
	}
}
