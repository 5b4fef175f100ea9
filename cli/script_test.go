package cli_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/remaphore/remaphore/auditcli"
	"github.com/remaphore/remaphore/cli"
	"github.com/remaphore/remaphore/internal/natstest"
	"github.com/remaphore/remaphore/sign"
)

// TestMain registers the two commands in this test binary: a script's
// "exec remaphore" runs cli.Main in a child process of it, so a script
// tests the real process (signals, exit codes, stdout and stderr) and
// `go test -cover` counts what it ran.
func TestMain(m *testing.M) {
	os.Exit(testscript.RunMain(m, map[string]func() int{
		"remaphore":       func() int { return cli.Main(os.Args[1:], os.Stdout, os.Stderr) },
		"remaphore-audit": func() int { return auditcli.Main(os.Args[1:], os.Stdout, os.Stderr) },
	}))
}

// TestScripts runs testdata/script/*.txtar. All scripts share one
// in-process NATS server; each gets its own subject (so its own stream)
// and, in its work dir, the configs of three nodes and an auditor that
// trust each other (see setupNodes).
func TestScripts(t *testing.T) {
	c := natstest.Start(t)
	var n atomic.Int32
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(e *testscript.Env) error {
			return setupNodes(e, c.URLs()[0], c.User.SeedFile, fmt.Sprintf("rs%d", n.Add(1)))
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){"exits": cmdExits},
	})
}

// setupNodes writes a.conf, b.conf and c.conf (nodes com.test.a, .b and
// .c, each with its own identity that may send any verb and the other two
// as peers) and audit.conf (the auditor of com.test.*, database audit.db)
// into the work dir, and sets NATS_URL, CREDS, SUBJECT and PUB_A, PUB_B,
// PUB_C (the nodes' public keys) for scripts that write configs of their
// own.
func setupNodes(e *testscript.Env, url, creds, subject string) error {
	names := []string{"a", "b", "c"}
	keys := make([]sign.PrivateKey, len(names))
	for i, n := range names {
		k, err := sign.GenerateKey(nil)
		if err != nil {
			return err
		}
		keys[i] = k
		e.Setenv("PUB_"+strings.ToUpper(n), k.Public().String())
	}
	e.Setenv("NATS_URL", url)
	e.Setenv("CREDS", creds)
	e.Setenv("SUBJECT", subject)
	head := fmt.Sprintf("server: %s\ncredentials: %s\nsubject: %s\n", url, creds, subject)
	peers := func(except int) string {
		var b strings.Builder
		b.WriteString("\n[ Peers ]\n")
		for i, n := range names {
			if i != except {
				fmt.Fprintf(&b, "com.test.%s %s [*]\n", n, keys[i].Public())
			}
		}
		return b.String()
	}
	for i, n := range names {
		text := head + "destination: com.test." + n + "\n\n[ Identities ]\n" +
			fmt.Sprintf("%s %s [*]\n", keys[i].Public(), keys[i].Base58()) + peers(i)
		if err := os.WriteFile(filepath.Join(e.WorkDir, n+".conf"), []byte(text), 0o600); err != nil {
			return err
		}
	}
	audit := head + "destination: com.test.auditor\naudit_db: audit.db\n" + peers(-1)
	return os.WriteFile(filepath.Join(e.WorkDir, "audit.conf"), []byte(audit), 0o600)
}

// cmdExits runs a program like exec and checks its exit code:
// "exits 2 remaphore -s -r". stdout and stderr are kept for the next
// stdout/stderr/cmp, as after exec.
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits CODE PROGRAM [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exits: %q is not an exit code", args[0])
	}
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("exits: %v", err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited %d, want %d", args[1], got, want)
	}
}
