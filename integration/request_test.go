package integration

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/remaphore/remaphore/sign"
	"github.com/remaphore/remaphore/transport"
)

// responder writes the config of n (answering requests from requester)
// and starts it with -o -t 30s, args, then script (none when "").
func (b *bed) responder(t *testing.T, requester, n node, script string, args ...string) *proc {
	t.Helper()
	cfg := b.config(t, n, "ping", peerOf(requester, "ping"))
	argv := append([]string{"-c", cfg, "-o", "-t", "30s", "-log", "info"}, args...)
	if script != "" {
		argv = append(argv, script)
	}
	return start(t, n.dest, argv...)
}

// requesterConfig writes the requester's config: every responder is a peer.
func (b *bed) requesterConfig(t *testing.T, requester node, responders ...node) string {
	t.Helper()
	var peers []peer
	for _, r := range responders {
		peers = append(peers, peerOf(r, "ping"))
	}
	return b.config(t, requester, "ping", peers...)
}

// Three responders, three records: one plain, one with exit code 3, one
// multi-line and framed; a fourth without a script answers with empty
// output. The requester returns as soon as all answered, with exit 4
// because one answer carries a non-zero exit code.
func TestRequestAllAnswer(t *testing.T) {
	b := newBed(t)
	req := newNode(t, "com.test.requester")
	r1, r2, r3, r4 := newNode(t, "com.test.r1"), newNode(t, "com.test.r2"), newNode(t, "com.test.r3"), newNode(t, "com.test.r4")
	reqCfg := b.requesterConfig(t, req, r1, r2, r3, r4)
	s1 := writeScript(t, b.dir, "r1.sh", `echo "pong verb=$1 payload=$2"`+"\n")
	s2 := writeScript(t, b.dir, "r2.sh", "echo 'r2 failed' >&2\nexit 3\n")
	s3 := writeScript(t, b.dir, "r3.sh", "printf 'first, line\\nsecond line\\n\\nfourth after an empty one\\n'\n")
	p1, p2, p3, p4 := b.responder(t, req, r1, s1), b.responder(t, req, r2, s2), b.responder(t, req, r3, s3), b.responder(t, req, r4, "")
	for _, p := range []*proc{p1, p2, p3, p4} {
		p.waitReady(t)
	}
	rq := run(t, "requester", "-c", reqCfg, "-r", "-t", "20s", "-log", "info", "hello world")
	// Everyone answered, r2 with exit code 3: exit 4, r2 named.
	if expectCode(t, rq, rq.code, exitScript) {
		expectStderr(t, rq, "remaphore: 1 of 4 responders answered with a non-zero exit code: com.test.r2\n")
	}
	if rq.elapsed >= 10*time.Second {
		t.Errorf("requester: returned after %v; with every responder answering it must not wait for -t 20s", rq.elapsed)
	}
	expectRecords(t, rq, []record{
		{dest: r1.dest, code: 0, output: "pong verb=ping payload=hello world"},
		{dest: r2.dest, code: 3, output: "r2 failed"},
		{dest: r3.dest, code: 0, output: "first, line\nsecond line\n\nfourth after an empty one", sep: "framed"},
		{dest: r4.dest, code: 0, output: ""},
	})
	// The responders run with -o: a failed script is exit 4 there too.
	for _, c := range []struct {
		p    *proc
		code int
	}{{p1, exitOK}, {p2, exitScript}, {p3, exitOK}, {p4, exitOK}} {
		if expectCode(t, c.p, c.p.wait(t, 10*time.Second), c.code) {
			expectStderr(t, c.p, "msg=replied")
		}
	}
}

// One of three responders is down: two records, the missing one named on
// stderr, exit 1 at -t.
func TestRequestMissingResponder(t *testing.T) {
	b := newBed(t)
	req := newNode(t, "com.test.requester")
	r1, r2, r3 := newNode(t, "com.test.r1"), newNode(t, "com.test.r2"), newNode(t, "com.test.r3")
	reqCfg := b.requesterConfig(t, req, r1, r2, r3)
	echo := writeScript(t, b.dir, "echo.sh", `echo "$REMAPHORE_DESTMATCH here"`+"\n")
	p1, p2 := b.responder(t, req, r1, echo), b.responder(t, req, r2, echo)
	p1.waitReady(t)
	p2.waitReady(t)
	rq := run(t, "requester", "-c", reqCfg, "-r", "-t", refuseWithin.String())
	if expectCode(t, rq, rq.code, exitTimeout) {
		if rq.elapsed < refuseWithin {
			t.Errorf("requester: exit 1 after %v, before -t %v", rq.elapsed, refuseWithin)
		}
		expectStderr(t, rq, "com.test.r3")
		for _, ok := range []string{r1.dest, r2.dest} {
			for _, l := range strings.Split(rq.stderr.String(), "\n") {
				if strings.Contains(l, "no answer") && strings.Contains(l, ok) {
					t.Errorf("requester: names %s as missing, but it answered: %q", ok, l)
				}
			}
		}
	}
	expectRecords(t, rq, []record{
		{dest: r1.dest, code: 0, output: r1.dest + " here"},
		{dest: r2.dest, code: 0, output: r2.dest + " here"},
	})
}

