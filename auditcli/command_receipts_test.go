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

// receiptsDB holds a message with uuid rollout, two receipts of it (one
// with a script that exited 3, one without a script) and a refused one.
func receiptsDB(t *testing.T) (db string, msgID string) {
	t.Helper()
	db = filepath.Join(t.TempDir(), "audit.db")
	s, err := audit.Open(db, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sent := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	sender, r1, r2 := testKey(t, 1), testKey(t, 2), testKey(t, 3)
	msg, err := sign.Seal(&sign.Message{Kind: sign.KindMsg, Root: "remaphore", Channel: "all", Dest: "**", Verb: "deploy", UUID: "rollout", Sent: sent}, sender)
	if err != nil {
		t.Fatal(err)
	}
	es := []audit.Entry{{Seq: 1, Stored: sent, Subject: "remaphore.msg.all", HeaderID: msg.ID, Body: msg.Body(), Reason: policy.ReasonAccepted, Env: msg, SenderDest: "com.example.sender"}}
	id, _ := msg.IDBytes()
	for i, r := range []struct {
		key    sign.PrivateKey
		dest   string
		script bool
		code   int32
		reason policy.Reason
	}{
		{r1, "com.example.r1", true, 3, policy.ReasonAccepted},
		{r2, "com.example.r2", false, 0, policy.ReasonAccepted},
		{r2, "com.example.forged", true, 0, policy.ReasonBadSignature},
	} {
		fin := sent.Add(time.Duration(i+1) * 250 * time.Millisecond)
		env, err := sign.Seal(&sign.Message{Kind: sign.KindReceipt, Root: "remaphore", Channel: "all", Dest: "com.example.sender", Verb: "deploy",
			UUID: "rollout", Sent: fin, RequestID: id, ResponderDest: r.dest, Script: r.script, ExitCode: r.code, Accepted: sent, Finished: fin}, r.key)
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, audit.Entry{Seq: uint64(i + 2), Stored: fin, Subject: "remaphore.receipt." + msg.ID, HeaderID: env.ID, Body: env.Body(),
			Reason: r.reason, Env: env, SenderDest: r.dest})
	}
	if _, err := s.Append(es); err != nil {
		t.Fatal(err)
	}
	return db, msg.ID
}

func TestReceipts_Command(t *testing.T) {
	db, msgID := receiptsDB(t)
	table := run(t, "receipts", "-db", db, "-uuid", "rollout").want(t, ExitOK).stdout
	for _, want := range []string{"# message " + msgID + "  verb deploy", "DEST", "com.example.r1  3     250ms", "com.example.r2  none  500ms"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	if strings.Contains(table, "forged") {
		t.Errorf("a refused receipt is listed:\n%s", table)
	}
	js := run(t, "receipts", "-db", db, "-id", msgID[:8], "-json").want(t, ExitOK).stdout
	var lines []jsonReceipt
	for _, l := range strings.Split(strings.TrimSpace(js), "\n") {
		var j jsonReceipt
		if err := json.Unmarshal([]byte(l), &j); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		lines = append(lines, j)
	}
	if len(lines) != 2 || lines[0].Dest != "com.example.r1" || *lines[0].ExitCode != 3 || *lines[0].DelayMS != 250 ||
		lines[1].ExitCode != nil || lines[1].Script || lines[1].Message != msgID {
		t.Errorf("-json: %s", js)
	}
	// query -uuid shows the message with its receipts.
	q := run(t, "query", "-db", db, "-uuid", "rollout").want(t, ExitOK).stdout
	if strings.Count(q, "receipt") != 2 || !strings.Contains(q, msgID[:16]) {
		t.Errorf("query -uuid:\n%s", q)
	}

	for _, c := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"receipts", "-db", db}, ExitUsage, "give one of -uuid and -id"},
		{[]string{"receipts", "-db", db}, ExitUsage, "remaphore-audit receipts -uuid U, or -id MESSAGEID (the id remaphore -s -json prints, or query's id)"},
		{[]string{"receipts", "-db", db, "-id", "xyz"}, ExitUsage, "give the message's id: 64 hex digits, or at least its first 8 (remaphore -s -json prints it; query shows it)"},
		{[]string{"receipts", "-db", db, "-uuid", "rollout", "-id", msgID}, ExitUsage, "give one of -uuid and -id"},
		{[]string{"receipts", "-db", db, "-id", "xyz"}, ExitUsage, `-id "xyz" is not a message id`},
		{[]string{"receipts", "-db", db, "-uuid", "nothing-here"}, ExitFailed, "no message and no receipt"},
	} {
		r := run(t, c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.stderr) || r.stdout != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr:\n%s\nwant exit %d and %q", c.args, r.code, r.stdout, r.stderr, c.code, c.stderr)
		}
	}
}

// The table quotes what came from the network (the message's verb, the
// receiver's name) when it holds control characters, as query does, so a
// record stored by an auditor before the wrong-responder check cannot
// write escape sequences or fake lines to a terminal.
func TestReceipts_QuotesNetworkFields(t *testing.T) {
	db := filepath.Join(t.TempDir(), "audit.db")
	s, err := audit.Open(db, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sent := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	sender, r1 := testKey(t, 1), testKey(t, 2)
	msg, err := sign.Seal(&sign.Message{Kind: sign.KindMsg, Root: "remaphore", Channel: "all", Dest: "**", Verb: "de\x1b[2Jploy", UUID: "esc", Sent: sent}, sender)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := msg.IDBytes()
	dest := "com.example.r1\x1b[2J\r\ncom.example.r9  0"
	fin := sent.Add(15 * time.Millisecond)
	rec, err := sign.Seal(&sign.Message{Kind: sign.KindReceipt, Root: "remaphore", Channel: "all", Dest: "com.example.sender", Verb: "deploy",
		UUID: "esc", Sent: fin, RequestID: id, ResponderDest: dest, Script: true, Accepted: sent, Finished: fin}, r1)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Append([]audit.Entry{
		{Seq: 1, Stored: sent, Subject: "remaphore.msg.all", HeaderID: msg.ID, Body: msg.Body(), Reason: policy.ReasonAccepted, Env: msg, SenderDest: "com.example.sender"},
		{Seq: 2, Stored: fin, Subject: "remaphore.receipt." + msg.ID, HeaderID: rec.ID, Body: rec.Body(), Reason: policy.ReasonAccepted, Env: rec, SenderDest: dest},
	})
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	got := run(t, "receipts", "-db", db, "-uuid", "esc", "-since", "2026-01-01T00:00:00Z").want(t, ExitOK).stdout
	want := "# message " + msg.ID + `  verb "de\x1b[2Jploy"  sent 2026-01-02T03:04:05.000Z` + "\n" +
		`DEST                                          EXIT  DELAY  MESSAGE` + "\n" +
		`"com.example.r1\x1b[2J\r\ncom.example.r9  0"  0     15ms   ` + msg.ID[:16] + "\n"
	if got != want {
		t.Errorf("got:\n%q\nwant:\n%q", got, want)
	}
}
