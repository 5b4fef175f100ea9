package integration

// Attacks through local files, server URLs and a stream set up in advance
// (issue 14, items 2-4), and the start-up errors of issue 19 that go with
// them, tried on the real binaries. Each test failed on the main before
// the fix: the file was used, the password printed, the stream trusted.

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// chmod sets a file's mode exactly (os.WriteFile's is cut by the umask).
func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// expectStderrExactly compares the whole of stderr.
func expectStderrExactly(t *testing.T, p *proc, want string) {
	t.Helper()
	if got := p.stderr.String(); got != want {
		t.Errorf("%s: stderr\n%s\nwant\n%s", p.name, got, want)
	}
}

// runAudit runs remaphore-audit to its end: its exit code and stderr.
func runAudit(t *testing.T, args ...string) (int, string) {
	t.Helper()
	p := startBinary(t, auditBinary(t), "remaphore-audit", args...)
	return p.wait(t, procBound+5*time.Second), p.stderr.String()
}

// TestHostile_ConfigOthersCanChange: a receiver config anyone may write
// (anyone could add themselves as a [*] peer and run the script as the
// receiver's user), and a config with private keys its group may
// rewrite, are refused by both binaries before anything runs: exit 2 with
// the file, its mode and the chmod that fixes it.
func TestHostile_ConfigOthersCanChange(t *testing.T) {
	b := newBed(t)
	self := newNode(t, "com.test.self")
	cfg := b.config(t, self, "ping")
	for _, tc := range []struct {
		mode     os.FileMode
		msg, fix string
	}{
		{0o666, "is writable by its group and by other users, and holds private keys ([ Identities ]) and is open to other users (mode 0666)", "chmod g-w,o-rw"},
		{0o660, "is writable by its group (mode 0660)", "chmod g-w"},
		{0o644, "holds private keys ([ Identities ]) and is open to other users (mode 0644)", "chmod o-r"},
	} {
		chmod(t, cfg, tc.mode)
		want := "remaphore: error: " + cfg + ": " + tc.msg + "\nremaphore: hint: " + tc.fix + " " + cfg + "\n"
		for _, args := range [][]string{{"-c", cfg, "-t", "30s", "-o"}, {"-c", cfg, "-s"}, {"-c", cfg, "-r"}} {
			p := run(t, "remaphore "+strings.Join(args, " "), args...)
			expectCode(t, p, p.code, exitUsage)
			expectStderrExactly(t, p, want)
		}
		code, stderr := runAudit(t, "run", "-c", cfg, "-db", filepath.Join(b.dir, "audit.db"))
		if wantA := strings.ReplaceAll(want, "remaphore:", "remaphore-audit:"); code != exitUsage || stderr != wantA {
			t.Errorf("remaphore-audit run: exit %d, stderr\n%s\nwant\n%s", code, stderr, wantA)
		}
	}
	// A config without keys at 0666: still anyone's to rewrite.
	open := writeConf(t, b.dir, "nokeys", conf{servers: b.c.URLs(), creds: b.c.User.SeedFile, dest: self.dest, peers: []peer{peerOf(self, "ping")}})
	chmod(t, open, 0o666)
	p := run(t, "receiver", "-c", open, "-t", "30s", "-o")
	expectCode(t, p, p.code, exitUsage)
	expectStderrExactly(t, p, "remaphore: error: "+open+": is writable by its group and by other users (mode 0666)\nremaphore: hint: chmod g-w,o-w "+open+"\n")
	// Group read stays allowed (the spec's remaphore group).
	chmod(t, cfg, 0o640)
	s := run(t, "sender", "-c", cfg, "-s")
	expectCode(t, s, s.code, exitOK)
}

// A config owned by another non-root user is refused even at 0600: its
// owner may change it (and its mode) at will.
func TestHostile_ConfigOwnedByAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving a file to another user needs root")
	}
	b := newBed(t)
	self := newNode(t, "com.test.self")
	cfg := b.config(t, self, "ping")
	if err := os.Chown(cfg, 4321, 4321); err != nil {
		t.Fatal(err)
	}
	p := run(t, "receiver", "-c", cfg, "-t", "30s", "-o")
	expectCode(t, p, p.code, exitUsage)
	expectStderrExactly(t, p, "remaphore: error: "+cfg+": is owned by 4321, neither root nor the user running this (root) (mode 0600)\nremaphore: hint: chown root "+cfg+"\n")
}

