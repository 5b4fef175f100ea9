// Package natstest starts real NATS servers in-process for tests: JetStream
// on in t.TempDir(), real nkey authentication, and three-node clusters for
// failover. A server that cannot start fails the test; nothing is skipped.
package natstest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// TB is what natstest needs of a test: a subset of testing.TB, so that an
// Example, which has no *testing.T, can start a server with a stand-in.
type TB interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	TempDir() string
	Cleanup(func())
}

// User is an nkey user the servers accept.
type User struct {
	Public   string
	SeedFile string // credentials file holding the nkey seed
	KeyPair  nkeys.KeyPair
}

// NewUser makes an nkey user with its seed written to a 0600 file in dir.
func NewUser(t TB, dir string) User {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	seed, _ := kp.Seed()
	f := filepath.Join(dir, "user-"+pub[:8]+".nk")
	if err := os.WriteFile(f, append(seed, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	return User{Public: pub, SeedFile: f, KeyPair: kp}
}

// Server is one running server.
type Server struct {
	*server.Server
	URL  string
	Opts *server.Options
}

// Cluster is a set of servers and the user all of them accept.
type Cluster struct {
	Servers []*Server
	User    User
	Dir     string
}

// URLs lists the client URLs of all servers, in order.
func (c *Cluster) URLs() []string {
	var u []string
	for _, s := range c.Servers {
		u = append(u, s.URL)
	}
	return u
}

// Start runs one JetStream server with nkey auth.
func Start(t TB) *Cluster {
	t.Helper()
	return start(t, 1)
}

// StartCluster runs n JetStream servers in one cluster and waits until
// JetStream has a meta leader that sees all n online.
func StartCluster(t TB, n int) *Cluster {
	t.Helper()
	return start(t, n)
}

func freePort(t TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func start(t TB, n int) *Cluster {
	dir := t.TempDir()
	c := &Cluster{User: NewUser(t, dir), Dir: dir}
	routePorts := make([]int, n)
	for i := range routePorts {
		routePorts[i] = freePort(t)
	}
	for i := 0; i < n; i++ {
		o := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       -1,
			NoLog:      true,
			NoSigs:     true,
			JetStream:  true,
			StoreDir:   filepath.Join(dir, fmt.Sprintf("js%d", i+1)),
			Nkeys:      []*server.NkeyUser{{Nkey: c.User.Public}},
			MaxPayload: 2 << 20,
		}
		if n > 1 {
			o.Cluster = server.ClusterOpts{Name: "remaphore-test", Host: "127.0.0.1", Port: routePorts[i]}
			var routes string
			for j, p := range routePorts {
				if j != i {
					if routes != "" {
						routes += ","
					}
					routes += fmt.Sprintf("nats://127.0.0.1:%d", p)
				}
			}
			o.Routes = server.RoutesFromStr(routes)
		}
		s, err := server.NewServer(o)
		if err != nil {
			t.Fatalf("natstest: new server: %v", err)
		}
		go s.Start()
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatalf("natstest: server %d not ready", i+1)
		}
		srv := &Server{Server: s, URL: s.ClientURL(), Opts: o}
		c.Servers = append(c.Servers, srv)
		t.Cleanup(func() {
			s.Shutdown()
			s.WaitForShutdown()
		})
	}
	if n > 1 {
		deadline := time.Now().Add(30 * time.Second)
		for {
			ready := 0
			for _, s := range c.Servers {
				if s.JetStreamIsClustered() && s.JetStreamIsCurrent() {
					ready++
				}
			}
			// The meta leader must also count every server as an online
			// peer (it has their stats): until then, a replicated stream
			// is refused with "no suitable peers for placement".
			leader := false
			for _, s := range c.Servers {
				if s.JetStreamIsLeader() && len(s.JetStreamClusterPeers()) == n {
					leader = true
				}
			}
			if ready == n && leader {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("natstest: cluster has no JetStream meta leader that sees every server online after 30s")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c
}

// Stop shuts server i down (a failover test) and waits until it is gone.
func (c *Cluster) Stop(i int) {
	c.Servers[i].Shutdown()
	c.Servers[i].WaitForShutdown()
}

// StartConfig runs one JetStream server from a nats-server config text, so
// that a test runs the exact authorization and accounts blocks a
// deployment uses (integration/compose/auth.conf.tmpl). It adds what
// belongs to the test: a free port on 127.0.0.1, JetStream stored in
// t.TempDir(), no logging and no signal handlers; conf must not set them.
func StartConfig(t TB, conf string) *Server {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "nats.conf")
	text := fmt.Sprintf("listen: 127.0.0.1:-1\njetstream { store_dir: %q }\n%s", filepath.Join(dir, "js"), conf)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("natstest: config: %v\n%s", err, text)
	}
	o.NoLog, o.NoSigs = true, true
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatalf("natstest: new server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("natstest: server not ready")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return &Server{Server: s, URL: s.ClientURL(), Opts: o}
}
