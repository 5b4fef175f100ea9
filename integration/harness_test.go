// Package integration runs the real remaphore binary against real,
// in-process NATS servers (internal/natstest): every test starts its own
// server(s), writes config files, runs receivers, senders and requesters as
// processes and asserts on their exit codes, stdout and stderr.
package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	// The binary under test is built from cli; importing it makes go
	// test's cache notice when it changes.
	_ "github.com/remaphore/remaphore/cli"
	"github.com/remaphore/remaphore/internal/natstest"
	"github.com/remaphore/remaphore/internal/proctest"
	"github.com/remaphore/remaphore/sign"
	"github.com/remaphore/remaphore/transport"
)

// Exit codes as cli/doc.go lists them.
const (
	exitOK      = 0
	exitTimeout = 1
	exitUsage   = 2
	exitNATS    = 3
	exitScript  = 4
)

const (
	// procBound is the most any remaphore process may run: a hung
	// process is killed rather than hanging the suite.
	procBound = 60 * time.Second
	// readyWithin bounds the wait for a receiver's "msg=ready".
	readyWithin = 20 * time.Second
	// root and channel are the defaults of config "subject" and -S.
	root    = "remaphore"
	channel = "all"
)

// refuseWithin is the -t of receivers that must not accept anything: long
// enough for the test to send after they are ready, short for the suite.
// race_test.go doubles it for the slower race-enabled binary.
var refuseWithin = 3 * time.Second

// binary is the remaphore binary built by TestMain.
var binary string

// buildFlags are extra go build flags for the binary (race_test.go adds
// -race under go test -race).
var buildFlags []string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "remaphore-integration-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "integration: temp dir: %v\n", err)
		os.Exit(1)
	}
	if binary, err = proctest.Build(dir, "github.com/remaphore/remaphore/cmd/remaphore", buildFlags...); err != nil {
		fmt.Fprintf(os.Stderr, "integration: FAILED to build the binary: %v\n", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is one running (or finished) remaphore or remaphore-audit process
// (a proctest.Proc), with the names the tests use.
type proc struct {
	*proctest.Proc
	name           string
	cmd            *exec.Cmd
	stdout, stderr *proctest.Buffer
	done           chan struct{}
	// set before done is closed
	code    int
	elapsed time.Duration
}

// start runs the binary with args. At the end of the test (or procBound) it
// is asked to stop with SIGTERM, so that remaphore stops its script's
// process group and deletes its consumer, and killed 3 s later; its
// streams are logged when the test failed.
func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	return startBinary(t, binary, name, args...)
}

var (
	auditBinOnce sync.Once
	auditBin     string
	auditBinErr  error
)

// auditBinary builds remaphore-audit once, beside the remaphore binary
// (TestMain removes that directory).
func auditBinary(t *testing.T) string {
	t.Helper()
	auditBinOnce.Do(func() {
		auditBin, auditBinErr = proctest.Build(filepath.Dir(binary), "github.com/remaphore/remaphore/cmd/remaphore-audit", buildFlags...)
	})
	if auditBinErr != nil {
		t.Fatalf("cannot build remaphore-audit: %v", auditBinErr)
	}
	return auditBin
}

// startBinary is start for another of the project's binaries (bin is its
// path: remaphore-audit).
func startBinary(t *testing.T, bin, name string, args ...string) *proc {
	t.Helper()
	pp := proctest.Start(t, proctest.Limits{Bound: procBound, Grace: 3 * time.Second}, bin, name, args...)
	p := &proc{Proc: pp, name: name, cmd: pp.Cmd, stdout: &pp.Stdout, stderr: &pp.Stderr, done: make(chan struct{})}
	go func() {
		<-pp.Done()
		p.code, p.elapsed = pp.Code, pp.Elapsed
		close(p.done)
	}()
	return p
}

// run starts the binary and waits for it to exit.
func run(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := start(t, name, args...)
	p.wait(t, procBound+5*time.Second)
	return p
}

// exited reports whether the process has exited (and code is set).
func (p *proc) exited() bool {
	if !p.Exited() {
		return false
	}
	<-p.done
	return true
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	p.Wait(t, within)
	<-p.done
	return p.code
}

// waitFor waits until stderr holds want; it fails the test when the
// process exits first or within runs out.
func (p *proc) waitFor(t *testing.T, want string, within time.Duration) {
	t.Helper()
	p.WaitFor(t, want, within)
}

// waitReady waits for the receiver's "ready" log line (needs -log info or
// debug).
func (p *proc) waitReady(t *testing.T) {
	t.Helper()
	p.waitFor(t, "msg=ready", readyWithin)
}

func (p *proc) describe() string { return p.Describe() }

// expectCode reports an unexpected exit code with both streams.
func expectCode(t *testing.T, p *proc, code int, want int) bool {
	t.Helper()
	if code != want {
		t.Errorf("%s: exit code %d, want %d\n%s", p.name, code, want, p.describe())
		return false
	}
	return true
}

// expectStderr reports a missing substring of stderr.
func expectStderr(t *testing.T, p *proc, want string) {
	t.Helper()
	if !strings.Contains(p.stderr.String(), want) {
		t.Errorf("%s: stderr does not contain %q\n%s", p.name, want, p.describe())
	}
}

// errorLines returns the "remaphore: error:" lines of stderr.
func errorLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "remaphore: error:") {
			out = append(out, l)
		}
	}
	return out
}

