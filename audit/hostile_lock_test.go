//go:build unix

package audit

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Whoever can write the database's directory may plant the lock file as a
// symbolic link to a file the auditor's user can write: the auditor must
// not follow it (it would truncate the target and write its pid there).
func TestHostile_LockFileSymlinkNotFollowed(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.db")
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, LockPath(path)); err != nil {
		t.Fatal(err)
	}
	l, err := LockDaemon(path)
	if err == nil {
		l.Release()
		t.Fatal("a lock file that is a symbolic link was followed")
	}
	want := LockPath(path) + " is a symbolic link; remove it (rm " + LockPath(path) + ")"
	if !errors.Is(err, ErrLockFile) || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want ErrLockFile naming %q", err, want)
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
		t.Fatalf("the link's target was changed: %q", b)
	}
	// Once the link is gone the auditor creates its own file.
	os.Remove(LockPath(path))
	l, err = LockDaemon(path)
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	if fi, err := os.Lstat(LockPath(path)); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("lock file: %v %v", fi, err)
	}
}
