package auditcli

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A database file damaged on disk, or edited outside the auditor, made
// bbolt read past its pages or trip its assertions: every reading command
// died with a Go panic or a fault and its stack trace (exit 2, a usage
// error), verify included, whose job is to find such damage. Each now
// ends with an error line and a hint (exit 3), or with what it could
// read; verify reports what it found (exit 1) or the same error.
func TestDamagedFileNeverCrashes(t *testing.T) {
	damaged := 0
	for i := range 60 {
		f := newFixture(t)
		b, err := os.ReadFile(f.db)
		if err != nil {
			t.Fatal(err)
		}
		// 16 bytes changed past the two meta pages (whose checksums
		// bbolt checks on open).
		r := rand.New(rand.NewPCG(uint64(i), 7))
		for range 16 {
			b[8192+r.IntN(len(b)-8192)] ^= byte(1 + r.IntN(255))
		}
		bad := filepath.Join(t.TempDir(), "damaged.db")
		if err := os.WriteFile(bad, b, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{
			{"verify", "-db", bad}, {"query", "-db", bad}, {"query", "-db", bad, "-rejected"}, {"tail", "-db", bad},
			{"stats", "-db", bad}, {"receipts", "-db", bad, "-uuid", "a"},
		} {
			res := run(t, args...)
			switch {
			case res.code == ExitBackend:
				if strings.Contains(res.stderr, "the database file is damaged") {
					damaged++
					if !strings.Contains(res.stderr, "remaphore-audit: hint: restore the file from a backup") {
						t.Errorf("damage %d, %s: no hint\n%s", i, strings.Join(args, " "), res.stderr)
					}
				}
			case res.code == ExitUsage, strings.Contains(res.stderr, "goroutine "):
				t.Errorf("damage %d, %s: exit %d\n%s", i, strings.Join(args, " "), res.code, res.stderr)
			}
		}
	}
	if damaged == 0 {
		t.Errorf("no command met the damage: the test no longer damages the pages it reads")
	}
}