// ----- keys, nodes and config files -----

// node is a remaphore host: its destination and its identity key.
type node struct {
	dest string
	key  sign.PrivateKey
}

func newNode(t *testing.T, dest string) node {
	t.Helper()
	k, err := sign.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return node{dest: dest, key: k}
}

func (n node) pub() sign.PublicKey { return n.key.Public() }

// peer is one [ Peers ] line.
type peer struct {
	dest  string
	key   sign.PublicKey
	verbs string // between the brackets: "ping", "a, b", "*"
}

// peerOf lists n as a peer allowed verbs.
func peerOf(n node, verbs string) peer { return peer{dest: n.dest, key: n.pub(), verbs: verbs} }

// identity is one [ Identities ] line.
type identity struct {
	key   sign.PrivateKey
	verbs string
}

// conf is what a test config file holds.
type conf struct {
	servers    []string
	creds      string
	dest       string
	allowSkew  string // "" = default
	replicas   int    // 0 = default
	extra      string // more "key: value" lines
	identities []identity
	peers      []peer
}

func (c conf) text() string {
	var b strings.Builder
	for _, s := range c.servers {
		fmt.Fprintf(&b, "server: %s\n", s)
	}
	fmt.Fprintf(&b, "credentials: %s\n", c.creds)
	fmt.Fprintf(&b, "destination: %s\n", c.dest)
	if c.allowSkew != "" {
		fmt.Fprintf(&b, "allow_skew: %s\n", c.allowSkew)
	}
	if c.replicas != 0 {
		fmt.Fprintf(&b, "replicas: %d\n", c.replicas)
	}
	b.WriteString(c.extra)
	b.WriteString("\n[ Identities ]\n")
	for _, id := range c.identities {
		fmt.Fprintf(&b, "%s %s [%s]\n", id.key.Public(), id.key.Base58(), id.verbs)
	}
	b.WriteString("\n[ Peers ]\n")
	for _, p := range c.peers {
		fmt.Fprintf(&b, "%s %s [%s]\n", p.dest, p.key, p.verbs)
	}
	return b.String()
}

