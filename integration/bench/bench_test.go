// Package bench measures remaphore's commands beside their peers in the
// same run, on the same in-process NATS server: a minimal Go program doing
// the same NATS work (integration/peers), and natscli when the nats binary
// is found (NATS_CLI, or nats on PATH; scripts/bench.sh installs a pinned
// version). Each sub-benchmark's ns/op is one whole operation, process
// start included.
package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/remaphore/remaphore/internal/natstest"
	"github.com/remaphore/remaphore/internal/proctest"
	"github.com/remaphore/remaphore/sign"
)

var bins struct {
	dir                        string
	remaphore, minpub, minwait string
	natscli                    string
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "remaphore-bench")
	if err != nil {
		panic(err)
	}
	bins.dir = dir
	const mod = "github.com/remaphore/remaphore/"
	for _, b := range []struct {
		path *string
		pkg  string
	}{{&bins.remaphore, mod + "cmd/remaphore"}, {&bins.minpub, mod + "integration/peers/minpub"}, {&bins.minwait, mod + "integration/peers/minwait"}} {
		if *b.path, err = proctest.Build(dir, b.pkg); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			os.Exit(1)
		}
	}
	bins.natscli = os.Getenv("NATS_CLI")
	if bins.natscli == "" {
		bins.natscli, _ = exec.LookPath("nats")
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one server and a remaphore config that trusts itself.
type env struct {
	c    *natstest.Cluster
	conf string
}

func setup(b *testing.B) *env {
	c := natstest.Start(b)
	key, err := sign.GenerateKey(nil)
	if err != nil {
		b.Fatal(err)
	}
	conf := filepath.Join(b.TempDir(), "remaphore.conf")
	text := fmt.Sprintf(`server: %s
credentials: %s
subject: remaphore
default_identity: %s
destination: com.bench.host
allow_skew: 5s

[ Identities ]
%s %s [*]

[ Peers ]
com.bench.host %s [*]
`, c.URLs()[0], c.User.SeedFile, key.Public(), key.Public(), key.Base58(), key.Public())
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		b.Fatal(err)
	}
	e := &env{c: c, conf: conf}
	// Create the stream once, so no variant pays for it.
	e.run(b, bins.remaphore, "-c", conf, "-s", "warmup")
	return e
}

func (e *env) run(b *testing.B, name string, args ...string) {
	b.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		b.Fatalf("%s %v: %v\n%s", filepath.Base(name), args, err, out)
	}
}

func (e *env) url() string { return e.c.URLs()[0] }

func (e *env) natsArgs(args ...string) []string {
	return append([]string{"--server", e.url(), "--nkey", e.c.User.SeedFile}, args...)
}

// BenchmarkSend: one message sent and stored, by a whole process.
func BenchmarkSend(b *testing.B) {
	e := setup(b)
	b.Run("remaphore", func(b *testing.B) {
		for b.Loop() {
			e.run(b, bins.remaphore, "-c", e.conf, "-s", "-u", "bench", "payload")
		}
	})
	b.Run("minpub", func(b *testing.B) {
		for b.Loop() {
			e.run(b, bins.minpub, e.url(), e.c.User.SeedFile, "remaphore.msg.all")
		}
	})
	b.Run("natscli", func(b *testing.B) {
		if bins.natscli == "" {
			b.Skip("natscli not found: set NATS_CLI or run scripts/bench.sh")
		}
		for b.Loop() {
			e.run(b, bins.natscli, e.natsArgs("pub", "--jetstream", "remaphore.msg.all", "payload")...)
		}
	})
}

// waiter is a receiving process that has said it is ready.
type waiter struct {
	cmd  *exec.Cmd
	done chan error
}

// startWaiter starts a receiver and returns once a line containing ready
// appeared on the stream it writes to.
func startWaiter(b *testing.B, ready string, useStderr bool, name string, args ...string) *waiter {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	b.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, name, args...)
	var r io.ReadCloser
	var err error
	if useStderr {
		r, err = cmd.StderrPipe()
	} else {
		r, err = cmd.StdoutPipe()
	}
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if strings.Contains(sc.Text(), ready) {
			break
		}
	}
	go io.Copy(io.Discard, r)
	w := &waiter{cmd: cmd, done: make(chan error, 1)}
	go func() { w.done <- cmd.Wait() }()
	return w
}

func (w *waiter) wait(b *testing.B) {
	if err := <-w.done; err != nil {
		b.Fatalf("waiter: %v", err)
	}
}

// BenchmarkEndToEnd: from the sender's start until the waiting receiver
// has exited. The receiver's own start-up is not timed.
func BenchmarkEndToEnd(b *testing.B) {
	e := setup(b)
	b.Run("remaphore", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			uuid := fmt.Sprint("e2e-", i)
			w := startWaiter(b, "msg=ready", true, bins.remaphore, "-c", e.conf, "-log", "info", "-u", uuid, "-t", "30s")
			b.StartTimer()
			e.run(b, bins.remaphore, "-c", e.conf, "-s", "-u", uuid)
			w.wait(b)
		}
	})
	b.Run("minimal", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			w := startWaiter(b, "ready", false, bins.minwait, e.url(), e.c.User.SeedFile, "REMAPHORE", "remaphore.msg.all")
			b.StartTimer()
			e.run(b, bins.minpub, e.url(), e.c.User.SeedFile, "remaphore.msg.all")
			w.wait(b)
		}
	})
	b.Run("natscli", func(b *testing.B) {
		if bins.natscli == "" {
			b.Skip("natscli not found: set NATS_CLI or run scripts/bench.sh")
		}
		for b.Loop() {
			b.StopTimer()
			w := startWaiter(b, "Subscribing", true, bins.natscli, e.natsArgs("sub", "--count", "1", "remaphore.msg.all")...)
			b.StartTimer()
			e.run(b, bins.natscli, e.natsArgs("pub", "remaphore.msg.all", "payload")...)
			w.wait(b)
		}
	})
}
