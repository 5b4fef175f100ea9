package auditcli

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/remaphore/remaphore/internal/natstest"
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
		bad := damagedCopy(t, i, t.TempDir())
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

// run, opening a damaged file to go on filling it, fails the same way
// (it crashed with "freelist pgid above high water mark" and others).
func TestRunOnDamagedFileNeverCrashes(t *testing.T) {
	c := natstest.Start(t)
	damaged := 0
	for i := range 40 {
		dir := t.TempDir()
		bad := damagedCopy(t, i, dir)
		conf := filepath.Join(dir, "audit.conf")
		if err := os.WriteFile(conf, []byte("server: "+c.URLs()[0]+"\ncredentials: "+c.User.SeedFile+"\ndestination: com.example.audit\naudit_db: "+bad+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		res := runCtx(t, ctx, "run", "-c", conf)
		cancel()
		if strings.Contains(res.stderr, "the database file is damaged") {
			damaged++
		}
		if res.code == ExitUsage || strings.Contains(res.stderr, "goroutine ") {
			t.Errorf("damage %d: exit %d\n%s", i, res.code, res.stderr)
		}
	}
	if damaged == 0 {
		t.Errorf("run never met the damage: the test no longer damages the pages it reads")
	}
}

// damagedCopy writes dir/damaged.db: a fixture's database with 16 bytes
// changed past the two meta pages (whose checksums bbolt checks on open),
// the same for the same seed.
func damagedCopy(t *testing.T, seed int, dir string) string {
	t.Helper()
	b, err := os.ReadFile(newFixture(t).db)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(uint64(seed), 7))
	for range 16 {
		b[8192+r.IntN(len(b)-8192)] ^= byte(1 + r.IntN(255))
	}
	bad := filepath.Join(dir, "damaged.db")
	if err := os.WriteFile(bad, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return bad
}
