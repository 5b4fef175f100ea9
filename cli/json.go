package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"time"
	"unicode/utf8"

	"github.com/remaphore/remaphore/internal/jsonesc"
	"github.com/remaphore/remaphore/node"
	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/sign"
	"github.com/remaphore/remaphore/transport"
)

// -json output: one JSON object per line on stdout, each with a "type"
// (docs/json.md is the reference). Field names are those of
// remaphore-audit query -json where they mean the same thing. encoding/json escapes every control
// character (newline and CR included) and U+2028/U+2029 inside strings,
// so whatever bytes a responder or sender chose, an object is exactly one
// line and cannot end early or pose as another. It would also silently
// replace bytes that are not UTF-8 with U+FFFD; output and payloads are
// promised exactly as sent, so those go as base64 in a field of their own
// ("output_base64", "payload_base64") instead.

// jsonBytes holds an output or payload: Text when it is valid UTF-8, else
// Base64. Exactly one of them is set.
type jsonBytes struct{ Text, Base64 *string }

func bytesOf(b []byte) jsonBytes {
	s := string(b)
	if utf8.ValidString(s) {
		return jsonBytes{Text: &s}
	}
	e := base64.StdEncoding.EncodeToString(b)
	return jsonBytes{Base64: &e}
}

// jsonTime is a time in UTC at nanosecond precision (RFC 3339), so a
// script compares them without knowing the hosts' zones.
func jsonTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// jsonAnswer is one responder's answer to -r.
type jsonAnswer struct {
	Type         string  `json:"type"` // "answer"
	RequestID    string  `json:"request_id"`
	Sender       string  `json:"sender"`
	SenderDest   string  `json:"sender_dest"` // its name in the requester's [ Peers ]
	ExitCode     int     `json:"exit_code"`
	Output       *string `json:"output,omitempty"`
	OutputBase64 *string `json:"output_base64,omitempty"`
	// ElapsedMS is from signing the request to the answer's arrival,
	// both on this host's clock (monotonic), so clock skew between hosts
	// does not enter it.
	ElapsedMS float64 `json:"elapsed_ms"`
	Sent      string  `json:"sent"`   // the responder's clock
	Stored    string  `json:"stored"` // the server's clock
	ID        string  `json:"id"`
	Seq       uint64  `json:"seq"`
}

// jsonSummary ends -r's output: always printed, so a script knows the
// answers are over, with the responders that did not answer and those that
// answered non-zero (empty lists, never null).
type jsonSummary struct {
	Type      string   `json:"type"` // "summary"
	RequestID string   `json:"request_id"`
	Expected  int      `json:"expected"`
	Answered  int      `json:"answered"`
	Missing   []string `json:"missing"`
	Failed    []string `json:"failed"`
	// Reason says what ended the wait before everyone answered.
	Reason string `json:"reason,omitempty"`
}

// jsonMessage is a message a receiver accepted.
type jsonMessage struct {
	Type       string `json:"type"` // "message"
	ID         string `json:"id"`
	Seq        uint64 `json:"seq"`
	Sender     string `json:"sender"`
	SenderDest string `json:"sender_dest"` // its name in the receiver's [ Peers ]
	Dest       string `json:"dest"`        // the pattern the sender addressed
	// Matched is the receiver's own destination that the pattern matched;
	// null when the receiver matches any destination (-d).
	Matched       *string `json:"matched"`
	Verb          string  `json:"verb"`
	UUID          string  `json:"uuid"`
	Request       bool    `json:"request"`
	Payload       *string `json:"payload,omitempty"`
	PayloadBase64 *string `json:"payload_base64,omitempty"`
	Sent          string  `json:"sent"`
	Stored        string  `json:"stored"`
}

// jsonSent is what -s -json prints once the stream stored the message:
// the id and sequence to find it again (in the auditor, in the stream).
type jsonSent struct {
	Type   string `json:"type"` // "sent"
	ID     string `json:"id"`
	Seq    uint64 `json:"seq"`
	Sender string `json:"sender"`
	Dest   string `json:"dest"`
	Verb   string `json:"verb"`
	UUID   string `json:"uuid"`
	Sent   string `json:"sent"`
}

// writeJSON writes v as one line with one Write, so lines never
// interleave.
func writeJSON(w io.Writer, v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	// <, > and & as themselves: the output is read by programs and
	// people, not embedded in HTML. Control characters and U+2028/U+2029
	// are escaped all the same.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil { // Encode ends the line
		return fmt.Errorf("encode JSON: %w", err) // no type above can fail
	}
	if _, err := w.Write(jsonesc.C1(b.Bytes())); err != nil {
		return fmt.Errorf("write stdout: %w", err)
	}
	return nil
}

// answerJSON returns -r -json's OnAnswer for the request req.
func (r *runner) answerJSON(req *sign.Envelope) func(node.Answer) error {
	return func(a node.Answer) error {
		out := bytesOf(a.Output)
		return writeJSON(r.stdout, jsonAnswer{
			Type: "answer", RequestID: req.ID, Sender: a.Responder.Key.String(), SenderDest: a.Responder.Dest,
			ExitCode: a.ExitCode, Output: out.Text, OutputBase64: out.Base64,
			ElapsedMS: millis(time.Since(req.Sent)), Sent: jsonTime(a.Sent), Stored: jsonTime(a.Stored),
			ID: a.ID, Seq: a.Seq,
		})
	}
}

// millis is d in milliseconds, to the microsecond.
func millis(d time.Duration) float64 { return math.Round(float64(d.Microseconds())) / 1000 }

// summaryJSON prints -r -json's last object.
func (r *runner) summaryJSON(ctx context.Context, req *sign.Envelope, out *node.Outcome) error {
	s := jsonSummary{Type: "summary", RequestID: req.ID, Expected: len(out.Responders), Answered: len(out.Answers),
		Missing: append([]string{}, out.Missing...), Failed: append([]string{}, out.Failed...)}
	if !out.Complete() {
		s.Reason = fmt.Sprint(context.Cause(ctx))
	}
	return writeJSON(r.stdout, s)
}

// messageJSON prints a message the receiver accepted; dest is the
// receiver's destination, matched unless anyDest.
func (r *runner) messageJSON(v policy.Verdict, d transport.Delivery, dest string, anyDest bool) error {
	env := v.Env
	p := bytesOf(env.Payload)
	m := jsonMessage{
		Type: "message", ID: env.ID, Seq: d.Seq, Sender: env.Sender.String(), SenderDest: v.Peer.Dest,
		Dest: env.Dest, Verb: env.Verb, UUID: env.UUID, Request: env.Request,
		Payload: p.Text, PayloadBase64: p.Base64, Sent: jsonTime(env.Sent), Stored: jsonTime(d.Stored),
	}
	if !anyDest {
		m.Matched = &dest
	}
	return writeJSON(r.stdout, m)
}

// sentJSON prints what -s -json reports.
func (r *runner) sentJSON(env *sign.Envelope, seq uint64) error {
	return writeJSON(r.stdout, jsonSent{Type: "sent", ID: env.ID, Seq: seq, Sender: env.Sender.String(),
		Dest: env.Dest, Verb: env.Verb, UUID: env.UUID, Sent: jsonTime(env.Sent)})
}
