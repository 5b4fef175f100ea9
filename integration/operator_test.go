package integration

// Issue 19, the first hour of a new operator: -r exit codes, a requester
// that waited for itself, timeout and signal messages, scripts that cannot
// run, and hints that pointed the wrong way. Output is checked exactly.

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/remaphore/remaphore/internal/natstest"
)

// 19.1: one responder failed and another never answered: exit 1 (some
// missing wins over failed), the missing one named; TestRequestAllAnswer
// has every one answering, one with exit code 3: exit 4.
func TestRequestFailedAndMissing(t *testing.T) {
	b := newBed(t)
	req := newNode(t, "com.test.requester")
	r1, r2 := newNode(t, "com.test.r1"), newNode(t, "com.test.r2")
	reqCfg := b.requesterConfig(t, req, r1, r2)
	fail := writeScript(t, b.dir, "fail.sh", "echo disk full\nexit 3\n")
	p1 := b.responder(t, req, r1, fail)
	p1.waitReady(t)
	rq := run(t, "requester", "-c", reqCfg, "-r", "-t", refuseWithin.String())
	if expectCode(t, rq, rq.code, exitTimeout) {
		if got, want := rq.stderr.String(), "remaphore: no answer from 1 of 2 responders (-t "+refuseWithin.String()+" ran out): com.test.r2\n"; got != want {
			t.Errorf("requester: stderr %q, want %q", got, want)
		}
		if got, want := rq.stdout.String(), "com.test.r1,3,disk full\n"; got != want {
			t.Errorf("requester: stdout %q, want %q", got, want)
		}
	}
}

// 19.2: the requester's [ Peers ] lists its own key (as remaphore -C
// writes it): it does not wait for itself, and when only itself matches,
// that is the usage error, said so.
func TestRequestNotFromItself(t *testing.T) {
	b := newBed(t)
	req := newNode(t, "com.test.requester")
	r1 := newNode(t, "com.test.r1")
	reqCfg := b.config(t, req, "ping", peerOf(req, "ping"), peerOf(r1, "ping"))
	pong := writeScript(t, b.dir, "pong.sh", "echo pong\n")
	p1 := b.responder(t, req, r1, pong)
	p1.waitReady(t)
	rq := run(t, "requester", "-c", reqCfg, "-r", "-t", "30s")
	if expectCode(t, rq, rq.code, exitOK) {
		if rq.elapsed > 15*time.Second {
			t.Errorf("requester: took %v; with its only other peer answering it must not wait for itself until -t", rq.elapsed)
		}
		if got, want := rq.stdout.String(), "com.test.r1,0,pong\n"; got != want {
			t.Errorf("requester: stdout %q, want %q", got, want)
		}
		if rq.stderr.String() != "" {
			t.Errorf("requester: stderr %q, want nothing", rq.stderr.String())
		}
	}
	only := run(t, "requester to itself", "-c", reqCfg, "-r", "-D", req.dest)
	if expectCode(t, only, only.code, exitUsage) {
		want := `remaphore: error: the only peers matching "com.test.requester" (com.test.requester) are this node's own identities: nobody else to wait for` + "\n" +
			"remaphore: hint: -r waits for the other [ Peers ] in " + reqCfg + " whose destination matches -D\n"
		if got := only.stderr.String(); got != want {
			t.Errorf("stderr %q, want %q", got, want)
		}
	}
}

// downConfig writes a config whose only server does not exist.
func downConfig(t *testing.T, dir string) string {
	t.Helper()
	user := natstest.NewUser(t, dir)
	self := newNode(t, "com.test.self")
	stranger := newNode(t, "com.test.stranger")
	return writeConf(t, dir, "self", conf{
		servers: []string{"nats://127.0.0.1:1"}, creds: user.SeedFile, dest: self.dest,
		identities: []identity{{key: self.key, verbs: "ping"}},
		peers:      []peer{peerOf(stranger, "ping")},
	})
}