// -D narrows the expected responders; one outside it that answers anyway
// (it runs with -d) is ignored.
func TestRequestDestinationNarrows(t *testing.T) {
	b := newBed(t)
	req := newNode(t, "com.test.requester")
	r1, r2 := newNode(t, "com.test.r1"), newNode(t, "com.test.r2")
	reqCfg := b.requesterConfig(t, req, r1, r2)
	flag := filepath.Join(t.TempDir(), "r2-has-answered")
	// r1 answers only once r2's reply is stored, so the requester sees
	// r2's reply first and must ignore it.
	s1 := writeScript(t, b.dir, "r1.sh", fmt.Sprintf("i=0\nwhile [ ! -e %q ] && [ $i -lt 1000 ]; do sleep 0.02; i=$((i+1)); done\necho r1 answer\n", flag))
	s2 := writeScript(t, b.dir, "r2.sh", "echo r2 answer\n")
	p1, p2 := b.responder(t, req, r1, s1), b.responder(t, req, r2, s2, "-d")
	p1.waitReady(t)
	p2.waitReady(t)
	rq := start(t, "requester", "-c", reqCfg, "-r", "-D", r1.dest, "-t", "20s", "-log", "info")
	if expectCode(t, p2, p2.wait(t, 25*time.Second), exitOK) {
		expectStderr(t, p2, "msg=replied")
	}
	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	expectCode(t, rq, rq.wait(t, 25*time.Second), exitOK)
	expectRecords(t, rq, []record{{dest: r1.dest, code: 0, output: "r1 answer"}})
	expectStderr(t, rq, `msg="ignored reply" reason=unknown-sender`)
	expectStderr(t, rq, "expected=1")
}

