package auditcli

import (
	"bufio"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/remaphore/remaphore/audit"
	"github.com/remaphore/remaphore/internal/jsonesc"
	"github.com/remaphore/remaphore/sign"
)

// tableChunk is how many rows are aligned together: the table is flushed
// every so many rows, so that a query over millions of records streams
// instead of buffering all of them.
const tableChunk = 1000

// timeFormat is the table's time column: UTC, milliseconds.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// printer writes records, problems and stats as a table or JSON lines.
type printer struct {
	w        *bufio.Writer
	tw       *tabwriter.Writer
	json     bool
	body     bool
	rejected bool
	rows     int
	header   bool
	err      error
	// table aligns record and gap rows: unlike tabwriter it keeps its
	// column widths from one flush to the next, so that rows printed
	// later (tail -f, a query's later chunks) line up with the header.
	table aligner
}

// aligner lays rows out in columns two spaces apart, as tabwriter does
// (the last cell unpadded, widths in runes), but remembers the widths
// between flushes: they only grow.
type aligner struct {
	widths []int
	rows   [][]string
}

func (a *aligner) add(cells []string) {
	a.rows = append(a.rows, cells)
}

// minWidths sets the narrowest each column may be (tail -f: room for the
// values still to come).
func (a *aligner) minWidths(w ...int) {
	for i, n := range w {
		if i >= len(a.widths) {
			a.widths = append(a.widths, 0)
		}
		a.widths[i] = max(a.widths[i], n)
	}
}

func (a *aligner) flush(w io.Writer) error {
	for _, r := range a.rows {
		for i := 0; i < len(r)-1; i++ {
			if i >= len(a.widths) {
				a.widths = append(a.widths, 0)
			}
			a.widths[i] = max(a.widths[i], utf8.RuneCountInString(r[i]))
		}
	}
	var b strings.Builder
	for _, r := range a.rows {
		b.Reset()
		for i, c := range r {
			b.WriteString(c)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", a.widths[i]-utf8.RuneCountInString(c)+2))
			}
		}
		b.WriteByte('\n')
		if _, err := io.WriteString(w, b.String()); err != nil {
			a.rows = a.rows[:0]
			return err
		}
	}
	a.rows = a.rows[:0]
	return nil
}

func newPrinter(w io.Writer, asJSON, body, rejected bool) *printer {
	bw := bufio.NewWriterSize(w, 64<<10)
	return &printer{w: bw, tw: tabwriter.NewWriter(bw, 0, 0, 2, ' ', 0), json: asJSON, body: body, rejected: rejected}
}

func (p *printer) flush() error {
	if p.err == nil {
		p.err = p.table.flush(p.w)
	}
	if p.err == nil {
		p.err = p.tw.Flush()
	}
	if p.err == nil {
		p.err = p.w.Flush()
	}
	return p.err
}

func (p *printer) row(cells ...string) {
	if p.err != nil {
		return
	}
	_, p.err = io.WriteString(p.tw, strings.Join(cells, "\t")+"\n")
	if p.rows++; p.rows%tableChunk == 0 && p.err == nil {
		p.err = p.tw.Flush()
	}
}

// recRow adds a row of the record (or gap) table.
func (p *printer) recRow(cells ...string) {
	if p.err != nil {
		return
	}
	p.table.add(cells)
	if p.rows++; p.rows%tableChunk == 0 {
		p.err = p.table.flush(p.w)
	}
}

func (p *printer) jsonLine(v any) {
	if p.err != nil {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		p.err = err
		return
	}
	// Fields come from whoever published: DEL and C1 escaped too.
	_, p.err = p.w.Write(append(jsonesc.C1(b), '\n'))
}

// cell makes a table cell: "-" for empty, quoted when it holds spaces,
// tabs or anything unprintable (a refused message's fields are whatever
// its sender wrote).
func cell(s string) string {
	if s == "" {
		return "-"
	}
	for _, r := range s {
		if !unicode.IsGraphic(r) || unicode.IsSpace(r) || r == utf8.RuneError {
			return strconv.Quote(s)
		}
	}
	return s
}

