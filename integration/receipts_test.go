package integration

import (
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/remaphore/remaphore/sign"
	"github.com/remaphore/remaphore/transport"
)

// receiptLine is one line of `remaphore-audit receipts -json`.
type receiptLine struct {
	Message  string   `json:"message"`
	Dest     string   `json:"dest"`
	Script   bool     `json:"script"`
	ExitCode *int32   `json:"exit_code"`
	DelayMS  *float64 `json:"delay_ms"`
}

// auditReceipts polls `remaphore-audit receipts -json args` until it
// lists want receipts (the auditor records asynchronously), and returns
// them.
func auditReceipts(t *testing.T, cfg string, want int, args ...string) []receiptLine {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		p := startBinary(t, auditBinary(t), "audit-receipts", append([]string{"receipts", "-c", cfg, "-json"}, args...)...)
		code := p.wait(t, procBound+5*time.Second)
		var got []receiptLine
		for _, l := range strings.Split(strings.TrimSpace(p.stdout.String()), "\n") {
			if l == "" {
				continue
			}
			var r receiptLine
			if err := json.Unmarshal([]byte(l), &r); err != nil {
				t.Fatalf("receipts line %q: %v", l, err)
			}
			got = append(got, r)
		}
		if code == exitOK && len(got) >= want || time.Now().After(deadline) {
			if len(got) != want {
				t.Fatalf("remaphore-audit receipts %v: exit %d, %d receipts, want %d\n%s", args, code, len(got), want, p.describe())
			}
			return got
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Receipts end to end: two receivers with receipts: true act on one
// message (one runs a script that exits 3, one has no script), a third
// receiver has receipts off (the default) and publishes none. The auditor
// records both receipts; `receipts -uuid` lists each host with its exit
// code and delay after the send, `query -uuid` shows the message with its
// receipts; r2 runs as -D com.test.r1, yet its receipt names r2. Then
// hostile receipts: a forged one, one from a key that is not the auditor's
// peer, and r2's key claiming r1's name or a name with control characters
// are recorded as refused; the same receipt
// published twice is stored once; a receipt of a message the auditor never
// saw is stored and listed without a delay.
func TestReceipts(t *testing.T) {
	b := newBed(t)
	snd := newNode(t, "com.test.sender")
	r1, r2, r3 := newNode(t, "com.test.r1"), newNode(t, "com.test.r2"), newNode(t, "com.test.r3")
	sendCfg := b.config(t, snd, "deploy")
	recvConf := func(n node, extra string) string {
		return writeConf(t, b.dir, strings.ReplaceAll(n.dest, ".", "_"), conf{servers: b.c.URLs(), creds: b.c.User.SeedFile,
			dest: n.dest, extra: extra, identities: []identity{{key: n.key, verbs: "*"}}, peers: []peer{peerOf(snd, "deploy")}})
	}
	cfg1, cfg2, cfg3 := recvConf(r1, "receipts: true\n"), recvConf(r2, "receipts: true\n"), recvConf(r3, "")
	db := filepath.Join(b.dir, "audit.db")
	auditCfg := writeConf(t, b.dir, "audit", conf{servers: b.c.URLs(), creds: b.c.User.SeedFile, dest: "com.test.audit",
		extra: "audit_db: " + db + "\n", peers: []peer{peerOf(snd, "deploy"), peerOf(r1, "*"), peerOf(r2, "*"), peerOf(r3, "*")}})
	exit3 := writeScript(t, b.dir, "exit3.sh", "exit 3\n")

	aud := startBinary(t, auditBinary(t), "auditor", "run", "-c", auditCfg, "-log", "info")
	aud.waitFor(t, "msg=ready", readyWithin)

	const uuid = "rollout-42"
	p1 := start(t, "r1", "-c", cfg1, "-v", "deploy", "-o", "-t", "60s", "-log", "info", exit3)
	// r2 waits as r1's name (-D): its receipt still names r2, the name
	// its key has in the auditor's [ Peers ], so it neither claims nor
	// hides what r1 did.
	p2 := start(t, "r2", "-c", cfg2, "-D", r1.dest, "-v", "deploy", "-o", "-t", "60s", "-log", "info")
	p3 := start(t, "r3", "-c", cfg3, "-v", "deploy", "-o", "-t", "60s", "-log", "info")
	for _, p := range []*proc{p1, p2, p3} {
		p.waitReady(t)
	}
	s := run(t, "sender", "-c", sendCfg, "-s", "-v", "deploy", "-u", uuid, "v1.2.3")
	expectCode(t, s, s.code, exitOK)
	expectCode(t, p1, p1.wait(t, 40*time.Second), exitScript)
	expectCode(t, p2, p2.wait(t, 40*time.Second), exitOK)
	expectCode(t, p3, p3.wait(t, 40*time.Second), exitOK)

	got := auditReceipts(t, auditCfg, 2, "-uuid", uuid)
	if got[0].Message != got[1].Message {
		t.Fatalf("receipts of two messages: %+v", got)
	}
	if got[0].Dest != r1.dest || !got[0].Script || got[0].ExitCode == nil || *got[0].ExitCode != 3 || got[0].DelayMS == nil || *got[0].DelayMS <= 0 {
		t.Errorf("r1's receipt: %+v, want %s, script exit 3, a positive delay", got[0], r1.dest)
	}
	if got[1].Dest != r2.dest || got[1].Script || got[1].ExitCode != nil || got[1].DelayMS == nil {
		t.Errorf("r2's receipt: %+v, want %s, no script, a delay", got[1], r2.dest)
	}
	msgID := got[0].Message
	// The table form, and -id.
	tp := startBinary(t, auditBinary(t), "audit-receipts-table", "receipts", "-c", auditCfg, "-id", msgID[:12])
	expectCode(t, tp, tp.wait(t, procBound+5*time.Second), exitOK)
	if out := tp.stdout.String(); !strings.Contains(out, "DEST") || !strings.Contains(out, r1.dest+"  3") || !strings.Contains(out, r2.dest+"  none") || strings.Contains(out, r3.dest) {
		t.Errorf("receipts -id table:\n%s", out)
	}
	// query -uuid: the message and its two receipts.
	if recs := auditQuery(t, auditCfg, "-uuid", uuid); len(recs) != 3 {
		t.Errorf("query -uuid %s: %d records, want the message and 2 receipts", uuid, len(recs))
	}

	// ----- hostile receipts -----
	c := dial(t, b.c, b.c.URLs()[0])
	id, err := sign.ParseID(msgID)
	if err != nil {
		t.Fatal(err)
	}
	receipt := func(key sign.PrivateKey, of [sign.IDSize]byte, dest string) *sign.Envelope {
		now := time.Now()
		env, err := sign.Seal(&sign.Message{Kind: sign.KindReceipt, Root: root, Channel: transport.DefaultChannel, Dest: snd.dest,
			Verb: "deploy", UUID: uuid, Sent: now, RequestID: of, ResponderDest: dest, Accepted: now, Finished: now}, key)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	stranger := newNode(t, "com.test.stranger")
	forged := receipt(r1.key, id, "com.test.r1-forged")
	c.publish(t, transport.ReceiptSubject(root, msgID), forge(forged), forged.ID)
	alien := receipt(stranger.key, id, stranger.dest)
	c.publish(t, transport.ReceiptSubject(root, msgID), alien.Body(), alien.ID)
	// r2's key speaking for r1, and for a name with terminal escapes and a
	// line break: both wrong-responder.
	spoof := receipt(r2.key, id, r1.dest)
	c.publish(t, transport.ReceiptSubject(root, msgID), spoof.Body(), spoof.ID)
	escaped := receipt(r2.key, id, r2.dest+"\x1b[2J\r\ncom.test.r3")
	c.publish(t, transport.ReceiptSubject(root, msgID), escaped.Body(), escaped.ID)

	// A receipt of a message never recorded, published twice: the stream
	// drops the copy (duplicate window), the auditor stores one.
	var unseen [sign.IDSize]byte
	rand.Read(unseen[:])
	lone := receipt(r2.key, unseen, r2.dest)
	unseenID := lone.RequestID
	first := c.publish(t, transport.ReceiptSubject(root, hexID(unseenID)), lone.Body(), lone.ID)
	again := c.publish(t, transport.ReceiptSubject(root, hexID(unseenID)), lone.Body(), lone.ID)
	if first.Duplicate || !again.Duplicate || again.Sequence != first.Sequence {
		t.Errorf("re-publish of the same receipt: first %+v, again %+v; want the copy dropped as a duplicate", first, again)
	}
	lines := auditReceipts(t, auditCfg, 1, "-id", hexID(unseenID))
	if lines[0].Dest != r2.dest || lines[0].DelayMS != nil {
		t.Errorf("receipt of an unseen message: %+v, want %s without a delay", lines[0], r2.dest)
	}

	deadline := time.Now().Add(60 * time.Second)
	for {
		reasons := map[string]int{}
		for _, r := range auditQuery(t, auditCfg, "-rejected", "-uuid", uuid) {
			reasons[r.Reason]++
		}
		if reasons["bad-signature"] == 1 && reasons["unknown-sender"] == 1 && reasons["wrong-responder"] == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("refused receipts by reason: %v, want one bad-signature, one unknown-sender and two wrong-responder", reasons)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The refused ones are not listed as receipts; the one of the unseen
	// message (same uuid) is, without a delay.
	all := auditReceipts(t, auditCfg, 3, "-uuid", uuid)
	for _, r := range all {
		if (r.Message == hexID(unseenID)) != (r.DelayMS == nil) {
			t.Errorf("receipt %+v: a delay exactly when its message is recorded", r)
		}
	}
	// verify re-checks every stored receipt's signature and encoding.
	vp := startBinary(t, auditBinary(t), "audit-verify", "verify", "-c", auditCfg)
	expectCode(t, vp, vp.wait(t, procBound+5*time.Second), exitOK)
}

func hexID(id [sign.IDSize]byte) string {
	const digits = "0123456789abcdef"
	b := make([]byte, 0, 2*len(id))
	for _, c := range id {
		b = append(b, digits[c>>4], digits[c&15])
	}
	return string(b)
}

// A receipt that cannot be published never changes the receiver's exit
// code: the server goes away while the script runs, the receipt's publish
// fails (after its retries), the receiver logs it and exits with the
// script's code, 0.
func TestReceiptLostKeepsExitCode(t *testing.T) {
	b := newBed(t)
	snd, rcv := newNode(t, "com.test.sender"), newNode(t, "com.test.r1")
	sendCfg := b.config(t, snd, "deploy")
	cfg := writeConf(t, b.dir, "r1", conf{servers: b.c.URLs(), creds: b.c.User.SeedFile, dest: rcv.dest,
		extra: "receipts: true\n", identities: []identity{{key: rcv.key, verbs: "*"}}, peers: []peer{peerOf(snd, "deploy")}})
	started, release := filepath.Join(b.dir, "started"), filepath.Join(b.dir, "release")
	script := writeScript(t, b.dir, "slow.sh", "touch "+started+"\nwhile [ ! -e "+release+" ]; do sleep 0.05; done\nexit 0\n")
	p := start(t, "r1", "-c", cfg, "-v", "deploy", "-o", "-t", "120s", "-log", "info", script)
	p.waitReady(t)
	s := run(t, "sender", "-c", sendCfg, "-s", "-v", "deploy", "v1")
	expectCode(t, s, s.code, exitOK)
	waitFile(t, started, 40*time.Second)
	b.c.Stop(0)
	if err := os.WriteFile(release, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	expectCode(t, p, p.wait(t, 90*time.Second), exitOK)
	expectStderr(t, p, `msg="receipt not sent"`)
}

// waitFile waits until path exists.
func waitFile(t *testing.T, path string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not created within %s", path, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestBarrierReceipts: a barrier (-n) with receipts on acts once, when its
// script has run, on every message it counted: each counted message gets
// a receipt with the script's exit code; the uncounted second message of
// a sender gets none.
func TestBarrierReceipts(t *testing.T) {
	b := newBed(t)
	s1, s2 := newNode(t, "com.test.shard1"), newNode(t, "com.test.shard2")
	w := newNode(t, "com.test.waiter")
	waitCfg := writeConf(t, b.dir, "waiter", conf{servers: b.c.URLs(), creds: b.c.User.SeedFile, dest: w.dest,
		extra: "receipts: true\n", identities: []identity{{key: w.key, verbs: "*"}},
		peers: []peer{peerOf(s1, "done"), peerOf(s2, "done")}})
	auditCfg := writeConf(t, b.dir, "audit", conf{servers: b.c.URLs(), creds: b.c.User.SeedFile, dest: "com.test.audit",
		extra: "audit_db: " + filepath.Join(b.dir, "audit.db") + "\n",
		peers: []peer{peerOf(s1, "done"), peerOf(s2, "done"), peerOf(w, "*")}})
	exit5 := writeScript(t, b.dir, "exit5.sh", "exit 5\n")

	aud := startBinary(t, auditBinary(t), "auditor", "run", "-c", auditCfg, "-log", "info")
	aud.waitFor(t, "msg=ready", readyWithin)
	p := start(t, "waiter", "-c", waitCfg, "-v", "done", "-n", "2", "-t", "60s", "-log", "info", exit5)
	p.waitReady(t)
	for _, n := range []node{s1, s1, s2} {
		cfg := b.config(t, n, "done")
		s := run(t, "sender", "-c", cfg, "-s", "-v", "done", "-u", "shards")
		expectCode(t, s, s.code, exitOK)
	}
	expectCode(t, p, p.wait(t, 40*time.Second), exitScript)
	got := auditReceipts(t, auditCfg, 2, "-uuid", "shards")
	for _, r := range got {
		if r.Dest != w.dest || !r.Script || r.ExitCode == nil || *r.ExitCode != 5 {
			t.Errorf("receipt %+v, want %s with the barrier script's exit 5", r, w.dest)
		}
	}
	if got[0].Message == got[1].Message {
		t.Errorf("two receipts of one message: %+v", got)
	}
}