// 19.5: a timeout is said once, naming -t; SIGTERM while retrying and
// SIGINT while listening or waiting for answers exit 128+signal and say
// so, never "timeout".
func TestTimeoutAndSignalMessages(t *testing.T) {
	dir := t.TempDir()
	cfg := downConfig(t, dir)
	const prefix = "remaphore: error: cannot connect to NATS: nats://127.0.0.1:1: "
	t.Run("timeout-while-retrying", func(t *testing.T) {
		r := run(t, "receiver", "-c", cfg, "-t", "2s")
		if !expectCode(t, r, r.code, exitNATS) {
			return
		}
		lines := errorLines(r.stderr.String())
		if len(lines) != 1 || !strings.HasPrefix(lines[0], prefix) || !strings.HasSuffix(lines[0], " (gave up: -t 2s ran out)") ||
			strings.Count(lines[0], "gave up") != 1 || strings.Contains(lines[0], "timeout") {
			t.Errorf("error lines %q, want one %q… line ending (gave up: -t 2s ran out)", lines, prefix)
		}
	})
	t.Run("sigterm-while-retrying", func(t *testing.T) {
		r := start(t, "receiver", "-c", cfg, "-t", "60s")
		r.waitFor(t, "cannot connect, retrying", readyWithin)
		r.cmd.Process.Signal(syscall.SIGTERM)
		if !expectCode(t, r, r.wait(t, 20*time.Second), 128+int(syscall.SIGTERM)) {
			return
		}
		lines := errorLines(r.stderr.String())
		if len(lines) != 1 || !strings.HasPrefix(lines[0], prefix) || !strings.HasSuffix(lines[0], " (gave up: stopped by SIGTERM (exit 143))") ||
			strings.Contains(r.stderr.String(), "timeout") || strings.Contains(r.stderr.String(), "ran out") {
			t.Errorf("error lines %q, want one %q… line ending (gave up: stopped by SIGTERM (exit 143)), and no timeout", lines, prefix)
		}
	})

	b := newBed(t)
	req := newNode(t, "com.test.requester")
	r1 := newNode(t, "com.test.r1")
	reqCfg := b.requesterConfig(t, req, r1)
	t.Run("sigint-while-listening", func(t *testing.T) {
		r := start(t, "receiver", "-c", b.config(t, r1, "ping", peerOf(req, "ping")), "-t", "60s", "-log", "info")
		r.waitReady(t)
		r.cmd.Process.Signal(syscall.SIGINT)
		if expectCode(t, r, r.wait(t, 20*time.Second), 128+int(syscall.SIGINT)) &&
			!strings.HasSuffix(r.stderr.String(), `msg=ready channel=all destination=com.test.r1 any_destination=false uuid="" verbs=""`+"\nremaphore: stopped by SIGINT (exit 130)\n") {
			t.Errorf("receiver: stderr does not end with the ready line and %q:\n%s", "remaphore: stopped by SIGINT (exit 130)", r.stderr.String())
		}
	})
	t.Run("sigint-while-waiting-for-answers", func(t *testing.T) {
		rq := start(t, "requester", "-c", reqCfg, "-r", "-t", "60s", "-log", "info")
		rq.requestID(t)
		rq.cmd.Process.Signal(syscall.SIGINT)
		if expectCode(t, rq, rq.wait(t, 20*time.Second), 128+int(syscall.SIGINT)) {
			lines := strings.Split(strings.TrimSuffix(rq.stderr.String(), "\n"), "\n")
			if n := len(lines); n < 2 || lines[n-2] != "remaphore: no answer from 1 of 1 responders: com.test.r1" || lines[n-1] != "remaphore: stopped by SIGINT (exit 130)" {
				t.Errorf("requester: stderr does not end with the missing responder and the signal:\n%s", rq.stderr.String())
			}
		}
	})
}

