package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/remaphore/remaphore/audit"
	"github.com/remaphore/remaphore/sign"
)

// reasonOf is the stored record's reason for seq, once the auditor has
// committed it.
func (e *env) reasonOf(t *testing.T, p *proc, seq uint64) string {
	t.Helper()
	e.waitAckFloor(t, p, seq, 30*time.Second)
	s, err := audit.Open(e.db, audit.Options{ReadOnly: true, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, err := s.Get(seq)
	if err != nil || r == nil {
		t.Fatalf("seq %d: %v %v", seq, r, err)
	}
	return r.Reason
}

// writeConf writes the auditor's config with peers (lines of [ Peers ]).
func (e *env) writeConf(t *testing.T, mode os.FileMode, extra string, peers ...string) {
	t.Helper()
	text := fmt.Sprintf("server: %s\ncredentials: %s\nsubject: remaphore\ndestination: com.example.auditor\nallow_skew: 5s\naudit_db: audit.db\n%s\n[ Peers ]\n%s\n",
		e.c.URLs()[0], e.c.User.SeedFile, extra, strings.Join(peers, "\n"))
	// Written aside and renamed, as an editor or a config manager does:
	// the auditor reads either the old file or the new one whole.
	tmp := e.conf + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tmp, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	if err := os.Rename(tmp, e.conf); err != nil {
		t.Fatal(err)
	}
}

// hup sends SIGHUP and waits until stderr shows want for the n-th time.
func hup(t *testing.T, p *proc, want string, n int) {
	t.Helper()
	if err := p.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(p.Stderr.String(), want) < n {
		if p.Exited() || time.Now().After(deadline) {
			t.Fatalf("after SIGHUP: stderr did not show %q %d times\n%s", want, n, p.Describe())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func newKey(t *testing.T) sign.PrivateKey {
	t.Helper()
	k, err := sign.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// SIGHUP adds a peer: its message before is refused as unknown-sender,
// its next message after the reload is accepted; a peer removed by the
// next SIGHUP is refused again; a changed verb list applies at once.
func TestSIGHUPReloadsPeers(t *testing.T) {
	e := newEnv(t)
	bob := newKey(t)
	alice := fmt.Sprintf("com.example.alice %s [*]", e.alice.Public())
	p := start(t, "run", "-c", e.conf)
	e.waitReady(t, p)
	_, seq := e.send(t, bob, []byte("before"))
	if r := e.reasonOf(t, p, seq); r != "unknown-sender" {
		t.Fatalf("bob before the reload: %s", r)
	}
	e.writeConf(t, 0o640, "", alice, fmt.Sprintf("com.example.bob %s [ping]", bob.Public()))
	hup(t, p, "peers reloaded", 1)
	if !strings.Contains(p.Stderr.String(), `added="[com.example.bob`) {
		t.Errorf("the reload does not name the added peer:\n%s", p.Stderr.String())
	}
	_, seq = e.send(t, bob, []byte("after"))
	if r := e.reasonOf(t, p, seq); r != "accepted" {
		t.Fatalf("bob after the reload: %s\n%s", r, p.Stderr.String())
	}
	// alice may now send only deploy; bob is removed.
	e.writeConf(t, 0o640, "", fmt.Sprintf("com.example.alice %s [deploy]", e.alice.Public()))
	hup(t, p, "peers reloaded", 2)
	if _, seq = e.send(t, bob, []byte("removed")); e.reasonOf(t, p, seq) != "unknown-sender" {
		t.Fatalf("bob after removal: %s", e.reasonOf(t, p, seq))
	}
	if _, seq = e.send(t, e.alice, []byte("ping")); e.reasonOf(t, p, seq) != "verb-not-allowed" {
		t.Fatalf("alice's ping after her verbs changed: %s", e.reasonOf(t, p, seq))
	}
}

// A config that fails to load on SIGHUP (a syntax error; a file others
// may write) changes nothing: the next messages are judged by the old
// config. A setting read only at start that changed is logged as ignored.
func TestSIGHUPBrokenConfigChangesNothing(t *testing.T) {
	e := newEnv(t)
	bob := newKey(t)
	p := start(t, "run", "-c", e.conf)
	e.waitReady(t, p)
	bobLine := fmt.Sprintf("com.example.bob %s [*]", bob.Public())

	// A syntax error, with bob added: not applied.
	e.writeConf(t, 0o640, "bogus_key: 1\n", bobLine)
	hup(t, p, "config not reloaded", 1)
	if !strings.Contains(p.Stderr.String(), "bogus_key") {
		t.Errorf("the log does not say what is wrong:\n%s", p.Stderr.String())
	}
	if _, seq := e.send(t, bob, []byte("1")); e.reasonOf(t, p, seq) != "unknown-sender" {
		t.Fatalf("bob after a broken config: %s", e.reasonOf(t, p, seq))
	}
	if _, seq := e.send(t, e.alice, []byte("1")); e.reasonOf(t, p, seq) != "accepted" {
		t.Fatalf("alice after a broken config: %s", e.reasonOf(t, p, seq))
	}
	// A valid text that others may write: refused by the permission
	// check, not applied.
	e.writeConf(t, 0o666, "", bobLine)
	hup(t, p, "config not reloaded", 2)
	if !strings.Contains(p.Stderr.String(), "writable by") {
		t.Errorf("the log does not name the permission problem:\n%s", p.Stderr.String())
	}
	if _, seq := e.send(t, bob, []byte("2")); e.reasonOf(t, p, seq) != "unknown-sender" {
		t.Fatalf("bob after a group-writable config: %s", e.reasonOf(t, p, seq))
	}
	if _, seq := e.send(t, e.alice, []byte("2")); e.reasonOf(t, p, seq) != "accepted" {
		t.Fatalf("alice after a group-writable config: %s", e.reasonOf(t, p, seq))
	}
	// A restart-only setting changed: logged as ignored, the peers
	// applied.
	e.writeConf(t, 0o640, "retention: 48h\n", fmt.Sprintf("com.example.alice %s [*]", e.alice.Public()))
	hup(t, p, "peers reloaded", 1)
	if !strings.Contains(p.Stderr.String(), "ignored until the auditor restarts") || !strings.Contains(p.Stderr.String(), "key=retention") {
		t.Errorf("the changed retention is not logged as ignored:\n%s", p.Stderr.String())
	}
	if p.Exited() {
		t.Fatalf("the auditor exited:\n%s", p.Describe())
	}
}

var servingRE = regexp.MustCompile(`msg="serving metrics" addr=(\S+)`)

// metricsAddr waits for the auditor's "serving metrics" line and returns
// the address it bound.
func metricsAddr(t *testing.T, p *proc) string {
	t.Helper()
	p.WaitFor(t, "serving metrics", 20*time.Second)
	m := servingRE.FindStringSubmatch(p.Stderr.String())
	if m == nil {
		t.Fatalf("no address in:\n%s", p.Stderr.String())
	}
	return m[1]
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// -metrics serves /metrics and /healthz where it is asked, and only
// there: a listener on 127.0.0.1 does not answer on 127.0.0.2 (another
// loopback address on Linux); /healthz is 200 once caught up.
func TestRunMetricsListensOnlyWhereAsked(t *testing.T) {
	e := newEnv(t)
	p := start(t, "run", "-c", e.conf, "-metrics", "127.0.0.1:0")
	addr := metricsAddr(t, p)
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("bound %q (%v), want 127.0.0.1:PORT", addr, err)
	}
	e.waitReady(t, p)
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := httpGet(t, "http://"+addr+"/healthz")
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz: %d %s", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, seq := e.send(t, newKey(t), []byte("x"))
	e.waitAckFloor(t, p, seq, 30*time.Second)
	deadline = time.Now().Add(30 * time.Second)
	for {
		_, body := httpGet(t, "http://"+addr+"/metrics")
		if strings.Contains(body, `remaphore_audit_refusals_total{reason="unknown-sender"} 1`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics never counted the refusal:\n%s", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.2", port), 2*time.Second); err == nil {
		c.Close()
		t.Fatalf("the metrics listener on %s answers on 127.0.0.2 too", addr)
	}
}

// audit_metrics in the config serves the metrics too; -metrics wins.
func TestRunMetricsFromTheConfig(t *testing.T) {
	e := newEnv(t)
	e.writeConf(t, 0o640, "audit_metrics: 127.0.0.1:0\n", fmt.Sprintf("com.example.alice %s [*]", e.alice.Public()))
	p := start(t, "run", "-c", e.conf)
	if addr := metricsAddr(t, p); !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("bound %s", addr)
	}
	p.Cmd.Process.Signal(syscall.SIGTERM)
	p.Wait(t, 20*time.Second)
	p = start(t, "run", "-c", e.conf, "-metrics", "[::1]:0")
	if addr := metricsAddr(t, p); !strings.HasPrefix(addr, "[::1]:") {
		if strings.Contains(p.Stderr.String(), "cannot listen") {
			t.Skip("no IPv6 loopback here")
		}
		t.Fatalf("-metrics [::1]:0 bound %s", addr)
	}
}

// A bad -metrics ADDR is a usage error (exit 2) with a hint, before any
// connection; so is a port already in use.
func TestRunMetricsBadAddress(t *testing.T) {
	e := newEnv(t)
	for _, addr := range []string{"9464", "localhost", "127.0.0.1:http", "127.0.0.1:99999", "127.0.0.1:-1", "a b:1"} {
		p := run(t, "run", "-c", e.conf, "-metrics", addr)
		if p.Code != 2 || !strings.Contains(p.Stderr.String(), "-metrics") || !strings.Contains(p.Stderr.String(), "127.0.0.1:9464") {
			t.Errorf("-metrics %q: exit %d\n%s", addr, p.Code, p.Stderr.String())
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := run(t, "run", "-c", e.conf, "-metrics", ln.Addr().String())
	if p.Code != 2 || !strings.Contains(p.Stderr.String(), "cannot listen") || !strings.Contains(p.Stderr.String(), "free port") {
		t.Errorf("port in use: exit %d\n%s", p.Code, p.Stderr.String())
	}
}
