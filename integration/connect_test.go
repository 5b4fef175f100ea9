package integration

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/remaphore/remaphore/internal/natstest"
	"github.com/remaphore/remaphore/transport"
)

// A receiver connected to server 1 of a 3-node cluster keeps receiving
// after server 1 stops; the sender only knows servers 2 and 3.
func TestClusterFailover(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	dir := t.TempDir()
	sender := newNode(t, "com.test.sender")
	recv := newNode(t, "com.test.recv")
	recvCfg := writeConf(t, dir, "recv", conf{
		servers: c.URLs(), creds: c.User.SeedFile, dest: recv.dest, replicas: 3,
		identities: []identity{{key: recv.key, verbs: "ping"}},
		peers:      []peer{peerOf(sender, "ping")},
	})
	sendCfg := writeConf(t, dir, "send", conf{
		servers: c.URLs()[1:], creds: c.User.SeedFile, dest: sender.dest, replicas: 3,
		identities: []identity{{key: sender.key, verbs: "ping"}},
	})

	r := start(t, "receiver", "-c", recvCfg, "-o", "-t", "40s", "-log", "info")
	r.waitReady(t)
	cl := dial(t, c, c.URLs()[1])
	st, err := cl.js.Stream(ctxFor(t, 10*time.Second), transport.StreamName(root))
	if err != nil {
		t.Fatalf("the receiver did not create the stream: %v", err)
	}
	if n := st.CachedInfo().Config.Replicas; n != 3 {
		t.Fatalf("stream %s has %d replicas, want 3 (config replicas: 3)", st.CachedInfo().Config.Name, n)
	}
	if n := c.Servers[0].NumClients(); n != 1 {
		t.Fatalf("server 1 has %d clients, want 1 (the receiver, which lists it first)", n)
	}

	c.Stop(0)
	// While the cluster elects new leaders a send may fail with a NATS
	// error (exit 3); it must succeed once the cluster has settled.
	var s *proc
	deadline := time.Now().Add(20 * time.Second)
	for attempt := 1; ; attempt++ {
		s = run(t, "sender", "-c", sendCfg, "-s", "-t", "5s", "after failover")
		if s.code != exitNATS || time.Now().After(deadline) {
			break
		}
		t.Logf("send attempt %d after the stop: exit %d: %s", attempt, s.code, strings.TrimSpace(s.stderr.String()))
		time.Sleep(250 * time.Millisecond)
	}
	expectCode(t, s, s.code, exitOK)
	if expectCode(t, r, r.wait(t, 45*time.Second), exitOK) {
		expectStderr(t, r, "msg=accepted")
	}
}

