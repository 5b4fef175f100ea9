//go:build compose

package compose

import (
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// The scenarios. Each fails its subtest with what went wrong; the command
// outputs stay in gen/out/ when one fails.

// handoff is the spec's S3 hand-off: three downloaders wait for
// upload_done; the uploader signals once; each runs its download step.
func (h *harness) handoff(t *testing.T) {
	var ps []*proc
	for _, d := range downloaders {
		ps = append(ps, h.bg("handoff-"+d, d, "-u", "upload_done", "-t", "30s", "sh", "-c", `echo "$REMAPHORE_DESTMATCH downloads: $1"`))
	}
	h.waitReady(t, ps...)
	if _, err := h.send("handoff-send", "uploader", "-s", "-u", "upload_done", "bigfile is in s3://bucket/"); err != nil {
		t.Fatal(err)
	}
	for i, d := range downloaders {
		p := ps[i]
		if rc, exited := p.wait(40 * time.Second); rc != 0 || !exited {
			t.Fatalf("%s %s: %s", d, status(rc, exited), firstLine(p.stderr(), "rejected", "error"))
		}
		if want := dest[d] + " downloads: bigfile is in s3://bucket/\n"; p.stdout() != want {
			t.Fatalf("%s ran its script with other input: %q, want %q", d, head(p.stdout(), 200), want)
		}
	}
}

// request: a request from the uploader to every downloader; all three
// answer, three records come back.
func (h *harness) request(t *testing.T) {
	var ps []*proc
	for _, d := range downloaders {
		ps = append(ps, h.bg("request-"+d, d, "-o", "-t", "30s", "sh", "-c", `echo "$REMAPHORE_DESTMATCH is up"`))
	}
	h.waitReady(t, ps...)
	r, err := h.send("request", "uploader", "-r", "-t", "20s", "-D", "com.remaphore.**", "-u", "status-check", "status")
	if err != nil {
		t.Fatal(err)
	}
	b := r.stdout()
	records := strings.Split(strings.TrimRight(b, "\n"), "\n")
	if len(records) != 3 {
		t.Fatalf("expected 3 records, got %d: %q", len(records), b)
	}
	for i, d := range downloaders {
		if want := dest[d] + ",0," + dest[d] + " is up"; !slices.Contains(records, want) {
			t.Fatalf("no record %q from %s: %q", want, d, b)
		}
		if rc, exited := ps[i].wait(10 * time.Second); rc != 0 || !exited {
			t.Fatalf("responder %s %s", d, status(rc, exited))
		}
	}
}

// natsFailover: the server a waiting downloader is connected to dies; the
// downloader fails over, the send goes through another server, the
// downloader gets it.
func (h *harness) natsFailover(t *testing.T) {
	p := h.bg("failover", "dl-east", "-u", "failover", "-t", "90s", "sh", "-c", `echo "$REMAPHORE_DESTMATCH got: $1"`)
	h.waitReady(t, p)
	if ok, err := h.connected("nats1", "remaphore "+dest["dl-east"]); !ok {
		t.Fatalf("dl-east is not connected to nats1, the first server in its config (%v)", err)
	}
	h.tlogf(t, "  killing nats1, the server dl-east is connected to")
	if o, err := exec.Command("docker", "kill", h.cid["nats1"]).CombinedOutput(); err != nil {
		t.Fatalf("docker kill nats1: %v: %s", err, o)
	}
	// Bring nats1 back for the scenarios after this one, whatever happens.
	t.Cleanup(func() {
		if o, err := exec.Command("docker", "start", h.cid["nats1"]).CombinedOutput(); err != nil {
			t.Errorf("docker start nats1: %v: %s", err, o)
			return
		}
		if !poll(30*time.Second, 500*time.Millisecond, func() bool { return h.healthy("nats1") }) {
			t.Errorf("nats1 did not come back healthy")
		}
	})
	// A stream or meta leader on nats1 is re-elected among nats2 and nats3
	// first: a publish sent while the stream has no leader is not stored.
	h.waitLeaders(t, "nats1")
	if _, err := h.send("failover-send", "uploader", "-s", "-t", "20s", "-u", "failover", "sent while nats1 is down"); err != nil {
		t.Fatal(err)
	}
	if rc, exited := p.wait(60 * time.Second); rc != 0 || !exited {
		t.Fatalf("dl-east %s after nats1 was killed: %s", status(rc, exited), firstLine(p.stderr(), "error", "WARN"))
	}
	if want := dest["dl-east"] + " got: sent while nats1 is down\n"; p.stdout() != want {
		t.Fatalf("dl-east's script got other input: %q, want %q", head(p.stdout(), 200), want)
	}
	if !strings.Contains(p.stderr(), "reconnected to NATS") {
		t.Fatal("dl-east never reconnected: was it on nats1?")
	}
}

// waitLeaders waits until a live server reports the stream's leader and
// the meta leader, both on a live server.
func (h *harness) waitLeaders(t *testing.T, dead string) {
	t.Helper()
	if !poll(30*time.Second, 500*time.Millisecond, func() bool {
		for _, s := range natsServers {
			if s == dead {
				continue
			}
			j, err := h.jsz(s)
			if err != nil || j.Meta == nil {
				continue
			}
			meta, stream := j.Meta.Leader, j.streamLeader()
			if strings.HasPrefix(meta, "nats") && meta != dead && strings.HasPrefix(stream, "nats") && stream != dead {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no stream and meta leader among the live servers 30s after %s went down", dead)
	}
}

// networkCut: a downloader's network is cut while the message is sent; it
// receives the message once the network is back (within allow_skew: 30s).
func (h *harness) networkCut(t *testing.T) {
	p := h.bg("netcut", "dl-west", "-u", "netcut", "-t", "90s", "sh", "-c", `echo "$REMAPHORE_DESTMATCH got: $1"`)
	h.waitReady(t, p)
	id := h.cid["dl-west"]
	inspect := func(format string) string {
		o, _ := exec.Command("docker", "inspect", "-f", format, id).Output()
		return strings.TrimSpace(string(o))
	}
	const ipFormat = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
	net := inspect("{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}")
	h.tlogf(t, "  cutting dl-west (%s) off %s", inspect(ipFormat), net)
	if o, err := exec.Command("docker", "network", "disconnect", net, id).CombinedOutput(); err != nil {
		t.Fatalf("docker network disconnect: %v: %s", err, o)
	}
	reconnected := false
	reconnect := func() {
		if reconnected {
			return
		}
		reconnected = true
		if o, err := exec.Command("docker", "network", "connect", "--alias", "dl-west", net, id).CombinedOutput(); err != nil {
			t.Fatalf("docker network connect: %v: %s", err, o)
		}
		h.tlogf(t, "  dl-west is back on %s (%s)", net, inspect(ipFormat))
	}
	t.Cleanup(reconnect) // for the scenarios after this one
	if _, err := h.send("netcut-send", "uploader", "-s", "-u", "netcut", "sent while dl-west is cut off"); err != nil {
		t.Fatal(err)
	}
	// Still waiting six seconds later: the message must not reach it, and
	// losing the network must not end it.
	if rc, exited := p.wait(6 * time.Second); exited {
		t.Fatalf("dl-west exited (%d) while cut off: %s", rc, firstLine(p.stderr(), "error", "WARN"))
	}
	reconnect()
	if rc, exited := p.wait(60 * time.Second); rc != 0 || !exited {
		t.Fatalf("dl-west %s after its network came back: %s", status(rc, exited), firstLine(p.stderr(), "rejected", "error"))
	}
	if want := dest["dl-west"] + " got: sent while dl-west is cut off\n"; p.stdout() != want {
		t.Fatalf("dl-west's script got other input: %q, want %q", head(p.stdout(), 200), want)
	}
}

// auditorRestart: the auditor is killed (SIGKILL) while messages stream
// in, and restarted: in the end it holds every message of the stream
// exactly once and verify passes.
func (h *harness) auditorRestart(t *testing.T) {
	const n = 40
	h.auditCaughtUp(t, 30*time.Second)
	p := h.bgExec("audit-send", "uploader", "sh", "-c", fmt.Sprintf(`
		for i in $(seq %d); do
			remaphore -s -u "audit-$i" -D com.remaphore.nowhere "audit message $i" && echo "sent audit-$i"
			sleep 0.1
		done`, n))
	sent := func() int { return strings.Count(p.stdout(), "\n") }
	time.Sleep(1500 * time.Millisecond)
	h.tlogf(t, "  SIGKILL to the auditor, %d of %d sent", sent(), n)
	if o, err := exec.Command("docker", "kill", "-s", "KILL", h.cid["auditor"]).CombinedOutput(); err != nil {
		t.Fatalf("docker kill auditor: %v: %s", err, o)
	}
	time.Sleep(2 * time.Second)
	h.tlogf(t, "  restarting the auditor, %d of %d sent", sent(), n)
	if o, err := exec.Command("docker", "start", h.cid["auditor"]).CombinedOutput(); err != nil {
		t.Fatalf("docker start auditor: %v: %s", err, o)
	}
	if p.exited() {
		t.Fatal("the sends ended before the auditor was restarted: not mid-run")
	}
	if rc, exited := p.wait(60 * time.Second); rc != 0 || !exited {
		t.Fatalf("the sender loop %s: %s", status(rc, exited), firstLine(p.stderr(), ""))
	}
	if got := strings.Count(p.stdout(), "sent audit-"); got != n {
		t.Fatalf("only %d of %d messages were sent", got, n)
	}
	h.auditCaughtUp(t, 30*time.Second)
	last, ok := h.streamLast()
	if !ok {
		t.Fatal("cannot read the stream's last sequence")
	}
	accepted := h.query(t, "audit-accepted")
	rejected := h.query(t, "audit-rejected", "-rejected")
	// Every stream sequence 1..last exactly once, accepted or refused.
	seen := make(map[uint64]int)
	for _, r := range append(slices.Clone(accepted), rejected...) {
		if r.Record != "gap" {
			seen[r.Seq]++
		}
	}
	for seq := uint64(1); seq <= last; seq++ {
		if seen[seq] != 1 {
			t.Fatalf("the audit does not hold each stream message exactly once: seq %d is recorded %d times", seq, seen[seq])
		}
	}
	if len(seen) != int(last) {
		t.Fatalf("the audit holds %d sequences for %d stream messages", len(seen), last)
	}
	// Each of the n messages once, accepted.
	for i := 1; i <= n; i++ {
		uuid := fmt.Sprintf("audit-%d", i)
		if c := count(accepted, func(r record) bool { return r.Verdict == "accepted" && r.UUID == uuid }); c != 1 {
			t.Fatalf("%s is recorded %d times as accepted", uuid, c)
		}
	}
	h.tlogf(t, "  audit: %s", h.verify(t, "audit-verify"))
}

// intruder: a compromised host whose NATS user may send, with a key no one
// trusts. Every downloader refuses its message (exit 1 at -t,
// reason=unknown-sender) and the auditor records it as refused. A waiting
// host's credentials cannot store a message at all: the server refuses the
// publish. A junk flood from the intruder's credentials, with the
// uploader's messages between, leaves every peer message recorded.
func (h *harness) intruder(t *testing.T) {
	var ps []*proc
	for _, d := range downloaders {
		ps = append(ps, h.bg("intruder-"+d, d, "-u", "intruder", "-t", "6s", "sh", "-c", `echo "$REMAPHORE_DESTMATCH ran: $1"`))
	}
	h.waitReady(t, ps...)
	if _, err := h.send("intruder-send", "intruder", "-s", "-u", "intruder", "rm -rf /"); err != nil {
		t.Fatal(err)
	}
	for i, d := range downloaders {
		p := ps[i]
		if rc, exited := p.wait(20 * time.Second); rc != 1 || !exited {
			t.Fatalf("%s %s (want 1: nothing accepted): %s", d, status(rc, exited), head(p.stdout(), 200))
		}
		if !strings.Contains(p.stderr(), "reason=unknown-sender") {
			t.Fatalf("%s did not log reason=unknown-sender", d)
		}
		if p.stdout() != "" {
			t.Fatalf("%s ran its script: %q", d, head(p.stdout(), 200))
		}
	}
	h.auditCaughtUp(t, 30*time.Second)
	refused := h.query(t, "intruder-rejected", "-rejected", "-uuid", "intruder")
	if c := count(refused, func(r record) bool {
		return r.Verdict == "rejected" && r.Reason == "unknown-sender" && r.Sender == h.pub["intruder"]
	}); c != 1 {
		t.Fatalf("the audit holds %d refused (unknown-sender) records of the intruder's message, want 1", c)
	}
	if acc := h.query(t, "intruder-accepted", "-uuid", "intruder"); len(acc) != 0 {
		t.Fatalf("the audit holds the intruder's message as accepted: %+v", acc)
	}

	// A downloader's NATS user may not publish a message: remaphore -s
	// with its credentials (and its valid key) fails at once, exit 3, and
	// the stream stores nothing.
	before, ok := h.streamLast()
	if !ok {
		t.Fatal("cannot read the stream's last sequence")
	}
	w := h.bgExec("waiter-send", "dl-east", "remaphore", "-s", "-t", "10s", "-u", "forged-by-dl-east", "rm -rf /")
	if rc, exited := w.wait(60 * time.Second); rc != 3 || !exited {
		t.Fatalf("remaphore -s with dl-east's NATS credentials %s, want exit 3 (refused by the server): %s", status(rc, exited), lastLine(w.stderr(), "\x00"))
	}
	if !strings.Contains(w.stderr(), "may not publish on remaphore.msg.all") {
		t.Fatalf("dl-east's refused send does not say why: %s", lastLine(w.stderr(), "\x00"))
	}
	if after, _ := h.streamLast(); after != before {
		t.Fatalf("the stream went from seq %d to %d after dl-east's refused send", before, after)
	}
	h.tlogf(t, "  dl-east's credentials: %s", firstLine(w.stderr(), "this NATS user may not publish on"))

	// The flood: junk messages of about 60 KB from the intruder while the
	// uploader sends its own.
	const junk, peers = 150, 20
	flood := h.bgExec("flood-junk", "intruder", "sh", "-c", fmt.Sprintf(`
		junk=$(yes junk | head -c 60000 | tr -d "\n")
		for i in $(seq %d); do
			remaphore -s -u "flood-junk-$i" -D com.remaphore.nowhere "$junk" || exit 1
		done`, junk))
	time.Sleep(time.Second)
	up := h.bgExec("flood-peer", "uploader", "sh", "-c", fmt.Sprintf(`
		for i in $(seq %d); do
			remaphore -s -u "flood-peer-$i" -D com.remaphore.nowhere "peer message $i" || exit 1
			sleep 0.2
		done`, peers))
	if rc, exited := up.wait(120 * time.Second); rc != 0 || !exited {
		t.Fatalf("the uploader's sends during the flood %s: %s", status(rc, exited), lastLine(up.stderr(), "\x00"))
	}
	if rc, exited := flood.wait(120 * time.Second); rc != 0 || !exited {
		t.Fatalf("the intruder's flood %s: %s", status(rc, exited), lastLine(flood.stderr(), "\x00"))
	}
	h.auditCaughtUp(t, 60*time.Second)
	accepted := h.query(t, "flood-accepted")
	rejected := h.query(t, "flood-rejected", "-rejected")
	for i := 1; i <= peers; i++ {
		uuid := fmt.Sprintf("flood-peer-%d", i)
		if c := count(accepted, func(r record) bool { return r.Verdict == "accepted" && r.UUID == uuid }); c != 1 {
			t.Fatalf("%s is recorded %d times as accepted, want 1", uuid, c)
		}
	}
	isJunk := func(r record) bool { return strings.HasPrefix(r.UUID, "flood-junk-") }
	if c := count(rejected, isJunk); c != junk {
		t.Fatalf("the audit holds %d refused junk messages, want %d", c, junk)
	}
	if c := count(accepted, isJunk); c != 0 {
		t.Fatalf("the audit holds %d junk messages as accepted", c)
	}
	h.tlogf(t, "  flood: %d junk messages of 60 KB, %d peer messages all recorded; %s", junk, peers, h.verify(t, "flood-verify"))
}
