package integration

import (
	"syscall"
	"testing"
	"time"
)

// A receiver killed with SIGKILL cannot delete its consumer; the server
// removes it once the consumer's inactive threshold (5 s) has passed
// without pulls, so killed receivers do not pile up against max_consumers.
func TestKilledReceiverConsumerExpires(t *testing.T) {
	b := newBed(t)
	recv := newNode(t, "com.test.recv")
	cfg := b.config(t, recv, "ping")
	cl := dial(t, b.c, b.c.URLs()[0])
	var procs []*proc
	for i := 0; i < 3; i++ {
		p := start(t, "receiver", "-c", cfg, "-log", "info", "-t", "60s")
		p.waitReady(t)
		procs = append(procs, p)
	}
	if n := cl.consumers(t); n != 3 {
		t.Fatalf("three waiting receivers hold %d consumers, want 3", n)
	}
	killed := time.Now()
	for _, p := range procs {
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		p.wait(t, 5*time.Second)
	}
	const threshold = 5 * time.Second
	for {
		n := cl.consumers(t)
		if n == 0 {
			t.Logf("consumers of killed receivers gone %v after SIGKILL", time.Since(killed).Round(100*time.Millisecond))
			return
		}
		// The server checks inactivity on a timer: allow the threshold
		// plus one check interval.
		if time.Since(killed) > 2*threshold {
			t.Fatalf("%d consumers still on the stream %v after SIGKILL (inactive threshold %v)", n, time.Since(killed).Round(time.Millisecond), threshold)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
