package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fanout is the number of waiting processes; BENCH_FANOUT changes it.
func fanout() int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_FANOUT")); err == nil && n > 0 {
		return n
	}
	return 200
}

// BenchmarkFanout: one send to 200 waiting processes on this host, from
// the send until the last one has exited. Starting the waiters is not
// timed. It also reports the peak memory (VmHWM) of one waiting receiver.
func BenchmarkFanout(b *testing.B) {
	e := setup(b)
	n := fanout()
	startAll := func(b *testing.B, start func(i int) *waiter) []*waiter {
		ws := make([]*waiter, n)
		var wg sync.WaitGroup
		sem := make(chan struct{}, 20)
		for i := range ws {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				ws[i] = start(i)
			}()
		}
		wg.Wait()
		return ws
	}
	b.Run("remaphore", func(b *testing.B) {
		var peak int64
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			uuid := fmt.Sprint("fan-", i)
			ws := startAll(b, func(int) *waiter {
				return startWaiter(b, "msg=ready", true, bins.remaphore, "-c", e.conf, "-log", "info", "-u", uuid, "-t", "60s")
			})
			for _, w := range ws {
				peak = max(peak, vmHWM(w.cmd.Process.Pid))
			}
			b.StartTimer()
			e.run(b, bins.remaphore, "-c", e.conf, "-s", "-u", uuid)
			for _, w := range ws {
				w.wait(b)
			}
		}
		b.ReportMetric(float64(peak)/1024, "peak-MiB/receiver")
	})
	b.Run("natscli", func(b *testing.B) {
		if bins.natscli == "" {
			b.Skip("natscli not found: set NATS_CLI or run scripts/bench.sh")
		}
		for b.Loop() {
			b.StopTimer()
			ws := startAll(b, func(int) *waiter {
				return startWaiter(b, "Subscribing", true, bins.natscli, e.natsArgs("sub", "--count", "1", "remaphore.msg.all")...)
			})
			b.StartTimer()
			e.run(b, bins.natscli, e.natsArgs("pub", "remaphore.msg.all", "payload")...)
			for _, w := range ws {
				w.wait(b)
			}
		}
	})
}

// vmHWM returns a process's peak resident memory in KiB (0 if unknown).
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v
		}
	}
	return 0
}
