//go:build compose && unix

package compose

import (
	"os"
	"syscall"
	"testing"
)

// lockCheckout allows one run per checkout at a time: the runs share
// integration/compose/gen/ and bin/. The lock is on the directory and goes
// with the test process.
func lockCheckout(t *testing.T, dir string) {
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		t.Fatalf("another compose harness is running in this checkout (%s is locked: %v)", dir, err)
	}
	t.Cleanup(func() { f.Close() })
}