// TestHostile_CredentialsAndTLSFiles: the NATS seed and the TLS key are
// secrets; readable by others, or writable by the group, they are refused
// with the config's file:line (issue 14.2, 19.10); a missing credentials
// file is named the same way, before any connection.
func TestHostile_CredentialsAndTLSFiles(t *testing.T) {
	b := newBed(t)
	self := newNode(t, "com.test.self")
	seed, err := os.ReadFile(b.c.User.SeedFile)
	if err != nil {
		t.Fatal(err)
	}
	creds := filepath.Join(b.dir, "nats.nk")
	if err := os.WriteFile(creds, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	c := conf{servers: b.c.URLs(), creds: creds, dest: self.dest, identities: []identity{{key: self.key, verbs: "ping"}}, peers: []peer{peerOf(self, "ping")}}
	cfg := writeConf(t, b.dir, "self", c)

	chmod(t, creds, 0o644)
	p := run(t, "sender", "-c", cfg, "-s")
	expectCode(t, p, p.code, exitUsage)
	expectStderrExactly(t, p, "remaphore: error: "+cfg+":"+lineOf(t, cfg, "credentials:")+": credentials "+creds+" holds a NATS secret and is open to other users (mode 0644)\n"+
		"remaphore: hint: chmod o-r "+creds+"\n")
	code, stderr := runAudit(t, "run", "-c", cfg, "-db", filepath.Join(b.dir, "audit.db"))
	if code != exitUsage || !strings.Contains(stderr, "credentials "+creds+" holds a NATS secret") {
		t.Errorf("remaphore-audit run: exit %d, %s", code, stderr)
	}

	chmod(t, creds, 0o620)
	p = run(t, "receiver", "-c", cfg, "-t", "30s", "-o")
	expectCode(t, p, p.code, exitUsage)
	expectStderrExactly(t, p, "remaphore: error: "+cfg+":"+lineOf(t, cfg, "credentials:")+": credentials "+creds+" is writable by its group (mode 0620)\n"+
		"remaphore: hint: chmod g-w "+creds+"\n")

	chmod(t, creds, 0o640)
	if p := run(t, "sender", "-c", cfg, "-s"); !expectCode(t, p, p.code, exitOK) {
		return
	}

	// A TLS key readable by others.
	key := filepath.Join(b.dir, "client.key")
	if err := os.WriteFile(key, []byte("not used: refused first\n"), 0o604); err != nil {
		t.Fatal(err)
	}
	chmod(t, key, 0o604)
	tlsCfg := filepath.Join(b.dir, "tls.conf")
	text := strings.Replace(c.text(), "destination:", "tls_cert: "+key+"\ntls_key: "+key+"\ndestination:", 1)
	if err := os.WriteFile(tlsCfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	p = run(t, "sender", "-c", tlsCfg, "-s")
	expectCode(t, p, p.code, exitUsage)
	expectStderrExactly(t, p, "remaphore: error: "+tlsCfg+":"+lineOf(t, tlsCfg, "tls_key:")+": tls_key "+key+" holds a TLS private key and is open to other users (mode 0604)\n"+
		"remaphore: hint: chmod o-r "+key+"\n")

	// The credentials file is missing (issue 19.10: with file:line).
	os.Remove(creds)
	p = run(t, "sender", "-c", cfg, "-s")
	expectCode(t, p, p.code, exitUsage)
	expectStderrExactly(t, p, "remaphore: error: "+cfg+":"+lineOf(t, cfg, "credentials:")+": credentials "+creds+": no such file or directory\n"+
		"remaphore: hint: put the NATS credentials (a .creds file, or a file holding an nkey user seed SU…) there, or change credentials: to where they are\n")
}

// lineOf returns the line number (as text) of the first line of path
// starting with prefix.
func lineOf(t *testing.T, path, prefix string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, prefix) {
			return strconv.Itoa(i + 1)
		}
	}
	t.Fatalf("%s has no line starting with %q", path, prefix)
	return ""
}

