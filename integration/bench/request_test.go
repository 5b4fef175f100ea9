package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/remaphore/remaphore/sign"
)

const responders = 50

// BenchmarkRequest: one request to 50 responders on this host, until every
// reply is in. Each responder runs a command per request (echo), like
// natscli's `nats reply --command`.
func BenchmarkRequest(b *testing.B) {
	e := setup(b)
	dir := b.TempDir()
	reqKey, _ := sign.GenerateKey(nil)
	var peers strings.Builder
	for i := 0; i < responders; i++ {
		k, _ := sign.GenerateKey(nil)
		dest := fmt.Sprintf("com.bench.r%02d", i)
		fmt.Fprintf(&peers, "%s %s [*]\n", dest, k.Public())
		conf := writeConf(b, dir, dest, k, fmt.Sprintf("com.bench.requester %s [*]\n", reqKey.Public()), e)
		startWaiter(b, "msg=ready", true, bins.remaphore, "-c", conf, "-log", "info", "-t", "10m", "echo")
	}
	reqConf := writeConf(b, dir, "com.bench.requester", reqKey, peers.String(), e)
	b.Run("remaphore", func(b *testing.B) {
		for b.Loop() {
			out, err := exec.Command(bins.remaphore, "-c", reqConf, "-r", "-t", "30s", "-D", "com.bench.**", "status").Output()
			if err != nil {
				b.Fatalf("request: %v\n%s", err, out)
			}
			if n := strings.Count(string(out), "\n"); n != responders {
				b.Fatalf("%d records, want %d", n, responders)
			}
		}
	})
	b.Run("natscli", func(b *testing.B) {
		if bins.natscli == "" {
			b.Skip("natscli not found: set NATS_CLI or run scripts/bench.sh")
		}
		for i := 0; i < responders; i++ {
			startWaiter(b, "Listening", true, bins.natscli, e.natsArgs("reply", "bench.req", "--command", "echo ping status")...)
		}
		for b.Loop() {
			out, err := exec.Command(bins.natscli, e.natsArgs("req", "--replies", fmt.Sprint(responders), "--timeout", "30s", "--raw", "bench.req", "status")...).Output()
			if err != nil {
				b.Fatalf("nats req: %v\n%s", err, out)
			}
		}
	})
}

func writeConf(b *testing.B, dir, dest string, k sign.PrivateKey, peers string, e *env) string {
	b.Helper()
	conf := filepath.Join(dir, dest+".conf")
	text := fmt.Sprintf("server: %s\ncredentials: %s\ndestination: %s\ndefault_identity: %s\nallow_skew: 5s\n\n[ Identities ]\n%s %s [*]\n\n[ Peers ]\n%s",
		e.url(), e.c.User.SeedFile, dest, k.Public(), k.Public(), k.Base58(), peers)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		b.Fatal(err)
	}
	return conf
}
