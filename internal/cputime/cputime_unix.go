//go:build unix

// Package cputime reads the CPU time this process has used, for
// benchmarks that report CPU per operation beside their rate.
package cputime

import (
	"syscall"
	"time"
)

// Process is the CPU time (user and system) this process has used. Benchmarks
// report it per operation beside the rate, as it barely moves when other
// processes load the machine and the wall-clock rate does.
func Process() time.Duration {
	var u syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &u) != nil {
		return 0
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}
