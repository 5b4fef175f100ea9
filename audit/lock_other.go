//go:build !unix

package audit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// waitShared only checks that the file exists; bbolt's Options.Timeout
// does the waiting.
func waitShared(path string, timeout time.Duration) (*os.File, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s does not exist", ErrNotFound, path)
	}
	return f, err
}

// DaemonLock keeps a second ingester out.
type DaemonLock struct{ f *os.File }

// LockPath is the lock file of the database at path.
func LockPath(path string) string { return path + ".lock" }

// LockDaemon creates the lock file exclusively; a stale file from a crash
// must be removed by hand on these systems.
func LockDaemon(path string) (*DaemonLock, error) {
	f, err := os.OpenFile(LockPath(path), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("%w: %s exists (another remaphore-audit run, or a stale lock)", ErrLocked, LockPath(path))
	}
	if err != nil {
		return nil, err
	}
	return &DaemonLock{f: f}, nil
}

// Release removes the lock file.
func (l *DaemonLock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	name := l.f.Name()
	l.f.Close()
	l.f = nil
	return os.Remove(name)
}
