package integration

import (
	"strings"
	"testing"
	"time"
)

// A node may have several identities ("a node can have multiple
// identities configured that have different permissions"), and a config
// that trusts more than one of them lists that node once per key, under
// the same destination. Such a node is still one responder and one
// sender: the requester waits for one answer from it, and a barrier
// counts it once.

// multiKeyNode is a node signing with two identities: ping (its
// default_identity, which signs replies) and deploy.
type multiKeyNode struct {
	ping, deploy node
}

func newMultiKeyNode(t *testing.T, dest string) multiKeyNode {
	t.Helper()
	return multiKeyNode{ping: newNode(t, dest), deploy: newNode(t, dest)}
}

// peers lists both keys of m, each with its verb.
func (m multiKeyNode) peers() []peer {
	return []peer{peerOf(m.ping, "ping"), peerOf(m.deploy, "deploy")}
}

// config writes m's config: both identities, trusting peers.
func (m multiKeyNode) config(t *testing.T, b *bed, peers ...peer) string {
	t.Helper()
	return writeConf(t, b.dir, strings.ReplaceAll(m.ping.dest, ".", "_"), conf{
		servers: b.c.URLs(), creds: b.c.User.SeedFile, dest: m.ping.dest,
		identities: []identity{{key: m.ping.key, verbs: "ping"}, {key: m.deploy.key, verbs: "deploy"}},
		peers:      peers,
	})
}

// The requester lists the responder with both its keys; the responder
// answers once (signed with its default identity). Every responder has
// answered: exit 0 as soon as the answer is in, one record, nobody named
// missing.
func TestRequestResponderWithTwoKeys(t *testing.T) {
	b := newBed(t)
	req := newNode(t, "com.test.requester")
	multi := newMultiKeyNode(t, "com.test.multi")
	single := newNode(t, "com.test.single")
	reqCfg := b.config(t, req, "ping", append(multi.peers(), peerOf(single, "ping"))...)
	multiCfg := multi.config(t, b, peerOf(req, "ping"))
	echo := writeScript(t, b.dir, "echo.sh", `echo "up"`+"\n")
	pm := start(t, "multi", "-c", multiCfg, "-o", "-t", "30s", "-log", "info", echo)
	ps := b.responder(t, req, single, echo)
	pm.waitReady(t)
	ps.waitReady(t)
	rq := run(t, "requester", "-c", reqCfg, "-r", "-t", "15s", "-log", "info", "status?")
	if expectCode(t, rq, rq.code, exitOK) && rq.elapsed >= 10*time.Second {
		t.Errorf("requester: returned after %v; every responder answered, it must not wait for -t", rq.elapsed)
	}
	if strings.Contains(rq.stderr.String(), "did not answer") {
		t.Errorf("requester: names a responder missing\n%s", rq.describe())
	}
	expectRecords(t, rq, []record{
		{dest: multi.ping.dest, code: 0, output: "up"},
		{dest: single.dest, code: 0, output: "up"},
	})
}

// A barrier waits for distinct senders: a node listed with two keys
// counts once, whichever of its identities it sends with, and -n all
// does not wait for its second key.
func TestBarrierSenderWithTwoKeys(t *testing.T) {
	b := newBed(t)
	recv := newNode(t, "com.test.recv")
	multi := newMultiKeyNode(t, "com.test.multi")
	other := newNode(t, "com.test.other")
	recvCfg := b.config(t, recv, "ping", append(multi.peers(), peerOf(other, "*"))...)
	multiCfg := multi.config(t, b)
	otherCfg := b.config(t, other, "*")
	script := writeScript(t, b.dir, "count.sh", `echo "$REMAPHORE_COUNT $REMAPHORE_SENDERS"`+"\n")

	t.Run("n-2", func(t *testing.T) {
		r := start(t, "barrier", "-c", recvCfg, "-u", "two", "-n", "2", "-t", (2 * refuseWithin).String(), "-log", "info", script)
		r.waitReady(t)
		for _, v := range []string{"ping", "deploy"} {
			s := run(t, "multi -v "+v, "-c", multiCfg, "-s", "-u", "two", "-v", v)
			expectCode(t, s, s.code, exitOK)
		}
		if !expectCode(t, r, r.wait(t, 4*refuseWithin+10*time.Second), exitTimeout) {
			return
		}
		if out := r.stdout.String(); out != "" {
			t.Errorf("barrier: the script ran with one node counted twice: stdout %q", out)
		}
		expectStderr(t, r, "remaphore: barrier incomplete (-t "+(2*refuseWithin).String()+" ran out): 1 of 2 senders arrived: com.test.multi\n")
	})
	t.Run("n-all", func(t *testing.T) {
		r := start(t, "barrier", "-c", recvCfg, "-u", "all", "-n", "all", "-t", "30s", "-log", "info", script)
		r.waitReady(t)
		for _, s := range []*proc{
			run(t, "multi", "-c", multiCfg, "-s", "-u", "all", "-v", "deploy"),
			run(t, "other", "-c", otherCfg, "-s", "-u", "all"),
		} {
			expectCode(t, s, s.code, exitOK)
		}
		if expectCode(t, r, r.wait(t, 40*time.Second), exitOK) {
			if out, want := r.stdout.String(), "2 com.test.multi,com.test.other\n"; out != want && out != "2 com.test.other,com.test.multi\n" {
				t.Errorf("barrier: stdout %q, want %q (in either order)", out, want)
			}
		}
	})
}
