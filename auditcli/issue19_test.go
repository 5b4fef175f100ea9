package auditcli

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/remaphore/remaphore/audit"
	"github.com/remaphore/remaphore/internal/natstest"
	"github.com/remaphore/remaphore/internal/proctest"
	"github.com/remaphore/remaphore/sign"
)

// t1 is the request fixture's clock: fixed, so that whole outputs can be
// compared.
var t1 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// reqFixture is a database holding a request (seq 1), its replies (2 and
// 5), a plain message (6), a message of bob's (8), and two gaps (3-4, 7).
type reqFixture struct {
	db    string
	reqID string // the request's id, 64 hex digits
}

func newReqFixture(t *testing.T) *reqFixture {
	t.Helper()
	alice, bob := testKey(t, 1), testKey(t, 2)
	f := &reqFixture{db: filepath.Join(t.TempDir(), "audit.db")}
	seal := func(k sign.PrivateKey, m *sign.Message) *sign.Envelope {
		t.Helper()
		m.Root, m.Channel = "remaphore", "all"
		if m.Dest == "" {
			m.Dest = "**"
		}
		env, err := sign.Seal(m, k)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	entry := func(seq uint64, env *sign.Envelope, dest string) audit.Entry {
		subject := "remaphore.msg.all"
		if env.Kind == sign.KindReply {
			subject = "remaphore.reply." + hex.EncodeToString(env.RequestID[:])
		}
		return audit.Entry{Seq: seq, Stored: t1.Add(time.Duration(seq) * time.Second), Subject: subject, HeaderID: env.ID,
			Body: env.Body(), Env: env, SenderDest: dest}
	}
	req := seal(alice, &sign.Message{Kind: sign.KindMsg, Request: true, Verb: "deploy", UUID: "job-1", Sent: t1, Payload: []byte("go")})
	f.reqID = req.ID
	id, _ := sign.ParseID(req.ID)
	reply := func(k sign.PrivateKey, dest string, code int32, out string) *sign.Envelope {
		return seal(k, &sign.Message{Kind: sign.KindReply, Verb: "deploy", UUID: "job-1", Dest: "com.example.alice", Sent: t1,
			RequestID: id, ResponderDest: dest, ExitCode: code, Payload: []byte(out)})
	}
	gap := func(first, last uint64) audit.Entry {
		return audit.Entry{Seq: last, Gap: &audit.Gap{First: first, Last: last, Seen: t1.Add(time.Hour),
			Said: "the next message on remaphore.> is seq " + string(rune('0'+last+1)) + "; its first sequence is 1 (5 messages held)"}}
	}
	es := []audit.Entry{
		entry(1, req, "com.example.alice"),
		entry(2, reply(bob, "com.example.bob", 0, "ok"), "com.example.bob"),
		gap(3, 4),
		entry(5, reply(alice, "com.example.alice", 3, "disk full"), "com.example.alice"),
		entry(6, seal(alice, &sign.Message{Kind: sign.KindMsg, Verb: "ping", UUID: "p", Sent: t1}), "com.example.alice"),
		gap(7, 7),
		entry(8, seal(bob, &sign.Message{Kind: sign.KindMsg, Verb: "ping", UUID: "q", Sent: t1}), "com.example.bob"),
	}
	s, err := audit.Open(f.db, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(es); err != nil {
		t.Fatal(err)
	}
	s.Close()
	t.Cleanup(func() { checkFile(t, f.db) })
	return f
}

func exact(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Fatalf("%s:\ngot:\n%s\nwant:\n%s", what, got, want)
	}
}

// Issue 19 item 9: replies are matched to their request by -request, and
// the REQUEST column shows the request's id on the request and on each
// reply.
func TestQuery_RequestFilterAndColumn(t *testing.T) {
	f := newReqFixture(t)
	short := f.reqID[:16]
	want := "" +
		"SEQ  STORED                    KIND     VERB    SENDER             DEST               UUID   REQUEST           EXIT  PAYLOAD\n" +
		"1    2026-03-04T05:06:08.000Z  request  deploy  com.example.alice  **                 job-1  " + short + "  -     \"go\"\n" +
		"2    2026-03-04T05:06:09.000Z  reply    deploy  com.example.bob    com.example.alice  job-1  " + short + "  0     \"ok\"\n" +
		"5    2026-03-04T05:06:12.000Z  reply    deploy  com.example.alice  com.example.alice  job-1  " + short + "  3     \"disk full\"\n"
	for _, id := range []string{short, f.reqID, strings.ToUpper(f.reqID[:8])} {
		got := run(t, "query", "-db", f.db, "-request", id).want(t, ExitOK).stdout
		exact(t, "query -request "+id, got, want)
	}
	// -json: the reply's request_id is the request's id.
	out := run(t, "query", "-db", f.db, "-request", short, "-json").want(t, ExitOK)
	if got := out.jsonSeqs(t); len(got) != 3 {
		t.Fatalf("-json: %v", got)
	}
	lines := strings.Split(strings.TrimSpace(out.stdout), "\n")
	var req, rep struct {
		ID        string `json:"id"`
		RequestID string `json:"request_id"`
		Kind      string `json:"kind"`
	}
	json.Unmarshal([]byte(lines[0]), &req)
	json.Unmarshal([]byte(lines[1]), &rep)
	if req.ID != f.reqID || req.Kind != "request" || rep.RequestID != f.reqID || rep.Kind != "reply" {
		t.Fatalf("-json request %+v, reply %+v", req, rep)
	}
	// Nothing else has that id.
	run(t, "query", "-db", f.db, "-request", "00000000").want(t, ExitOK)
	if got := run(t, "query", "-db", f.db, "-request", "00000000").stdout; got != "" {
		t.Fatalf("unknown request printed %q", got)
	}
	r := run(t, "query", "-db", f.db, "-request", "abc").want(t, ExitUsage)
	exact(t, "bad -request", r.stderr, `remaphore-audit: error: -request "abc" is not a request id`+"\n"+
		"remaphore-audit: hint: give the request's id: 64 hex digits, or at least its first 8, as the REQUEST column shows them\n")
}

// Issue 19 item 9: a -sender destination that names no sender is a
// mistake, said so with the likely intended one, exit 2; a real one that
// merely has nothing in range is not.
func TestQuery_SenderWithNoSuchPeer(t *testing.T) {
	f := newReqFixture(t)
	r := run(t, "query", "-db", f.db, "-sender", "com.fleet.nobody").want(t, ExitUsage)
	exact(t, "no such sender", r.stderr,
		"remaphore-audit: error: -sender com.fleet.nobody: no sender has that destination in the database\n"+
			"remaphore-audit: hint: give a sender's destination as remaphore-audit stats lists them (com.example.alice, com.example.bob), or its public key\n")
	r = run(t, "query", "-db", f.db, "-sender", "com.example.bobb").want(t, ExitUsage)
	exact(t, "typo", r.stderr,
		"remaphore-audit: error: -sender com.example.bobb: no sender has that destination in the database\n"+
			"remaphore-audit: hint: did you mean -sender com.example.bob? (remaphore-audit stats lists every sender)\n")
	run(t, "tail", "-db", f.db, "-sender", "com.fleet.nobody").want(t, ExitUsage)
	if r.stdout != "" {
		t.Fatalf("stdout %q", r.stdout)
	}
	// A peer of the config read (-c) that has sent nothing yet: no mistake.
	dir := t.TempDir()
	user := natstest.NewUser(t, dir)
	conf := filepath.Join(dir, "a.conf")
	os.WriteFile(conf, []byte("server: nats://127.0.0.1:1\ncredentials: "+user.SeedFile+"\ndestination: com.example.audit\n\n[ Peers ]\ncom.example.carol "+testKey(t, 3).Public().String()+" [*]\n"), 0o600)
	r = run(t, "query", "-c", conf, "-db", f.db, "-sender", "com.example.carol").want(t, ExitOK)
	exact(t, "a peer with no records", r.stdout, "")
	r = run(t, "query", "-c", conf, "-db", f.db, "-sender", "com.example.carl").want(t, ExitUsage)
	exact(t, "typo of a config peer", r.stderr,
		"remaphore-audit: error: -sender com.example.carl: no sender has that destination in the database or among the peers of "+conf+"\n"+
			"remaphore-audit: hint: did you mean -sender com.example.carol? (remaphore-audit stats lists every sender)\n")
	// A known sender with nothing in the range: exit 0, nothing printed.
	r = run(t, "query", "-db", f.db, "-sender", "com.example.bob", "-verb", "deploy", "-rejected").want(t, ExitOK)
	exact(t, "known sender, nothing", r.stdout, "")
}

// Issue 19 item 9: rows tail -f prints later line up with the header it
// printed first, though their values are wider than the first rows'.
func TestTail_FollowTableLinesUp(t *testing.T) {
	f := newReqFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb proctest.Buffer
	done := make(chan int)
	go func() {
		done <- Run(ctx, []string{"tail", "-f", "-db", f.db, "-n", "1", "-interval", "20ms"}, &out, &errb)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "com.example.bob") {
		if time.Now().After(deadline) {
			t.Fatalf("tail -f printed:\n%s\nstderr:\n%s", out.String(), errb.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A later record with a longer sequence, sender, uuid and payload.
	carol := testKey(t, 3)
	env, _ := sign.Seal(&sign.Message{Kind: sign.KindMsg, Root: "remaphore", Channel: "all", Dest: "com.example.*", Verb: "status",
		UUID: "a-much-longer-uuid-than-before", Sent: t1, Payload: []byte("x")}, carol)
	s, err := audit.Open(f.db, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append([]audit.Entry{{Seq: 123456, Stored: t1.Add(time.Minute), Subject: "remaphore.msg.all", HeaderID: env.ID,
		Body: env.Body(), Env: env, SenderDest: "com.example.carol"}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for !strings.Contains(out.String(), "123456") {
		if time.Now().After(deadline) {
			t.Fatalf("tail -f printed:\n%s\nstderr:\n%s", out.String(), errb.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != ExitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	want := "" +
		"SEQ         STORED                    KIND     VERB      SENDER                DEST              UUID                                  REQUEST           EXIT  PAYLOAD\n" +
		"8           2026-03-04T05:06:15.000Z  msg      ping      com.example.bob       **                q                                     -                 -     -\n" +
		"123456      2026-03-04T05:07:07.000Z  msg      status    com.example.carol     com.example.*     a-much-longer-uuid-than-before        -                 -     \"x\"\n"
	exact(t, "tail -f", out.String(), want)
}

// Issue 13: verify prints every gap and fails on one; -allow-gaps accepts
// known gaps (still printed); stats counts them and query -gaps lists them.
func TestGaps_VerifyStatsQuery(t *testing.T) {
	f := newReqFixture(t)
	r := run(t, "verify", "-db", f.db).want(t, ExitFailed)
	gaps := "" +
		"gap seq 3-4 (2 sequence(s)) never recorded: the next message on remaphore.> is seq 5; its first sequence is 1 (5 messages held); seen 2026-03-04T06:06:07.000Z\n" +
		"gap seq 7 (1 sequence(s)) never recorded: the next message on remaphore.> is seq 8; its first sequence is 1 (5 messages held); seen 2026-03-04T06:06:07.000Z\n"
	head := r.stdout[strings.Index(r.stdout, "; head seq"):]
	exact(t, "verify", r.stdout, gaps+
		"verify: FAILED: 2 gap(s) (-allow-gaps accepts them): 5 accepted and 0 refused records checked; 2 gap(s): 3 stream sequence(s) never recorded"+head)
	r = run(t, "verify", "-db", f.db, "-allow-gaps").want(t, ExitOK)
	exact(t, "verify -allow-gaps", r.stdout, gaps+
		"verify: ok: 5 accepted and 0 refused records checked; 2 gap(s): 3 stream sequence(s) never recorded (allowed by -allow-gaps)"+head)
	r = run(t, "verify", "-db", f.db, "-json").want(t, ExitFailed)
	if !strings.Contains(r.stdout, `{"gap":{"first":3,"last":4,"seen":"2026-03-04T06:06:07Z","stream_said":"the next message on remaphore.\u003e is seq 5;`) ||
		!strings.Contains(r.stdout, `"gap_seqs":3`) {
		t.Fatalf("verify -json:\n%s", r.stdout)
	}

	r = run(t, "query", "-db", f.db, "-gaps").want(t, ExitOK)
	exact(t, "query -gaps", r.stdout, ""+
		"FIRST  LAST  COUNT  SEEN                      WHAT THE STREAM SAID\n"+
		"3      4     2      2026-03-04T06:06:07.000Z  the next message on remaphore.> is seq 5; its first sequence is 1 (5 messages held)\n"+
		"7      7     1      2026-03-04T06:06:07.000Z  the next message on remaphore.> is seq 8; its first sequence is 1 (5 messages held)\n")
	r = run(t, "query", "-db", f.db, "-gaps", "-json", "-limit", "1").want(t, ExitOK)
	var g struct {
		Record string `json:"record"`
		First  uint64 `json:"first"`
		Last   uint64 `json:"last"`
		Count  uint64 `json:"count"`
		Hash   string `json:"hash"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &g); err != nil || g.Record != "gap" || g.First != 3 || g.Last != 4 || g.Count != 2 || len(g.Hash) != 64 {
		t.Fatalf("query -gaps -json: %q %v", r.stdout, err)
	}
	r = run(t, "query", "-db", f.db, "-gaps", "-verb", "ping").want(t, ExitUsage)
	exact(t, "-gaps with a filter", r.stderr, "remaphore-audit: error: -gaps with -verb\n"+
		"remaphore-audit: hint: query -gaps lists every gap record; it takes -limit and -json, not the record filters\n")

	out := run(t, "stats", "-db", f.db).want(t, ExitOK).stdout
	if !strings.Contains(out, "gaps     2: 3 stream sequence(s) never recorded (query -gaps lists them)\n") {
		t.Fatalf("stats:\n%s", out)
	}
}
