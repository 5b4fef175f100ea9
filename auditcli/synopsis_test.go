package auditcli

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// remaphore-audit -h, each command's -h and the manual show the same
// flags for each command, and every flag shown exists. The top-level -h
// used to lack -metrics and -batch (run), -body (query, tail), -interval
// (tail), -since and -until (receipts), and each command's own -h some of
// them.
func TestSynopsesInManual(t *testing.T) {
	manual, err := os.ReadFile("../cmd/remaphore-audit/README.md")
	if err != nil {
		t.Fatal(err)
	}
	top := run(t, "-h").want(t, ExitOK).stdout
	flagRe := regexp.MustCompile(`(?:^|[\s\[(|])(-[a-z][a-z-]*)`)
	for name := range commands {
		syn := synopses[name]
		line := regexp.MustCompile(`(?m)^\s*remaphore-audit ` + name + ` +(.*)$`)
		if m := line.FindStringSubmatch(top); m == nil || m[1] != syn {
			t.Errorf("remaphore-audit -h shows %s as %q, want %q", name, m, syn)
		}
		if m := line.FindStringSubmatch(string(manual)); m == nil || m[1] != syn {
			t.Errorf("the manual shows %s as %q, want %q", name, m, syn)
		}
		help := run(t, name, "-h").want(t, ExitOK).stderr
		if want := "Usage: remaphore-audit " + name + " " + syn + "\n"; !strings.HasPrefix(help, want) {
			t.Errorf("%s -h begins %q, want %q", name, strings.SplitN(help, "\n", 2)[0], want)
		}
		for _, m := range flagRe.FindAllStringSubmatch(syn, -1) {
			if !strings.Contains(help, "\n  "+m[1]+" ") && !strings.Contains(help, "\n  "+m[1]+"\t") && !strings.Contains(help, "\n  "+m[1]+"\n") {
				t.Errorf("%s: the synopsis names %s, which %s -h does not list", name, m[1], name)
			}
		}
	}
}