// lastCell is cell for the last column: spaces are kept (nothing follows
// to misalign), anything unprintable is quoted.
func lastCell(s string) string {
	if s == "" {
		return "-"
	}
	for _, r := range s {
		if !unicode.IsPrint(r) || r == utf8.RuneError {
			return strconv.Quote(s)
		}
	}
	return s
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func kindName(r *audit.Record) string {
	switch {
	case !r.Decoded:
		return "-"
	case r.Kind == sign.KindMsg && r.Request:
		return "request"
	}
	return r.Kind.String()
}

func sender(r *audit.Record) string {
	switch {
	case !r.Decoded:
		return "-"
	case r.SenderDest != "":
		return r.SenderDest
	}
	return r.Sender.String()
}

func (p *printer) record(r *audit.Record) error {
	if p.json {
		p.jsonLine(p.jsonRecord(r))
		return p.err
	}
	if !p.header {
		p.header = true
		if p.rejected {
			p.recRow("SEQ", "STORED", "REASON", "KIND", "VERB", "SENDER", "DEST", "UUID", "REQUEST", "DETAIL")
		} else {
			p.recRow("SEQ", "STORED", "KIND", "VERB", "SENDER", "DEST", "UUID", "REQUEST", "EXIT", "PAYLOAD")
		}
	}
	seq := strconv.FormatUint(r.Seq, 10)
	stored := r.Stored.UTC().Format(timeFormat)
	if p.rejected {
		p.recRow(seq, stored, r.Reason, kindName(r), cell(r.Verb), cell(sender(r)), cell(r.Dest), cell(r.UUID), requestCell(r), lastCell(shorten(r.Detail, 120)))
		return p.err
	}
	exit := "-"
	if r.Decoded && (r.Kind == sign.KindReply || r.Kind == sign.KindReceipt && r.Script) {
		exit = strconv.Itoa(int(r.ExitCode))
	}
	payload := "-"
	if len(r.Payload) > 0 {
		payload = strconv.Quote(shorten(string(r.Payload), 60))
	}
	p.recRow(seq, stored, kindName(r), cell(r.Verb), cell(sender(r)), cell(r.Dest), cell(r.UUID), requestCell(r), exit, payload)
	return p.err
}

// storedWidth is the width of a STORED cell (timeFormat in UTC).
const storedWidth = len("2006-01-02T15:04:05.000Z")

// requestShown is how many hex digits of a request id the table shows:
// enough to tell requests apart and to pass to -request.
const requestShown = 16

// requestCell is the REQUEST column: a request's own id, the id of the
// request a reply answers, "-" for anything else. Both start the same way,
// so a request and its replies share the value (and -request takes it).
func requestCell(r *audit.Record) string {
	switch {
	case !r.Decoded:
		return "-"
	case r.Kind == sign.KindReply, r.Kind == sign.KindReceipt:
		return hex.EncodeToString(r.RequestID[:])[:requestShown]
	case r.Request:
		if id := r.ID(); id != "" {
			return id[:requestShown]
		}
	}
	return "-"
}

// followWidths are the least widths of the record table's columns under
// tail -f: rows printed later, with longer values than the first ones,
// still line up with the header (a sequence of 10 digits, a reply, a
// UUID, a full request column).
func (p *printer) followWidths() {
	if p.rejected {
		p.table.minWidths(10, storedWidth, 16, 7, 8, 20, 16, 36, requestShown)
		return
	}
	p.table.minWidths(10, storedWidth, 7, 8, 20, 16, 36, requestShown, 4)
}

// gap prints a gap record (query -gaps).
func (p *printer) gap(g *audit.Gap) error {
	if p.json {
		p.jsonLine(jsonGap{Record: "gap", First: g.First, Last: g.Last, Count: g.Count(), Seen: g.Seen.UTC(), Said: g.Said,
			Hash: hex.EncodeToString(g.Hash[:]), PrevSeq: g.PrevSeq, PrevHash: hex.EncodeToString(g.PrevHash[:])})
		return p.err
	}
	if !p.header {
		p.header = true
		p.recRow("FIRST", "LAST", "COUNT", "SEEN", "WHAT THE STREAM SAID")
	}
	p.recRow(strconv.FormatUint(g.First, 10), strconv.FormatUint(g.Last, 10), strconv.FormatUint(g.Count(), 10),
		g.Seen.UTC().Format(timeFormat), lastCell(g.Said))
	return p.err
}

// jsonGap is a gap record as one JSON line.
type jsonGap struct {
	Record   string    `json:"record"` // "gap"
	First    uint64    `json:"first"`
	Last     uint64    `json:"last"`
	Count    uint64    `json:"count"`
	Seen     time.Time `json:"seen"`
	Said     string    `json:"stream_said"`
	Hash     string    `json:"hash"`
	PrevSeq  uint64    `json:"prev_seq"`
	PrevHash string    `json:"prev_hash"`
}

// jsonRecord is a record as one JSON line.
type jsonRecord struct {
	Seq           uint64     `json:"seq"`
	Stored        time.Time  `json:"stored"`
	Subject       string     `json:"subject"`
	ID            string     `json:"id,omitempty"`
	HeaderID      string     `json:"header_id,omitempty"`
	Verdict       string     `json:"verdict"`
	Reason        string     `json:"reason"`
	Detail        string     `json:"detail,omitempty"`
	Kind          string     `json:"kind,omitempty"`
	Sender        string     `json:"sender,omitempty"`
	SenderDest    string     `json:"sender_dest,omitempty"`
	Root          string     `json:"root,omitempty"`
	Channel       string     `json:"channel,omitempty"`
	Dest          string     `json:"dest,omitempty"`
	Verb          string     `json:"verb,omitempty"`
	UUID          string     `json:"uuid,omitempty"`
	Sent          *time.Time `json:"sent,omitempty"`
	Request       bool       `json:"request,omitempty"`
	RequestID     string     `json:"request_id,omitempty"`
	ResponderDest string     `json:"responder_dest,omitempty"`
	ExitCode      *int32     `json:"exit_code,omitempty"`
	Accepted      *time.Time `json:"accepted,omitempty"`       // receipts
	Finished      *time.Time `json:"finished,omitempty"`       // receipts
	Payload       *string    `json:"payload,omitempty"`        // when valid UTF-8
	PayloadBase64 string     `json:"payload_base64,omitempty"` // otherwise
	Body          string     `json:"body,omitempty"`           // base64, with -body
	BodySize      uint64     `json:"body_size"`
	BodySHA256    string     `json:"body_sha256,omitempty"` // refused records that keep part of the body
	BodyTruncated bool       `json:"body_truncated,omitempty"`
	Hash          string     `json:"hash"`
	PrevSeq       uint64     `json:"prev_seq"`
	PrevHash      string     `json:"prev_hash"`
}

func (p *printer) jsonRecord(r *audit.Record) jsonRecord {
	j := jsonRecord{Seq: r.Seq, Stored: r.Stored.UTC(), Subject: r.Subject, ID: r.ID(), HeaderID: r.HeaderID,
		Verdict: "accepted", Reason: r.Reason, Detail: r.Detail,
		Hash: hex.EncodeToString(r.Hash[:]), PrevSeq: r.PrevSeq, PrevHash: hex.EncodeToString(r.PrevHash[:])}
	if !r.Accepted() {
		j.Verdict = "rejected"
	}
	j.BodySize, j.BodyTruncated = r.Size(), r.Truncated()
	if r.BodySHA256 != ([audit.HashSize]byte{}) {
		j.BodySHA256 = hex.EncodeToString(r.BodySHA256[:])
	}
	if p.body {
		j.Body = base64.StdEncoding.EncodeToString(r.Body)
	}
	if !r.Decoded {
		return j
	}
	sent := r.Sent.UTC()
	j.Kind, j.Sender, j.SenderDest = kindName(r), r.Sender.String(), r.SenderDest
	j.Root, j.Channel, j.Dest, j.Verb, j.UUID, j.Sent, j.Request = r.Root, r.Channel, r.Dest, r.Verb, r.UUID, &sent, r.Request
	if r.Kind == sign.KindReply || r.Kind == sign.KindReceipt {
		code := r.ExitCode
		j.RequestID, j.ResponderDest, j.ExitCode = hex.EncodeToString(r.RequestID[:]), r.ResponderDest, &code
	}
	if r.Kind == sign.KindReceipt {
		receiptJSON(&j, r)
	}
	if utf8.Valid(r.Payload) {
		s := string(r.Payload)
		j.Payload = &s
	} else {
		j.PayloadBase64 = base64.StdEncoding.EncodeToString(r.Payload)
	}
	return j
}

func (p *printer) problem(pr audit.Problem) {
	if p.json {
		p.jsonLine(pr)
		return
	}
	if p.err == nil {
		_, p.err = fmt.Fprintln(p.w, pr.String())
	}
}

// verifyGap prints one gap verify found.
func (p *printer) verifyGap(g audit.Gap) {
	if p.json {
		p.jsonLine(struct {
			Gap audit.Gap `json:"gap"`
		}{g})
		return
	}
	if p.err == nil {
		_, p.err = fmt.Fprintln(p.w, g.String())
	}
}

func (p *printer) verifySummary(res audit.VerifyResult, allowGaps bool) {
	if p.json {
		p.jsonLine(struct {
			Summary audit.VerifyResult `json:"summary"`
		}{res})
		return
	}
	if p.err != nil {
		return
	}
	var fails []string
	if res.Problems > 0 {
		fails = append(fails, fmt.Sprintf("%d problem(s)", res.Problems))
	}
	gaps := ""
	if len(res.Gaps) > 0 {
		gaps = fmt.Sprintf("; %d gap(s): %d stream sequence(s) never recorded", len(res.Gaps), res.GapSeqs)
		if allowGaps {
			gaps += " (allowed by -allow-gaps)"
		} else {
			fails = append(fails, fmt.Sprintf("%d gap(s) (-allow-gaps accepts them)", len(res.Gaps)))
		}
	}
	verdict := "ok"
	if len(fails) > 0 {
		verdict = "FAILED: " + strings.Join(fails, ", ")
	}
	_, p.err = fmt.Fprintf(p.w, "verify: %s: %d accepted and %d refused records checked%s; head seq %d hash %s\n",
		verdict, res.Accepted, res.Rejected, gaps, res.Head.Seq, res.Head.Hash)
}

func (p *printer) stats(st *audit.Stats) {
	if p.json {
		p.jsonLine(st)
		return
	}
	ts := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format(timeFormat)
	}
	p.row("records", fmt.Sprintf("%d accepted, %d refused taking %d bytes (%d older refused evicted by the caps)", st.Accepted, st.Rejected, st.RejectedBytes, st.Evicted))
	p.row("gaps", fmt.Sprintf("%d: %d stream sequence(s) never recorded (query -gaps lists them)", st.Gaps, st.GapSeqs))
	p.row("stream", fmt.Sprintf("up to seq %d, stored %s to %s", st.LastSeq, ts(st.First), ts(st.Last)))
	p.row("head", fmt.Sprintf("seq %d hash %s", st.Head.Seq, st.Head.Hash))
	p.row("")
	p.row("VERDICT", "COUNT")
	for _, c := range st.Verdicts {
		p.row(c.Name, strconv.FormatUint(c.Accepted+c.Rejected, 10))
	}
	p.row("")
	p.row("VERB", "ACCEPTED", "REFUSED")
	for _, c := range st.Verbs {
		p.row(cell(c.Name), strconv.FormatUint(c.Accepted, 10), strconv.FormatUint(c.Rejected, 10))
	}
	p.row("")
	p.row("SENDER", "KEY", "ACCEPTED", "REFUSED")
	for _, c := range st.Senders {
		p.row(cell(c.Dest), c.KeyText, strconv.FormatUint(c.Accepted, 10), strconv.FormatUint(c.Rejected, 10))
	}
}