// Replies the requester must ignore, and log: from a key that is not an
// expected peer, forged, bound to another request, stale, and a second
// reply from the same responder.
func TestRequestIgnoredReplies(t *testing.T) {
	b := newBed(t)
	req := newNode(t, "com.test.requester")
	r1, r2 := newNode(t, "com.test.r1"), newNode(t, "com.test.r2")
	stranger := newNode(t, "com.test.stranger")
	reqCfg := b.requesterConfig(t, req, r1, r2)
	cl := dial(t, b.c, b.c.URLs()[0])

	rq := start(t, "requester", "-c", reqCfg, "-r", "-t", "20s", "-log", "info", "question")
	id := rq.requestID(t)
	reqID, err := sign.ParseID(id)
	if err != nil {
		t.Fatal(err)
	}
	var otherID [sign.IDSize]byte
	rand.Read(otherID[:])
	reply := func(from node, out string, code int32, mod func(*sign.Message)) *sign.Envelope {
		m := &sign.Message{
			Kind: sign.KindReply, Root: root, Channel: channel, Dest: req.dest, Verb: "ping",
			Sent: time.Now(), Payload: []byte(out), RequestID: reqID, ResponderDest: from.dest, ExitCode: code,
		}
		if mod != nil {
			mod(m)
		}
		env, err := sign.Seal(m, from.key)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	subject := transport.ReplySubject(root, id)
	publish := func(env *sign.Envelope, body []byte) uint64 {
		return cl.publish(t, subject, body, env.ID).Sequence
	}
	ignored := []struct {
		reason string
		seq    uint64
	}{}
	ignore := func(reason string, env *sign.Envelope, body []byte) {
		ignored = append(ignored, struct {
			reason string
			seq    uint64
		}{reason, publish(env, body)})
	}
	e := reply(stranger, "from a stranger", 0, nil)
	ignore("unknown-sender", e, e.Body())
	e = reply(r1, "forged", 0, nil)
	ignore("bad-signature", e, forge(e))
	e = reply(r1, "for another request", 0, func(m *sign.Message) { m.RequestID = otherID })
	ignore("wrong-request", e, e.Body())
	e = reply(r1, "stale", 0, func(m *sign.Message) { m.Sent = time.Now().Add(-time.Hour) })
	ignore("stale", e, e.Body())
	e = reply(r1, "first answer", 0, nil)
	publish(e, e.Body())
	e = reply(r1, "second answer", 9, nil)
	ignore("second-reply", e, e.Body())
	e = reply(r2, "r2 answer\nin two lines\n", 7, nil)
	publish(e, e.Body())

	// r2 answered with exit code 7: every responder answered, one failed.
	expectCode(t, rq, rq.wait(t, 25*time.Second), exitScript)
	expectRecords(t, rq, []record{
		{dest: r1.dest, code: 0, output: "first answer"},
		{dest: r2.dest, code: 7, output: "r2 answer\nin two lines", sep: "framed"},
	})
	for _, ig := range ignored {
		re := regexp.MustCompile(`msg="ignored reply" reason=` + ig.reason + ` .*seq=` + fmt.Sprint(ig.seq) + `\b`)
		if countMatches(rq.stderr.String(), re) != 1 {
			t.Errorf("requester: no %q line with reason=%s for the reply at stream sequence %d\n%s", "ignored reply", ig.reason, ig.seq, rq.describe())
		}
	}
	if n := strings.Count(rq.stderr.String(), `msg="ignored reply"`); n != len(ignored) {
		t.Errorf("requester: %d replies ignored, want %d", n, len(ignored))
	}
}

// Twenty responders answer with multi-line output at once: every record
// arrives intact, framed, with one separator, never interleaved.
func TestRequestTwentyResponders(t *testing.T) {
	b := newBed(t)
	req := newNode(t, "com.test.requester")
	lines := writeScript(t, b.dir, "lines.sh", `for i in 1 2 3 4 5 6 7 8; do echo "$REMAPHORE_DESTMATCH line $i of 8, verb $1"; done`+"\n")
	var nodes []node
	for i := 1; i <= 20; i++ {
		nodes = append(nodes, newNode(t, fmt.Sprintf("com.test.r%02d", i)))
	}
	reqCfg := b.requesterConfig(t, req, nodes...)
	var procs []*proc
	for _, n := range nodes {
		procs = append(procs, b.responder(t, req, n, lines))
	}
	for _, p := range procs {
		p.waitReady(t)
	}
	rq := run(t, "requester", "-c", reqCfg, "-r", "-t", "30s")
	expectCode(t, rq, rq.code, exitOK)
	var want []record
	for _, n := range nodes {
		var out []string
		for i := 1; i <= 8; i++ {
			out = append(out, fmt.Sprintf("%s line %d of 8, verb ping", n.dest, i))
		}
		want = append(want, record{dest: n.dest, output: strings.Join(out, "\n"), sep: "framed"})
	}
	expectRecords(t, rq, want)
	if recs, err := parseRecords(rq.stdout.String()); err == nil && len(recs) > 0 {
		for _, r := range recs {
			if r.sep != recs[0].sep {
				t.Errorf("requester: separators %q and %q in one answer", recs[0].sep, r.sep)
			}
		}
	}
	for _, p := range procs {
		expectCode(t, p, p.wait(t, 10*time.Second), exitOK)
	}
}

// A responder's output is captured up to 64 KiB and marked as truncated.
func TestRequestOutputTruncated(t *testing.T) {
	b := newBed(t)
	req := newNode(t, "com.test.requester")
	r1 := newNode(t, "com.test.r1")
	reqCfg := b.requesterConfig(t, req, r1)
	line := strings.Repeat("x", 1000)
	big := writeScript(t, b.dir, "big.sh", fmt.Sprintf("i=0\nwhile [ $i -lt 70 ]; do echo %s; i=$((i+1)); done\n", line))
	p := b.responder(t, req, r1, big)
	p.waitReady(t)
	rq := run(t, "requester", "-c", reqCfg, "-r", "-t", "20s")
	expectCode(t, rq, rq.code, exitOK)
	full := strings.Repeat(line+"\n", 70)
	want := full[:64<<10] + fmt.Sprintf("\n[remaphore: output truncated at %d bytes]", 64<<10)
	expectRecords(t, rq, []record{{dest: r1.dest, code: 0, output: want, sep: "framed"}})
}

// The strict record parser used above refuses what the spec forbids.
func TestParseRecords(t *testing.T) {
	good := "a.b,0,one\n--> S1\nc.d,3,x\ny\n--< S1\ne.f,1,with, commas\tand a tab\n--> S1\ng.h,0,\n\n--< S1\n--> S1\ni.j,0,x\ry\n--< S1\n"
	recs, err := parseRecords(good)
	if err != nil || len(recs) != 5 || recs[1].output != "x\ny" || recs[2].output != "with, commas\tand a tab" || recs[3].output != "\n" || recs[4].output != "x\ry" {
		t.Fatalf("parseRecords(%q) = %v, %v", good, recs, err)
	}
	for _, bad := range []string{
		"a.b,0,one",            // no final newline
		"a.b,x,one\n",          // code not a number
		"a.b\n",                // not three fields
		"--> S1\na.b,0,x\ny\n", // no end tag
		"--> S1\na.b,0,x\n--> S1\nc,0,y\nz\n--< S1\n--< S1\n",      // interleaved
		"--> S1\na.b,0,x\ny\n--< S1\n--> S2\nc.d,0,x\ny\n--< S2\n", // two separators
		"--> S1\na.b,0,x\n--< S1\n",                                // one plain line framed
		"a.b,0,x\ry\n",                                             // a CR unframed
		"a.b,0,x\x1b[2Ky\n",                                        // an ESC unframed
		"--< S1\n",                                                 // end without begin
	} {
		if recs, err := parseRecords(bad); err == nil {
			t.Errorf("parseRecords(%q) = %v, want an error", bad, recs)
		}
	}
}
