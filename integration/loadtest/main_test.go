package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

// The kinds the progress lines count failures by, from the messages the
// client and the OS give.
func TestKind(t *testing.T) {
	for msg, want := range map[string]string{
		"bad credentials file: open /tmp/u.nk: too many open files":                                                  kindEMFILE,
		"dial tcp 127.0.0.1:4222: socket: too many open files":                                                       kindEMFILE,
		"cannot connect, retrying: dial tcp 127.0.0.1:1: connect: connection refused":                                "refused connection",
		"cannot connect to NATS: nats://127.0.0.1:1: nats: no servers available for connection":                      "refused connection",
		"jetstream error: create consumer: nats: API error: code=400 err_code=10026 maximum consumers limit reached": "JetStream API: maximum consumers",
		"nats: JetStream API queue limit reached":                                                                    "JetStream API: queue full",
		"lost the consumer, recreating it: nats: no responders available for request":                                "JetStream API: no responders",
		"read tcp 127.0.0.1:1->127.0.0.1:2: i/o timeout":                                                             "timeout",
		"jetstream error: stream REMAPHORE: context deadline exceeded":                                               "deadline",
		"disconnected from NATS: EOF":                                                                                "connection closed",
		"cannot connect: descriptor limit reached on the server (pid 1: 300 of 300)":                                 "stopped: descriptor limit reached",
	} {
		if got := kind(msg); got != want {
			t.Errorf("kind(%q) = %q, want %q", msg, got, want)
		}
	}
	// An unknown message is its own kind, cut short for the progress line.
	long := strings.Repeat("x", 200)
	if got := kind(long); len(got) > 64 || !strings.HasPrefix(got, "xxx") {
		t.Errorf("kind of a long unknown message: %q", got)
	}
}

// Receiver i lists the servers starting at the i-th, so that receivers
// spread over a cluster and keep the others for failover.
func TestServerLines(t *testing.T) {
	s := []string{"nats://a", "nats://b", "nats://c"}
	if got, want := serverLines(s, 4), "server: nats://b\nserver: nats://c\nserver: nats://a\n"; got != want {
		t.Fatalf("serverLines(_, 4) = %q, want %q", got, want)
	}
	if got := split(" nats://a, ,nats://b,"); len(got) != 2 || got[0] != "nats://a" || got[1] != "nats://b" {
		t.Fatalf("split: %q", got)
	}
	if got := split(""); len(got) != 0 {
		t.Fatalf("split of nothing: %q", got)
	}
}

// fds and serversCPU read /proc: this process has descriptors open under
// a limit, and burns CPU; a process that does not exist reads as nothing.
func TestProcReaders(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	open, limit := fds(os.Getpid())
	if open <= 0 || limit < open {
		t.Fatalf("fds(self) = %d open, limit %d", open, limit)
	}
	if o, l := fds(1 << 30); o != 0 || l != 0 {
		t.Fatalf("fds of no process = %d, %d", o, l)
	}
	old := serverPids
	defer func() { serverPids = old }()
	serverPids = []int{os.Getpid()}
	// Spin until the clock-tick counter moves (a loaded machine may
	// give this process little CPU): at most 10 s.
	before := serversCPU()
	for end := time.Now().Add(10 * time.Second); serversCPU() <= before; {
		if time.Now().After(end) {
			t.Fatalf("CPU of this process did not grow from %v in 10 s of spinning", before)
		}
	}
	serverPids = []int{1 << 30}
	if got := serversCPU(); got != 0 {
		t.Fatalf("CPU of no process = %v", got)
	}
}
