// Package proctest helps the tests that run the project's binaries as
// processes: it builds them once, and collects their output safely while
// they run.
package proctest

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"sync"
)

// Build compiles the main package pkg (an import path such as
// github.com/remaphore/remaphore/cmd/remaphore) into dir and returns the
// binary's path. flags are extra go build flags (-race).
func Build(dir, pkg string, flags ...string) (string, error) {
	out := filepath.Join(dir, filepath.Base(pkg))
	args := append(append([]string{"build"}, flags...), "-o", out, pkg)
	if b, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return out, nil
}

// Buffer is a bytes.Buffer safe for a process's writes and a test's reads
// at the same time.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