// writeConf writes c as dir/name.conf, mode 0600, and returns the path.
func writeConf(t *testing.T, dir, name string, c conf) string {
	t.Helper()
	path := filepath.Join(dir, name+".conf")
	if err := os.WriteFile(path, []byte(c.text()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeScript writes an executable /bin/sh script and returns its path.
// Write every script before starting processes that may run it.
func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// bed is one test's NATS server(s) and working directory.
type bed struct {
	c   *natstest.Cluster
	dir string
}

func newBed(t *testing.T) *bed {
	t.Helper()
	return &bed{c: natstest.Start(t), dir: t.TempDir()}
}

// config writes the config of self: it signs as self with idVerbs and
// accepts peers.
func (b *bed) config(t *testing.T, self node, idVerbs string, peers ...peer) string {
	t.Helper()
	return writeConf(t, b.dir, strings.ReplaceAll(self.dest, ".", "_"), conf{
		servers:    b.c.URLs(),
		creds:      b.c.User.SeedFile,
		dest:       self.dest,
		identities: []identity{{key: self.key, verbs: idVerbs}},
		peers:      peers,
	})
}

// ----- crafting messages with nats.go -----

// client is a NATS connection of the test itself, for crafted publishes.
type client struct {
	nc *nats.Conn
	js jetstream.JetStream
}

func dial(t *testing.T, c *natstest.Cluster, url string) *client {
	t.Helper()
	opt, err := nats.NkeyOptionFromSeed(c.User.SeedFile)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(url, opt, nats.Name("integration-test "+t.Name()))
	if err != nil {
		t.Fatalf("test client cannot connect to %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return &client{nc: nc, js: js}
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// publish stores body on subject through JetStream; id is sent as
// Nats-Msg-Id unless empty.
func (c *client) publish(t *testing.T, subject string, body []byte, id string) *jetstream.PubAck {
	t.Helper()
	m := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{}}
	if id != "" {
		m.Header.Set(jetstream.MsgIDHeader, id)
	}
	ack, err := c.js.PublishMsg(ctxFor(t, 10*time.Second), m)
	if err != nil {
		t.Fatalf("JetStream publish to %s (Nats-Msg-Id %q): %v", subject, id, err)
	}
	return ack
}

// lastSeq returns the last sequence of the stream REMAPHORE.
func (c *client) lastSeq(t *testing.T) uint64 {
	t.Helper()
	st, err := c.js.Stream(ctxFor(t, 10*time.Second), transport.StreamName(root))
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	return st.CachedInfo().State.LastSeq
}

// consumers returns the number of consumers on the stream REMAPHORE.
func (c *client) consumers(t *testing.T) int {
	t.Helper()
	st, err := c.js.Stream(ctxFor(t, 10*time.Second), transport.StreamName(root))
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	return st.CachedInfo().State.Consumers
}

// message returns a valid message from key on channel ch, changed by mod.
func message(t *testing.T, key sign.PrivateKey, ch string, mod func(*sign.Message)) *sign.Envelope {
	t.Helper()
	m := &sign.Message{
		Kind: sign.KindMsg, Root: root, Channel: ch,
		Dest: "**", Verb: "ping", Sent: time.Now(), Payload: []byte("crafted"),
	}
	if mod != nil {
		mod(m)
	}
	env, err := sign.Seal(m, key)
	if err != nil {
		t.Fatalf("seal: %v", err)
	}
	return env
}

// forge returns env's body with one signature byte flipped.
func forge(env *sign.Envelope) []byte {
	body := env.Body()
	body[len(body)-10] ^= 0x01
	return body
}

// ----- reply records (-r stdout) -----

type record struct {
	dest   string
	code   int
	output string
	sep    string // "" when the record was one unframed line
}

func (r record) String() string {
	if r.sep == "" {
		return fmt.Sprintf("%s,%d,%s", r.dest, r.code, r.output)
	}
	return fmt.Sprintf("[framed %s] %s,%d,%q", r.sep, r.dest, r.code, r.output)
}

// parseRecords reads a requester's stdout strictly: lines of
// "destination,exit-code,output", or such a record framed by "--> SEP" and
// "--< SEP" when its output holds a newline or a control character other
// than tab, with one SEP for all framed records. Lines are split on "\n"
// only, so a CR in an output stays inside its record.
func parseRecords(out string) ([]record, error) {
	if out == "" {
		return nil, nil
	}
	if !strings.HasSuffix(out, "\n") {
		return nil, fmt.Errorf("output does not end with a newline")
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	head := func(n int, l string) (record, error) {
		f := strings.SplitN(l, ",", 3)
		if len(f) != 3 {
			return record{}, fmt.Errorf("line %d %q: not destination,exit-code,output", n+1, l)
		}
		code, err := strconv.Atoi(f[1])
		if err != nil {
			return record{}, fmt.Errorf("line %d %q: exit code %q is not a number", n+1, l, f[1])
		}
		if f[0] == "" || strings.HasPrefix(f[0], "--") {
			return record{}, fmt.Errorf("line %d %q: no destination", n+1, l)
		}
		return record{dest: f[0], code: code, output: f[2]}, nil
	}
	var recs []record
	sep := ""
	for i := 0; i < len(lines); {
		l := lines[i]
		switch {
		case strings.HasPrefix(l, "--< "):
			return nil, fmt.Errorf("line %d %q: end tag without a begin tag", i+1, l)
		case strings.HasPrefix(l, "--> "):
			s := strings.TrimPrefix(l, "--> ")
			if s == "" || strings.ContainsAny(s, " \t") {
				return nil, fmt.Errorf("line %d %q: bad separator", i+1, l)
			}
			if sep == "" {
				sep = s
			} else if s != sep {
				return nil, fmt.Errorf("line %d: separator %q differs from the first one %q", i+1, s, sep)
			}
			j := i + 1
			for ; j < len(lines) && lines[j] != "--< "+s; j++ {
				if strings.HasPrefix(lines[j], "--> ") || strings.HasPrefix(lines[j], "--< ") {
					return nil, fmt.Errorf("line %d %q: a tag inside the record begun on line %d (interleaved)", j+1, lines[j], i+1)
				}
			}
			if j == len(lines) {
				return nil, fmt.Errorf("line %d: record begun here has no end tag", i+1)
			}
			if j == i+1 {
				return nil, fmt.Errorf("line %d: empty framed record", i+1)
			}
			r, err := head(i+1, lines[i+1])
			if err != nil {
				return nil, err
			}
			r.output = strings.Join(append([]string{r.output}, lines[i+2:j]...), "\n")
			if !needsFrame(r.output) {
				return nil, fmt.Errorf("line %d: an output with no newline or control character is framed", i+1)
			}
			r.sep = s
			recs = append(recs, r)
			i = j + 1
		default:
			r, err := head(i, l)
			if err != nil {
				return nil, err
			}
			if needsFrame(r.output) {
				return nil, fmt.Errorf("line %d %q: a control character in an unframed record", i+1, l)
			}
			recs = append(recs, r)
			i++
		}
	}
	return recs, nil
}

// expectRecords parses p's stdout strictly and compares the records (in
// any order) with want; sep in want is ignored except "" vs framed.
func expectRecords(t *testing.T, p *proc, want []record) {
	t.Helper()
	got, err := parseRecords(p.stdout.String())
	if err != nil {
		t.Errorf("%s: stdout is not well-formed records: %v\n%s", p.name, err, p.describe())
		return
	}
	byDest := map[string]record{}
	for _, r := range got {
		if _, dup := byDest[r.dest]; dup {
			t.Errorf("%s: two records for %s", p.name, r.dest)
		}
		byDest[r.dest] = r
	}
	for _, w := range want {
		g, ok := byDest[w.dest]
		if !ok {
			t.Errorf("%s: no record for %s; want %v", p.name, w.dest, w)
			continue
		}
		delete(byDest, w.dest)
		if g.code != w.code || g.output != w.output || (g.sep == "") != (w.sep == "") {
			t.Errorf("%s: record for %s:\n got  %v\n want %v", p.name, w.dest, g, w)
		}
	}
	for _, g := range byDest {
		t.Errorf("%s: unexpected record %v", p.name, g)
	}
	if t.Failed() {
		t.Logf("%s stdout:\n%s", p.name, p.stdout.String())
	}
}

// needsFrame is DESIGN.md's rule, written out independently of cli: a
// newline, a control character other than tab (C0, DEL, C1), U+2028,
// U+2029, or bytes that are not UTF-8.
func needsFrame(out string) bool {
	if !utf8.ValidString(out) {
		return true
	}
	for _, r := range out {
		if (r < 0x20 && r != '\t') || (r >= 0x7f && r <= 0x9f) || r == 0x2028 || r == 0x2029 {
			return true
		}
	}
	return false
}

var requestIDRe = regexp.MustCompile(`msg="request sent" id=([0-9a-f]{64})`)

// requestID waits for the requester's "request sent" line (-log info) and
// returns the id.
func (p *proc) requestID(t *testing.T) string {
	t.Helper()
	p.waitFor(t, `msg="request sent"`, readyWithin)
	m := requestIDRe.FindStringSubmatch(p.stderr.String())
	if m == nil {
		t.Fatalf("%s: no id= in the request sent line\n%s", p.name, p.describe())
	}
	return m[1]
}

// countMatches counts the stderr lines matching re.
func countMatches(s string, re *regexp.Regexp) int {
	n := 0
	for _, l := range strings.Split(s, "\n") {
		if re.MatchString(l) {
			n++
		}
	}
	return n
}
