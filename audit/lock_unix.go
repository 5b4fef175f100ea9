//go:build unix

package audit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// lockPoll is how often a waiting reader retries the file lock. bbolt's
// own retry is 50ms; a reader polling faster gets in during the short
// pauses a busy writer leaves between transactions (see [Writer]).
const lockPoll = 2 * time.Millisecond

// waitShared takes a shared lock on path within timeout and returns the
// file holding it. bbolt then takes its own shared lock on another
// descriptor, which a shared lock does not block, and the caller closes
// this one. A missing file is ErrNotFound.
func waitShared(path string, timeout time.Duration) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s does not exist", ErrNotFound, path)
		}
		return nil, err
	}
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("%w: %s is held by a writer (waited %s)", ErrBusy, path, timeout)
		}
		time.Sleep(lockPoll)
	}
}

// DaemonLock is held by a running ingester for its whole life: bbolt's own
// lock is released between transactions so that readers get in, and this
// one keeps a second ingester out.
type DaemonLock struct{ f *os.File }

// LockPath is the lock file of the database at path.
func LockPath(path string) string { return path + ".lock" }

// LockDaemon takes the ingester lock of the database at path without
// waiting; when another process holds it the error matches ErrLocked and
// names that process.
func LockDaemon(path string) (*DaemonLock, error) {
	lp := LockPath(path)
	// O_NOFOLLOW: whoever can write the database's directory could
	// otherwise point the lock file at another file, which the auditor
	// (often root) would then truncate and write its pid into.
	f, err := os.OpenFile(lp, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("%w: %s is a symbolic link; remove it (rm %s): the auditor creates its own lock file", ErrLockFile, lp, lp)
		}
		return nil, fmt.Errorf("create the lock file next to the database: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := ""
		if b, rerr := os.ReadFile(lp); rerr == nil && len(b) > 0 {
			holder = " (pid " + strings.TrimSpace(string(b)) + ")"
		}
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: another remaphore-audit run%s is writing %s", ErrLocked, holder, path)
		}
		return nil, fmt.Errorf("lock %s: %w", lp, err)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return &DaemonLock{f: f}, nil
}

// Release lets another ingester in. The lock file stays (removing it would
// race with a process that has just opened it).
func (l *DaemonLock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
