package auditcli

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/remaphore/remaphore/audit"
	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/sign"
)

// Whatever anyone publishes on the stream is recorded, refused or not:
// its fields reach query's, tail's, stats' and receipts' JSON. encoding/json
// leaves DEL and the C1 controls (U+0080 to U+009F, CSI among them) as
// they are, and on a terminal they are commands; they are escaped, as
// remaphore's own -json escapes them, and the JSON reads back the same.
func TestJSONEscapesC1(t *testing.T) {
	db := filepath.Join(t.TempDir(), "audit.db")
	s, err := audit.Open(db, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const c1 = "x\u009b2J\u007f\u0085y"
	k := testKey(t, 1)
	now := time.Now()
	var es []audit.Entry
	for i, reason := range []policy.Reason{policy.ReasonAccepted, policy.ReasonBadVerb} {
		env, err := sign.Seal(&sign.Message{Kind: sign.KindMsg, Root: "remaphore", Channel: "all", Dest: "**", Verb: "v" + c1,
			UUID: "u" + c1, Sent: now, Payload: []byte("p" + c1)}, k)
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, audit.Entry{Seq: uint64(i + 1), Stored: now, Subject: "remaphore.msg.all", HeaderID: env.ID, Body: env.Body(),
			Reason: reason, Detail: "d" + c1, Env: env, SenderDest: "com.example.alice"})
	}
	// A receipt of the accepted message from a receiver whose [ Peers ]
	// destination is what it wrote (the auditor refuses any other).
	msgID, _ := sign.ParseID(es[0].Env.ID)
	rcpt, err := sign.Seal(&sign.Message{Kind: sign.KindReceipt, Root: "remaphore", Channel: "all", UUID: "u" + c1, Sent: now,
		RequestID: msgID, ResponderDest: "rd" + c1, Script: true, ExitCode: 3, Accepted: now, Finished: now}, k)
	if err != nil {
		t.Fatal(err)
	}
	es = append(es, audit.Entry{Seq: 3, Stored: now, Subject: "remaphore.receipt." + es[0].Env.ID, HeaderID: rcpt.ID, Body: rcpt.Body(),
		Env: rcpt, SenderDest: "rd" + c1})
	if _, err := s.Append(es); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, args := range [][]string{
		{"query", "-json"}, {"query", "-json", "-rejected"}, {"tail", "-json"}, {"tail", "-json", "-rejected"},
		{"stats", "-json"}, {"receipts", "-json", "-uuid", "u" + c1},
	} {
		r := run(t, append(args, "-db", db)...)
		if strings.ContainsFunc(r.stdout, func(r rune) bool { return r >= 0x7f && r <= 0x9f }) {
			t.Errorf("%s: DEL or a C1 control written as is: %q", strings.Join(args, " "), r.stdout)
		}
		for _, line := range strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n") {
			if line != "" && !json.Valid([]byte(line)) {
				t.Errorf("%s: not JSON: %q", strings.Join(args, " "), line)
			}
		}
		if args[0] == "receipts" && !strings.Contains(r.stdout, `"dest":"rdx\u009b2J\u007f\u0085y"`) {
			t.Errorf("%s: the receipt is not there, escaped: %q", strings.Join(args, " "), r.stdout)
		}
		if args[0] == "query" && !strings.Contains(r.stdout, `"verb":"vx\u009b2J\u007f\u0085y"`) {
			t.Errorf("%s: the verb is not there, escaped: %q", strings.Join(args, " "), r.stdout)
		}
	}
}
