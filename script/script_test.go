package script

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeScript(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "s.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRun_ArgumentsAndEnvNoShell(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "pwned")
	s := writeScript(t, `printf '%s|' "$@"; printf '%s' "$REMAPHORE_MSG"`)
	payload := "a b 'q' \"d\"\nline2 $(touch " + marker + ") `touch " + marker + "`"
	res, err := Command{Argv: []string{s, "fixed arg"}}.Run(context.Background(), Call{Verb: "ping", Payload: []byte(payload), Env: []string{"REMAPHORE_MSG=" + payload}, Capture: true})
	if err != nil {
		t.Fatal(err)
	}
	want := "fixed arg|ping|" + payload + "|" + payload
	if string(res.Output) != want || res.ExitCode != 0 {
		t.Fatalf("output %q (exit %d), want %q", res.Output, res.ExitCode, want)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("payload was executed")
	}
}

func TestRun_ExitCodeAndCap(t *testing.T) {
	s := writeScript(t, `head -c 100000 /dev/zero | tr '\0' x; exit 3`)
	res, err := Command{Argv: []string{s}, Cap: 1000}.Run(context.Background(), Call{Capture: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 3 || !res.Truncated || !strings.HasSuffix(string(res.Output), "[remaphore: output truncated at 1000 bytes]\n") || !strings.HasPrefix(string(res.Output), strings.Repeat("x", 1000)+"\n") {
		t.Fatalf("exit %d truncated %v output %d bytes", res.ExitCode, res.Truncated, len(res.Output))
	}
}

func TestRun_BoundedByContext(t *testing.T) {
	s := writeScript(t, `sleep 30 & sleep 30`)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Command{Argv: []string{s}}.Run(ctx, Call{})
	if err == nil {
		t.Fatal("no error for a killed script")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
}

func TestLookup(t *testing.T) {
	if err := (Command{Argv: []string{"/nonexistent/script"}}).Lookup(); err == nil {
		t.Fatal("missing script accepted")
	}
	if err := (Command{Argv: []string{"true"}}).Lookup(); err != nil {
		t.Fatal(err)
	}
}

// Check accepts what exec can run: a binary, a #! script, a #! line
// through env with the interpreter on PATH; what it refuses, with which
// hint, is checked byte for byte in integration's TestScriptNotRunnable.
func TestCheck_Runnable(t *testing.T) {
	dir := t.TempDir()
	env := filepath.Join(dir, "env.sh")
	if err := os.WriteFile(env, []byte("#!/usr/bin/env sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, argv := range [][]string{{"true"}, {"sh", "-c", "exit 0"}, {writeScript(t, "exit 0\n")}, {env}} {
		if err := (Command{Argv: argv}).Check(); err != nil {
			t.Errorf("Check(%q): %v", argv, err)
		}
	}
	noShebang := filepath.Join(dir, "plain")
	if err := os.WriteFile(noShebang, []byte("echo hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := (Command{Argv: []string{noShebang}}).Check()
	if err == nil || Hint(err) != "add a first line naming its interpreter, like #!/bin/sh" {
		t.Errorf("a text file without #!: %v (hint %q)", err, Hint(err))
	}
	// What Check refuses, exec indeed cannot run.
	if _, err := (Command{Argv: []string{noShebang}}).Run(context.Background(), Call{Verb: "ping"}); err == nil {
		t.Error("exec ran a text file without #!; Check must not refuse it")
	}
}

// Variables remaphore sets never come from its own environment: a stale
// REMAPHORE_DESTMATCH (or the REMOPHORE_ spelling, or COUNT) inherited
// from the shell or from a script that runs remaphore would otherwise
// reach the script as if it described this message.
func TestRun_InheritedRemaphoreVariablesRemoved(t *testing.T) {
	t.Setenv("REMAPHORE_DESTMATCH", "stale")
	t.Setenv("REMOPHORE_DESTMATCH", "stale")
	t.Setenv("REMAPHORE_COUNT", "9")
	t.Setenv("REMAPHORE_MSG", "old")
	t.Setenv("REMAPHOREX", "kept: not the prefix")
	t.Setenv("KEEP_ME", "1")
	s := writeScript(t, `env | grep '^REM' | LC_ALL=C sort; echo "KEEP_ME=$KEEP_ME"`)
	res, err := Command{Argv: []string{s}}.Run(context.Background(), Call{Verb: "ping", Env: []string{"REMAPHORE_MSG=new"}, Capture: true})
	if err != nil {
		t.Fatal(err)
	}
	want := "REMAPHOREX=kept: not the prefix\nREMAPHORE_MSG=new\nKEEP_ME=1\n"
	if string(res.Output) != want {
		t.Fatalf("the script's environment:\n%s\nwant:\n%s", res.Output, want)
	}
}

// A script, its interpreter, or the NAME of "#!/usr/bin/env NAME" that
// another user may change is refused (anyone who can write it runs code
// as the receiver's user), with the chmod that fixes it; after the fix it
// is accepted. The exact messages are in integration's
// TestScriptNotRunnable.
func TestCheck_WritableByOthers(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		return p
	}
	interp := write("remaphore-test-interp", "#!/bin/sh\n", 0o757)
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	viaEnv := write("via-env.sh", "#!/usr/bin/env remaphore-test-interp\n", 0o755)
	own := write("own.sh", "#!/bin/sh\n", 0o775)
	for _, tc := range []struct{ script, fixed, hint string }{
		{viaEnv, interp, "chmod o-w " + interp},
		{own, own, "chmod g-w " + own},
	} {
		err := (Command{Argv: []string{tc.script}}).Check()
		if err == nil || !strings.Contains(err.Error(), tc.fixed+" is writable by") || Hint(err) != tc.hint {
			t.Errorf("Check(%s): %v (hint %q), want %s refused with hint %q", tc.script, err, Hint(err), tc.fixed, tc.hint)
		}
		if err := os.Chmod(tc.fixed, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := (Command{Argv: []string{tc.script}}).Check(); err != nil {
			t.Errorf("Check(%s) after the fix: %v", tc.script, err)
		}
	}
}
