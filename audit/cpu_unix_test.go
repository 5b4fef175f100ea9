//go:build unix

package audit_test

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user and system) this process has used: the
// test's NATS server and the consumer under test together. Benchmarks
// report it per message beside the rate, as it barely moves when other
// processes load the machine and the wall-clock rate does.
func processCPU() time.Duration {
	var u syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &u) != nil {
		return 0
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}
