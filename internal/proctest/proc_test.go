package proctest

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary is also the child the tests start: "child:MODE" as its
// first argument makes it one (before the testing flags are parsed).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && strings.HasPrefix(os.Args[1], "child:") {
		os.Exit(child(strings.TrimPrefix(os.Args[1], "child:")))
	}
	os.Exit(m.Run())
}

func child(mode string) int {
	switch mode {
	case "exit3":
		fmt.Println("out")
		fmt.Fprintln(os.Stderr, "hello")
		return 3
	case "sleep": // stops cleanly on SIGTERM
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		fmt.Fprintln(os.Stderr, "ready")
		<-term
		fmt.Println("stopped")
		return 0
	case "stubborn": // ignores SIGTERM
		signal.Ignore(syscall.SIGTERM)
		fmt.Fprintln(os.Stderr, "ready")
		time.Sleep(time.Hour)
	}
	return 99
}

var generous = Limits{Bound: 2 * time.Minute, Grace: 10 * time.Second}

func TestStart_ExitCodeAndStreams(t *testing.T) {
	p := Start(t, generous, os.Args[0], "child", "child:exit3", "an arg")
	if code := p.Wait(t, time.Minute); code != 3 {
		t.Fatalf("exit code %d, want 3\n%s", code, p.Describe())
	}
	if p.Stdout.String() != "out\n" || p.Stderr.String() != "hello\n" {
		t.Fatalf("stdout %q, stderr %q", p.Stdout.String(), p.Stderr.String())
	}
	if d := p.Describe(); !strings.Contains(d, `child:exit3 "an arg"`) || !strings.Contains(d, "exit code 3 after") {
		t.Fatalf("describe:\n%s", d)
	}
}

// At the end of the test a process still running is asked to stop with
// SIGTERM, and stops as it would for an operator.
func TestStart_SIGTERMAtTheEndOfTheTest(t *testing.T) {
	var p *Proc
	t.Run("child", func(t *testing.T) {
		p = Start(t, generous, os.Args[0], "child", "child:sleep")
		p.WaitFor(t, "ready", time.Minute)
	})
	if !p.Exited() || p.Code != 0 || p.Stdout.String() != "stopped\n" {
		t.Fatalf("after the test:\n%s", p.Describe())
	}
}

// Hostile: a process that ignores SIGTERM is killed Grace later, and one
// that outlives Bound is stopped then.
func TestStart_StubbornProcessIsKilled(t *testing.T) {
	var p *Proc
	t.Run("child", func(t *testing.T) {
		p = Start(t, Limits{Bound: generous.Bound, Grace: 200 * time.Millisecond}, os.Args[0], "child", "child:stubborn")
		p.WaitFor(t, "ready", time.Minute)
	})
	if !p.Exited() || p.Code != -1 || p.WaitErr == nil {
		t.Fatalf("after the test, want killed:\n%s", p.Describe())
	}
}

func TestStart_BoundStopsTheProcess(t *testing.T) {
	// The SIGTERM may come before the child listens for it (a loaded
	// machine): then it dies of it rather than exit 0. Either way it
	// stops at the bound, not at the end of the test.
	p := Start(t, Limits{Bound: 300 * time.Millisecond, Grace: 10 * time.Second}, os.Args[0], "child", "child:sleep")
	if code := p.Wait(t, time.Minute); (code != 0 && code != -1) || p.Elapsed < 300*time.Millisecond {
		t.Fatalf("exit code %d after %v, want it stopped at the 300ms bound\n%s", code, p.Elapsed, p.Describe())
	}
}

func TestQuoteArgs(t *testing.T) {
	if got, want := QuoteArgs([]string{"-c", "a b", "", `x"y`, "plain"}), `-c "a b" "" "x\"y" plain`; got != want {
		t.Fatalf("QuoteArgs = %s, want %s", got, want)
	}
}