// A sender (or requester) whose server is down, or accepts connections
// and never answers, fails with exit 3 within 5 s and names the server; a
// down server before a working one is skipped.
func TestSenderServerDown(t *testing.T) {
	dir := t.TempDir()
	user := natstest.NewUser(t, dir)
	sender := newNode(t, "com.test.sender")
	responder := newNode(t, "com.test.r1")
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close() // hold it open, say nothing
		}
	}()
	silentURL := "nats://" + silent.Addr().String()
	for _, tc := range []struct {
		name   string
		server string
		mode   string
	}{
		{"down-send", "nats://127.0.0.1:1", "-s"},
		{"down-request", "nats://127.0.0.1:1", "-r"},
		{"silent-send", silentURL, "-s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := writeConf(t, t.TempDir(), "send", conf{
				servers: []string{tc.server}, creds: user.SeedFile, dest: sender.dest,
				identities: []identity{{key: sender.key, verbs: "ping"}},
				// A peer other than the sender itself: a requester never
				// waits for its own identities.
				peers: []peer{peerOf(responder, "ping")},
			})
			s := run(t, "sender", "-c", cfg, tc.mode, "hello")
			if expectCode(t, s, s.code, exitNATS) {
				if s.elapsed > 5*time.Second {
					t.Errorf("sender: took %v to fail, want < 5s", s.elapsed)
				}
				expectStderr(t, s, strings.TrimPrefix(tc.server, "nats://"))
				if n := len(errorLines(s.stderr.String())); n != 1 {
					t.Errorf("sender: %d \"remaphore: error:\" lines, want 1\n%s", n, s.describe())
				}
				// What to do about it: the config's server: lines.
				expectStderr(t, s, "remaphore: hint: check that a NATS server listens at the server: lines of "+cfg)
			}
		})
	}
	// -t ran out before the server could answer: nothing is known about
	// the server, and no hint blames it.
	t.Run("timeout-first", func(t *testing.T) {
		c := natstest.Start(t)
		cfg := writeConf(t, t.TempDir(), "send", conf{servers: c.URLs(), creds: c.User.SeedFile, dest: sender.dest,
			identities: []identity{{key: sender.key, verbs: "ping"}}})
		s := run(t, "sender", "-c", cfg, "-s", "-t", "1ns", "hello")
		if expectCode(t, s, s.code, exitNATS) {
			expectStderr(t, s, "-t 1ns ran out")
			if strings.Contains(s.stderr.String(), "hint:") {
				t.Errorf("sender: a hint for a server that was never asked\n%s", s.describe())
			}
		}
	})
	// A server that does not know the user of the credentials file: the
	// hint says where the user's public key goes.
	t.Run("credentials-refused", func(t *testing.T) {
		c := natstest.Start(t)
		stranger := natstest.NewUser(t, t.TempDir())
		cfg := writeConf(t, t.TempDir(), "send", conf{
			servers: c.URLs(), creds: stranger.SeedFile, dest: sender.dest,
			identities: []identity{{key: sender.key, verbs: "ping"}},
		})
		for _, args := range [][]string{{"-s", "hello"}, {"-o", "-t", "2s"}} {
			s := run(t, "sender", append([]string{"-c", cfg}, args...)...)
			if expectCode(t, s, s.code, exitNATS) {
				expectStderr(t, s, "refused the credentials in "+stranger.SeedFile)
				expectStderr(t, s, "remaphore: hint: the server has no user for the seed in "+stranger.SeedFile)
			}
		}
	})
	t.Run("down-then-up", func(t *testing.T) {
		c := natstest.Start(t)
		cfg := writeConf(t, t.TempDir(), "send", conf{
			servers: []string{"nats://127.0.0.1:1", c.URLs()[0]}, creds: c.User.SeedFile, dest: sender.dest,
			identities: []identity{{key: sender.key, verbs: "ping"}},
		})
		s := run(t, "sender", "-c", cfg, "-s", "hello")
		expectCode(t, s, s.code, exitOK)
	})
}

// A server left at NATS's default max_payload (1 MB) refuses a message
// near remaphore's 1 MiB payload limit: exit 3, saying which limit, with
// the setting that fixes it (docs/deployment.md sets max_payload:
// 1060000).
func TestSendAboveServerMaxPayload(t *testing.T) {
	dir := t.TempDir()
	user := natstest.NewUser(t, dir)
	s := natstest.StartConfig(t, "authorization { users = [ { nkey: "+user.Public+" } ] }\n")
	sender := newNode(t, "com.test.sender")
	cfg := writeConf(t, dir, "send", conf{servers: []string{s.URL}, creds: user.SeedFile, dest: sender.dest,
		identities: []identity{{key: sender.key, verbs: "ping"}}})
	// 1,048,510 bytes of payload, under remaphore's limit (1 MiB), in
	// arguments under Linux's 128 KiB per argument.
	args := []string{"-c", cfg, "-s"}
	for range 10 {
		args = append(args, strings.Repeat("a", 100_000))
	}
	args = append(args, strings.Repeat("b", 48_500))
	p := run(t, "sender", args...)
	if expectCode(t, p, p.code, exitNATS) {
		expectStderr(t, p, "larger than the server's max_payload of 1048576 bytes")
		expectStderr(t, p, "remaphore: hint: set max_payload: 1060000 in the NATS servers' config")
	}
}