// TestHostile_PasswordInServerURL (issue 14.3): a password or token in a
// server URL is never printed, in errors or in the retry log.
func TestHostile_PasswordInServerURL(t *testing.T) {
	dir := t.TempDir()
	b := newBed(t)
	self := newNode(t, "com.test.self")
	cfg := writeConf(t, dir, "self", conf{
		servers: []string{"nats://alice:S3cretPW@127.0.0.1:1", "nats://S3cretTOKEN@127.0.0.1:2"}, creds: b.c.User.SeedFile, dest: self.dest,
		identities: []identity{{key: self.key, verbs: "ping"}},
	})
	s := run(t, "sender", "-c", cfg, "-s")
	expectCode(t, s, s.code, exitNATS)
	expectStderr(t, s, "nats://alice:xxxxx@127.0.0.1:1, nats://xxxxx@127.0.0.1:2")
	r := run(t, "receiver", "-c", cfg, "-t", "2s", "-log", "debug")
	expectCode(t, r, r.code, exitNATS)
	expectStderr(t, r, "cannot connect, retrying")
	for _, p := range []*proc{s, r} {
		if strings.Contains(p.stderr.String()+p.stdout.String(), "S3cret") {
			t.Errorf("%s printed a server password:\n%s", p.name, p.describe())
		}
	}
	// A config error about such a URL does not show it either.
	bad := filepath.Join(dir, "bad.conf")
	if err := os.WriteFile(bad, []byte("server nats://alice:S3cretPW@host:4222\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := run(t, "bad config", "-c", bad, "-s")
	expectCode(t, p, p.code, exitUsage)
	expectStderrExactly(t, p, "remaphore: error: "+bad+":1: server has no colon after it: a key is written key: value\n"+
		"remaphore: hint: write server: nats://127.0.0.1:4222 (a colon after the key)\n")
}

// TestHostile_WeakStreamSetUpInAdvance (issue 14.4): any user of the
// JetStream API can create the stream first with a 1 s duplicate window,
// so that a same-id replay is stored again and reaches a freshly started
// receiver. Receivers, senders and requesters refuse that stream at start
// with the setting and the command that fixes it; nothing is stored.
func TestHostile_WeakStreamSetUpInAdvance(t *testing.T) {
	b := newBed(t)
	self := newNode(t, "com.test.self")
	// other: a peer the requester waits for (never itself).
	other := newNode(t, "com.test.other")
	cfg := b.config(t, self, "ping", peerOf(self, "ping"), peerOf(other, "ping"))
	cl := dial(t, b.c, b.c.URLs()[0])
	if _, err := cl.js.CreateStream(ctxFor(t, 10*time.Second), jetstream.StreamConfig{
		Name: "REMAPHORE", Subjects: []string{"remaphore.>"}, Duplicates: time.Second, MaxMsgSize: 1 << 20,
	}); err != nil {
		t.Fatal(err)
	}
	want := "remaphore: error: stream settings too weak: stream REMAPHORE: duplicate window 1s is shorter than allow_skew needs (1m10s = 2*allow_skew + 1m): a captured message published again after 1s would be stored and delivered again\n" +
		"remaphore: hint: nats stream edit REMAPHORE --dupe-window 2m0s\n"
	r := run(t, "receiver", "-c", cfg, "-t", "1m", "-o")
	expectCode(t, r, r.code, exitUsage)
	expectStderrExactly(t, r, want)
	if r.elapsed > 20*time.Second {
		t.Errorf("the receiver took %v: a weak stream is refused at once, not retried until -t", r.elapsed)
	}
	s := run(t, "sender", "-c", cfg, "-s")
	expectCode(t, s, s.code, exitUsage)
	expectStderrExactly(t, s, want)
	q := run(t, "requester", "-c", cfg, "-r", "-t", "5s")
	expectCode(t, q, q.code, exitUsage)
	expectStderrExactly(t, q, want)
	if n := cl.lastSeq(t); n != 0 {
		t.Errorf("the weak stream holds %d messages; nothing may be stored in it", n)
	}
	code, stderr := runAudit(t, "run", "-c", cfg, "-db", filepath.Join(b.dir, "audit.db"))
	if wantA := strings.ReplaceAll(want, "remaphore:", "remaphore-audit:"); code != exitUsage || stderr != wantA {
		t.Errorf("remaphore-audit run: exit %d, stderr\n%s\nwant\n%s", code, stderr, wantA)
	}

	// Fixed as the hint says, the stream is used.
	st, err := cl.js.Stream(ctxFor(t, 10*time.Second), "REMAPHORE")
	if err != nil {
		t.Fatal(err)
	}
	fixed := st.CachedInfo().Config
	fixed.Duplicates = 2 * time.Minute
	if _, err := cl.js.UpdateStream(ctxFor(t, 10*time.Second), fixed); err != nil {
		t.Fatal(err)
	}
	s = run(t, "sender", "-c", cfg, "-s")
	expectCode(t, s, s.code, exitOK)
}

// TestStreamSettingsDiffer_WarnsOnce (issue 19.6): retention given in the
// config but different on the existing stream is not silently ignored: one
// WARN line naming the setting, both values and the command.
func TestStreamSettingsDiffer_WarnsOnce(t *testing.T) {
	b := newBed(t)
	self := newNode(t, "com.test.self")
	other := newNode(t, "com.test.other")
	cfg := b.config(t, self, "ping", peerOf(self, "ping"), peerOf(other, "ping"))
	if s := run(t, "creates the stream", "-c", cfg, "-s"); !expectCode(t, s, s.code, exitOK) {
		return
	}
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	week := filepath.Join(b.dir, "week.conf")
	if err := os.WriteFile(week, []byte(strings.Replace(string(data), "destination:", "retention: 168h\ndestination:", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	// A requester (it waits for other's answer, which never comes): any
	// command that opens the stream warns.
	q := run(t, "requester", "-c", week, "-r", "-D", other.dest, "-t", "2s")
	lines := 0
	for _, l := range strings.Split(q.stderr.String(), "\n") {
		if strings.Contains(l, "max_age differs") {
			lines++
			for _, w := range []string{"level=WARN", "stream=REMAPHORE", "stream_value=24h0m0s", "config_value=168h0m0s", `fix="nats stream edit REMAPHORE --max-age 168h0m0s"`} {
				if !strings.Contains(l, w) {
					t.Errorf("warning %q lacks %q", l, w)
				}
			}
		}
	}
	if lines != 1 {
		t.Errorf("%d max_age warnings, want exactly 1\n%s", lines, q.describe())
	}
}

// TestReceiver_NoJetStreamFailsAtOnce (issue 19.4): a receiver with -t 1m
// against a server without JetStream exits 3 at once with the sender's
// message, instead of retrying until -t.
func TestReceiver_NoJetStreamFailsAtOnce(t *testing.T) {
	b := newBed(t) // for its nkey user
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		Nkeys: []*server.NkeyUser{{Nkey: b.c.User.Public}}})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	t.Cleanup(s.Shutdown)
	self := newNode(t, "com.test.self")
	cfg := writeConf(t, b.dir, "nojs", conf{servers: []string{s.ClientURL()}, creds: b.c.User.SeedFile, dest: self.dest,
		identities: []identity{{key: self.key, verbs: "ping"}}, peers: []peer{peerOf(self, "ping")}})
	want := "remaphore: error: jetstream error: " + s.ClientURL() + " has no JetStream for this account (enable jetstream in the server's config): nats: no responders available for request\n"
	r := run(t, "receiver", "-c", cfg, "-t", "1m", "-o")
	expectCode(t, r, r.code, exitNATS)
	expectStderrExactly(t, r, want)
	if r.elapsed > 20*time.Second {
		t.Errorf("took %v: a server without JetStream is not worth retrying", r.elapsed)
	}
	snd := run(t, "sender", "-c", cfg, "-s")
	expectCode(t, snd, snd.code, exitNATS)
	expectStderrExactly(t, snd, want)
}

// TestHostile_ScriptFoundOnPathIsTheOneRun: a script named without a
// slash is looked up on PATH and checked (its owner and mode) at start;
// the file that runs when the message comes, perhaps hours later, must be
// that one. A file that appears meanwhile earlier on PATH (a directory
// others may write to, here one holding a world-writable script the check
// would refuse) must not be what runs.
func TestHostile_ScriptFoundOnPathIsTheOneRun(t *testing.T) {
	b := newBed(t)
	sender := newNode(t, "com.test.sender")
	recv := newNode(t, "com.test.recv")
	recvCfg := b.config(t, recv, "ping", peerOf(sender, "ping"))
	sendCfg := b.config(t, sender, "ping")
	early, checked := t.TempDir(), t.TempDir()
	t.Setenv("PATH", early+string(os.PathListSeparator)+checked+string(os.PathListSeparator)+os.Getenv("PATH"))
	marker := filepath.Join(t.TempDir(), "ran")
	writeScript(t, checked, "remaphore-job", `echo checked > "$1"`+"\n")
	r := start(t, "receiver", "-c", recvCfg, "-o", "-t", "20s", "-log", "info", "remaphore-job", marker)
	r.waitReady(t)
	planted := writeScript(t, early, "remaphore-job", `echo planted > "$1"`+"\n")
	chmod(t, planted, 0o777)
	s := run(t, "sender", "-c", sendCfg, "-s", "go")
	expectCode(t, s, s.code, exitOK)
	if !expectCode(t, r, r.wait(t, 30*time.Second), exitOK) {
		return
	}
	if got, _ := os.ReadFile(marker); string(got) != "checked\n" {
		t.Errorf("the script that ran wrote %q, want %q: the file found on PATH after the check ran", got, "checked\n")
	}
}
