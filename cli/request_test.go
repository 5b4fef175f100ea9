package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/remaphore/remaphore/internal/natstest"
	"github.com/remaphore/remaphore/sign"
)

// -r without -t is bounded (issue 14): a responder that never answers no
// longer keeps the requester waiting forever. The bound is shortened here
// so as not to wait the real minute; the reason printed names it.
func TestRequestDefaultBound(t *testing.T) {
	c := natstest.Start(t)
	self, err := sign.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	down, err := sign.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "req.conf")
	text := fmt.Sprintf("server: %s\ncredentials: %s\ndestination: com.test.req\n\n[ Identities ]\n%s %s [ping]\n\n[ Peers ]\ncom.test.down %s [ping]\n",
		c.URLs()[0], c.User.SeedFile, self.Public(), self.Base58(), down.Public())
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(usageOf(t), "-s gives up after 10s, -r after 1m0s") {
		t.Errorf("-h does not document the default bound:\n%s", usageOf(t))
	}
	old := defaultRequestTimeout
	defaultRequestTimeout = 2 * time.Second
	t.Cleanup(func() { defaultRequestTimeout = old })

	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := Main([]string{"-c", cfg, "-r", "status"}, &stdout, &stderr)
	elapsed := time.Since(start)
	if code != ExitTimeout {
		t.Fatalf("exit %d, want %d\nstderr:\n%s", code, ExitTimeout, stderr.String())
	}
	if elapsed < 2*time.Second || elapsed > 30*time.Second {
		t.Errorf("returned after %v, want the default bound of 2s", elapsed)
	}
	want := "remaphore: no answer from 1 of 1 responders (-r's default bound of 2s ran out; give -t for longer): com.test.down\n"
	if stderr.String() != want {
		t.Errorf("stderr %q, want %q", stderr.String(), want)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout %q, want nothing", stdout.String())
	}
}

func usageOf(t *testing.T) string {
	var out bytes.Buffer
	if code := Main([]string{"-h"}, &out, &out); code != ExitOK {
		t.Fatalf("-h: exit %d", code)
	}
	return out.String()
}