// 19.8: a script that cannot run is a usage error at start, exit 2 with
// the fix, before connecting (the server here does not exist) and so
// before any message is used up.
func TestScriptNotRunnable(t *testing.T) {
	dir := t.TempDir()
	cfg := downConfig(t, dir)
	write := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	noExec := write("no-exec.sh", "#!/bin/sh\necho hi\n", 0o644)
	noInterp := write("no-interp.sh", "#!/nonexistent/bin/interp -x\necho hi\n", 0o755)
	noShebang := write("no-shebang.sh", "echo hi\n", 0o755)
	crlf := write("crlf.sh", "#!/bin/sh\r\necho hi\r\n", 0o755)
	envMissing := write("env-missing.sh", "#!/usr/bin/env remaphore-no-such-interpreter\n", 0o755)
	missing := filepath.Join(dir, "missing.sh")
	// Files other users may change: whoever can, runs code as the
	// receiver's user with the next message.
	groupW := write("group-writable.sh", "#!/bin/sh\necho hi\n", 0o775)
	otherW := write("other-writable.sh", "#!/bin/sh\necho hi\n", 0o757)
	openInterp := write("open-interp", "#!/bin/sh\n", 0o777)
	viaOpen := write("via-open-interp.sh", "#!"+openInterp+"\necho hi\n", 0o755)
	cases := []struct {
		name   string
		script string
		want   string
	}{
		{"not-executable", noExec, "remaphore: error: script " + noExec + " is not executable (mode 0644)\nremaphore: hint: chmod +x " + noExec + "\n"},
		{"interpreter-missing", noInterp, "remaphore: error: script " + noInterp + ": its interpreter /nonexistent/bin/interp (the #! line) does not exist\n" +
			"remaphore: hint: install /nonexistent/bin/interp, or change the first line of " + noInterp + " to an interpreter that exists\n"},
		{"no-shebang", noShebang, "remaphore: error: script " + noShebang + " has no #! line and is not a binary executable: it cannot be run (exec format error)\n" +
			"remaphore: hint: add a first line naming its interpreter, like #!/bin/sh\n"},
		{"windows-line-endings", crlf, "remaphore: error: script " + crlf + ": its #! line ends with a carriage return (Windows line endings), so the interpreter is not found\n" +
			"remaphore: hint: convert the file: sed -i 's/\\r$//' " + crlf + "\n"},
		{"env-interpreter-missing", envMissing, "remaphore: error: script " + envMissing + ": its interpreter remaphore-no-such-interpreter (#!/usr/bin/env remaphore-no-such-interpreter) is not on PATH\n" +
			"remaphore: hint: install remaphore-no-such-interpreter, or put it on PATH\n"},
		{"directory", dir, "remaphore: error: script " + dir + " is a directory\nremaphore: hint: give the path of an executable file\n"},
		{"missing", missing, "remaphore: error: script " + missing + " does not exist\nremaphore: hint: give the path of an executable file, or put it on PATH\n"},
		{"not-on-path", "remaphore-no-such-command", "remaphore: error: script \"remaphore-no-such-command\": not found in PATH\nremaphore: hint: give the path of an executable file, or put it on PATH\n"},
		{"group-writable", groupW, "remaphore: error: script " + groupW + " is writable by its group (mode 0775): others could change what runs as this user\nremaphore: hint: chmod g-w " + groupW + "\n"},
		{"other-writable", otherW, "remaphore: error: script " + otherW + " is writable by other users (mode 0757): others could change what runs as this user\nremaphore: hint: chmod o-w " + otherW + "\n"},
		{"interpreter-writable", viaOpen, "remaphore: error: script " + viaOpen + ": its interpreter " + openInterp + " is writable by its group and by other users (mode 0777): others could change what runs as this user\n" +
			"remaphore: hint: chmod g-w,o-w " + openInterp + "\n"},
	}
	if os.Geteuid() == 0 { // giving a file to another user needs root
		other := write("other-owner.sh", "#!/bin/sh\necho hi\n", 0o755)
		if err := os.Chown(other, 4321, 4321); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, struct {
			name   string
			script string
			want   string
		}{"other-owner", other, "remaphore: error: script " + other + " is owned by 4321, neither root nor the user running this (root) (mode 0755): others could change what runs as this user\nremaphore: hint: chown root " + other + "\n"})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := run(t, "receiver", "-c", cfg, "-o", "-t", "30s", tc.script)
			if !expectCode(t, p, p.code, exitUsage) {
				return
			}
			if got := p.stderr.String(); got != tc.want {
				t.Errorf("stderr:\n got  %q\n want %q", got, tc.want)
			}
			if p.elapsed > 5*time.Second {
				t.Errorf("took %v: the check must come before any connection attempt", p.elapsed)
			}
		})
	}
}

// 19.10: hints that point at the actual mistake.
func TestOperatorHints(t *testing.T) {
	dir := t.TempDir()
	cfg := downConfig(t, dir)
	peerKey := strings.Fields(mustLine(t, cfg, "com.test.stranger "))[1]
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"-p-names-a-peer", []string{"-s", "-p", peerKey},
			"remaphore: error: no identity for verb: " + peerKey + " is not one of the [ Identities ] in the config\n" +
				"remaphore: hint: -p takes the public key (first field) of one of the [ Identities ] in " + cfg + "; a peer's key cannot sign\n"},
		{"-D-trailing-dot", []string{"-s", "-D", "com.fleet.**."},
			`remaphore: error: -D: invalid destination pattern: "com.fleet.**." has an empty segment (two dots, or a dot at either end)` + "\n" +
				"remaphore: hint: write segments like com.crypto.*.us or com.crypto.**\n"},
		{"-v-given", []string{"-s", "-v", "deploy"},
			`remaphore: error: no identity for verb: no identity in the config may send verb "deploy"` + "\n" +
				"remaphore: hint: add deploy to an identity's [verbs] in " + cfg + "\n"},
		{"-v-given-to-r", []string{"-r", "-v", "deploy"},
			`remaphore: error: no identity for verb: no identity in the config may send verb "deploy"` + "\n" +
				"remaphore: hint: add deploy to an identity's [verbs] in " + cfg + "\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := run(t, "remaphore", append([]string{"-c", cfg}, tc.args...)...)
			if expectCode(t, p, p.code, exitUsage) {
				if got := p.stderr.String(); got != tc.want {
					t.Errorf("stderr:\n got  %q\n want %q", got, tc.want)
				}
			}
		})
	}
}

// mustLine returns the first line of file starting with prefix.
func mustLine(t *testing.T, file, prefix string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	t.Fatalf("%s has no line starting with %q", file, prefix)
	return ""
}
