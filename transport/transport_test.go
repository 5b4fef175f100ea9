package transport

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/remaphore/remaphore/internal/natstest"
)

func spec() StreamSpec {
	return StreamSpec{Root: "remaphore", Replicas: 1, MaxAge: time.Hour, Duplicates: 2 * time.Minute, MaxConsumers: 1000, MaxMsgSize: 2 << 20}
}

func connect(t *testing.T, c *natstest.Cluster, urls ...string) *Conn {
	t.Helper()
	if len(urls) == 0 {
		urls = c.URLs()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := Connect(ctx, Options{Servers: urls, Credentials: c.User.SeedFile, Name: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	return conn
}

func ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func recv(t *testing.T, s *Subscription, within time.Duration) (Delivery, bool) {
	t.Helper()
	select {
	case d := <-s.C:
		return d, true
	case <-time.After(within):
		return Delivery{}, false
	}
}

func TestPublishSubscribe_LiveOnly(t *testing.T) {
	c := natstest.Start(t)
	conn := connect(t, c)
	subj := MsgSubject("remaphore", DefaultChannel)
	if _, err := conn.Publish(ctx(t), spec(), subj, []byte("before"), "id-before"); err != nil {
		t.Fatal(err)
	}
	sub, err := conn.Subscribe(ctx(t), SubscribeOptions{Stream: spec(), Subject: subj})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if _, err := conn.Publish(ctx(t), spec(), subj, []byte("after"), "id-after"); err != nil {
		t.Fatal(err)
	}
	d, ok := recv(t, sub, 5*time.Second)
	if !ok || string(d.Body) != "after" || d.HeaderID != "id-after" || d.Stored.IsZero() {
		t.Fatalf("got %+v, %v", d, ok)
	}
	if d, ok := recv(t, sub, 300*time.Millisecond); ok {
		t.Fatalf("unexpected delivery %q", d.Body)
	}
}

func TestPublish_CreatesStream(t *testing.T) {
	c := natstest.Start(t)
	conn := connect(t, c)
	seq, err := conn.Publish(ctx(t), spec(), MsgSubject("remaphore", "x"), []byte("a"), "1")
	if err != nil || seq != 1 {
		t.Fatalf("seq %d, err %v", seq, err)
	}
	st, err := conn.JetStream().Stream(ctx(t), "REMAPHORE")
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	if cfg.MaxConsumers != 1000 || cfg.Duplicates != 2*time.Minute || cfg.Subjects[0] != "remaphore.>" || cfg.Storage != jetstream.FileStorage {
		t.Fatalf("stream config %+v", cfg)
	}
}

func TestPublish_DuplicateIDDropped(t *testing.T) {
	c := natstest.Start(t)
	conn := connect(t, c)
	subj := MsgSubject("remaphore", "all")
	if _, err := conn.Publish(ctx(t), spec(), subj, []byte("a"), "same"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Publish(ctx(t), spec(), subj, []byte("a"), "same"); err == nil || !strings.Contains(err.Error(), "duplicate") {
		t.Fatalf("second publish: %v", err)
	}
}

func TestEnsureStream_Mismatch(t *testing.T) {
	c := natstest.Start(t)
	conn := connect(t, c)
	if _, err := conn.JetStream().CreateStream(ctx(t), jetstream.StreamConfig{Name: "REMAPHORE", Subjects: []string{"other.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.EnsureStream(ctx(t), spec()); !errors.Is(err, ErrStreamMismatch) {
		t.Fatalf("err = %v", err)
	}
	if _, err := conn.Publish(ctx(t), spec(), MsgSubject("remaphore", "all"), []byte("x"), "1"); !errors.Is(err, ErrStreamMismatch) {
		t.Fatalf("publish err = %v", err)
	}
}

func TestConnect_DownServerFailsFast(t *testing.T) {
	start := time.Now()
	_, err := Connect(context.Background(), Options{Servers: []string{"nats://127.0.0.1:1"}})
	if !errors.Is(err, ErrConnect) || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
}

func TestConnect_BadCredentials(t *testing.T) {
	c := natstest.Start(t)
	other := natstest.NewUser(t, t.TempDir())
	_, err := Connect(context.Background(), Options{Servers: c.URLs(), Credentials: other.SeedFile})
	if !errors.Is(err, ErrConnect) || !strings.Contains(err.Error(), "credentials") {
		t.Fatalf("err = %v", err)
	}
	_, err = Connect(context.Background(), Options{Servers: c.URLs(), Credentials: "/nonexistent/creds"})
	if !errors.Is(err, ErrCredentials) {
		t.Fatalf("err = %v", err)
	}
}

func TestConnect_RetryUntilContextDone(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	_, err := Connect(ctx, Options{Servers: []string{"nats://127.0.0.1:1"}, Retry: true})
	if !errors.Is(err, ErrConnect) {
		t.Fatalf("err = %v", err)
	}
}

func TestSubscription_CloseDeletesConsumer(t *testing.T) {
	c := natstest.Start(t)
	conn := connect(t, c)
	sub, err := conn.Subscribe(ctx(t), SubscribeOptions{Stream: spec(), Subject: MsgSubject("remaphore", "all")})
	if err != nil {
		t.Fatal(err)
	}
	name := sub.ConsumerName()
	sub.Close()
	if _, err := conn.JetStream().Consumer(ctx(t), "REMAPHORE", name); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Fatalf("consumer %s after Close: %v", name, err)
	}
}

func TestSubscription_KilledConsumerExpires(t *testing.T) {
	c := natstest.Start(t)
	conn := connect(t, c)
	victim := connect(t, c)
	sub, err := victim.Subscribe(ctx(t), SubscribeOptions{Stream: spec(), Subject: MsgSubject("remaphore", "all"), InactiveThreshold: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	name := sub.ConsumerName()
	victim.NATS().Close() // as if killed: no delete
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := conn.JetStream().Consumer(ctx(t), "REMAPHORE", name)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer %s still there: %v", name, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestSubscribe_CoreNATSPublishNotSeen(t *testing.T) {
	// A core NATS publish on a subject the stream captures is stored too
	// (streams capture core publishes); the receiver sees it without a
	// Nats-Msg-Id, and policy refuses it. Here: delivered with empty id.
	c := natstest.Start(t)
	conn := connect(t, c)
	subj := MsgSubject("remaphore", "all")
	sub, err := conn.Subscribe(ctx(t), SubscribeOptions{Stream: spec(), Subject: subj})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if err := conn.NATS().Publish(subj, []byte("core")); err != nil {
		t.Fatal(err)
	}
	d, ok := recv(t, sub, 5*time.Second)
	if !ok || d.HeaderID != "" {
		t.Fatalf("got %+v %v", d, ok)
	}
}

func TestSubscribe_FailoverInCluster(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	sp := spec()
	sp.Replicas = 3
	admin := connect(t, c, c.Servers[1].URL, c.Servers[2].URL)
	if _, err := admin.EnsureStream(ctx(t), sp); err != nil {
		t.Fatal(err)
	}
	// The receiver prefers server 0, then 1, then 2.
	rc := connect(t, c)
	if got := rc.NATS().ConnectedUrl(); got != c.Servers[0].URL {
		t.Fatalf("connected to %s", got)
	}
	subj := MsgSubject("remaphore", "all")
	// Retry, as a receiver with -t does: on a loaded machine a freshly
	// started cluster may time out the first consumer create (seen: 3.9s).
	sub, err := rc.Subscribe(ctx(t), SubscribeOptions{Stream: sp, Subject: subj, Heartbeat: time.Second, Retry: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	// Stop server 0, where the receiver is connected; make sure it is the
	// stream's leader too, so that the publish right after it has to ride
	// out a leader election (Publish retries short attempts until ctx).
	for i := 0; i < 50 && leaderOf(t, admin) != "n1"; i++ {
		stepDown(t, admin)
		time.Sleep(300 * time.Millisecond)
	}
	if l := leaderOf(t, admin); l != "n1" {
		t.Logf("stream leader is %s, not n1: this run tests the failover of a follower", l)
	}
	c.Stop(0)
	for i := 0; i < 3; i++ {
		id := fmt.Sprint("after-failover-", i)
		if _, err := admin.Publish(ctx(t), sp, subj, []byte(id), id); err != nil {
			t.Fatalf("publish %d right after the leader's server stopped: %v", i, err)
		}
	}
	for i := 0; i < 3; i++ {
		d, ok := recv(t, sub, 20*time.Second)
		if !ok {
			t.Fatalf("message %d not received after failover (connected: %v)", i, rc.NATS().Status())
		}
		if want := fmt.Sprint("after-failover-", i); string(d.Body) != want {
			t.Fatalf("got %q, want %q", d.Body, want)
		}
	}
	if rc.NATS().Status() != nats.CONNECTED {
		t.Fatalf("status %v", rc.NATS().Status())
	}
}

func TestSubscribe_SinceDeliversRecentPast(t *testing.T) {
	c := natstest.Start(t)
	conn := connect(t, c)
	subj := MsgSubject("remaphore", DefaultChannel)
	if _, err := conn.Publish(ctx(t), spec(), subj, []byte("recent"), "id-recent"); err != nil {
		t.Fatal(err)
	}
	sub, err := conn.Subscribe(ctx(t), SubscribeOptions{Stream: spec(), Subject: subj, Since: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if d, ok := recv(t, sub, 5*time.Second); !ok || string(d.Body) != "recent" {
		t.Fatalf("got %q, %v", d.Body, ok)
	}
	if _, err := conn.Publish(ctx(t), spec(), subj, []byte("new"), "id-new"); err != nil {
		t.Fatal(err)
	}
	if d, ok := recv(t, sub, 5*time.Second); !ok || string(d.Body) != "new" {
		t.Fatalf("got %q, %v", d.Body, ok)
	}
}

// A receiver may read from a mirror of the stream (a leaf node's copy):
// it has no subjects of its own, but holds messages under theirs.
func TestSubscribe_FromMirror(t *testing.T) {
	c := natstest.Start(t)
	conn := connect(t, c)
	if _, err := conn.EnsureStream(ctx(t), spec()); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.JetStream().CreateStream(ctx(t), jetstream.StreamConfig{Name: "MIRROR", Mirror: &jetstream.StreamSource{Name: "REMAPHORE"}}); err != nil {
		t.Fatal(err)
	}
	msp := spec()
	msp.Name = "MIRROR"
	subj := MsgSubject("remaphore", DefaultChannel)
	sub, err := conn.Subscribe(ctx(t), SubscribeOptions{Stream: msp, Subject: subj})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if _, err := conn.Publish(ctx(t), spec(), subj, []byte("via mirror"), "id-m"); err != nil {
		t.Fatal(err)
	}
	d, ok := recv(t, sub, 10*time.Second)
	if !ok || string(d.Body) != "via mirror" || d.HeaderID != "id-m" {
		t.Fatalf("got %+v, %v", d, ok)
	}
}

func leaderOf(t *testing.T, c *Conn) string {
	st, err := c.JetStream().Stream(ctx(t), "REMAPHORE")
	if err != nil {
		return ""
	}
	if ci := st.CachedInfo().Cluster; ci != nil {
		return ci.Leader
	}
	return ""
}

// stepDown asks the stream's leader to step down, so another is elected.
func stepDown(t *testing.T, c *Conn) {
	if _, err := c.NATS().Request("$JS.API.STREAM.LEADER.STEPDOWN.REMAPHORE", nil, 5*time.Second); err != nil {
		t.Logf("step down: %v", err)
	}
}

// serverWithoutJetStream starts a server without JetStream and connects to it.
func serverWithoutJetStream(t *testing.T) (*server.Server, *Conn) {
	t.Helper()
	return startServer(t, &server.Options{})
}

// startServer starts a server with o (on a free loopback port, quiet) and
// connects to it, for the tests that need settings natstest does not make.
func startServer(t *testing.T, o *server.Options) (*server.Server, *Conn) {
	t.Helper()
	o.Host, o.Port, o.NoLog, o.NoSigs = "127.0.0.1", -1, true, true
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	t.Cleanup(s.Shutdown)
	conn, err := Connect(ctx(t), Options{Servers: []string{s.ClientURL()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	return s, conn
}

func TestPublish_NoJetStreamFailsAtOnce(t *testing.T) {
	_, conn := serverWithoutJetStream(t)
	start := time.Now()
	_, err := conn.Publish(ctx(t), spec(), MsgSubject("remaphore", "all"), []byte("x"), "1")
	if !errors.Is(err, ErrJetStream) || !strings.Contains(err.Error(), "no JetStream") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("took %v: a server without JetStream is not worth retrying", d)
	}
}

// placeReceiver subscribes through one server after another until the
// (R1) consumer is placed on the server the receiver is connected to
// (local) or on another (!local): placement is the cluster's choice. It
// returns the receiver's connection, its subscription and the index of
// the consumer's server.
func placeReceiver(t *testing.T, c *natstest.Cluster, o SubscribeOptions, local bool) (*Conn, *Subscription, int) {
	t.Helper()
	index := func(name string) int { // the server named name
		for i, s := range c.Servers {
			if s.Opts.ServerName == name {
				return i
			}
		}
		return -1
	}
	for attempt := 0; attempt < 15; attempt++ {
		i := attempt % len(c.Servers)
		urls := c.URLs()
		conn := connect(t, c, append(urls[i:], urls[:i]...)...) // server i first
		s, err := conn.Subscribe(ctx(t), o)
		if err != nil {
			t.Fatal(err)
		}
		info, err := conn.JetStream().Consumer(ctx(t), "REMAPHORE", s.ConsumerName())
		if err != nil {
			t.Fatal(err)
		}
		if ci := info.CachedInfo().Cluster; ci != nil && ci.Leader != "" && (index(ci.Leader) == i) == local {
			t.Cleanup(s.Close)
			return conn, s, index(ci.Leader)
		}
		s.Close()
		conn.Close()
	}
	t.Fatalf("no consumer placed as wanted (local %v) in 15 attempts", local)
	return nil, nil, 0
}

// The idle heartbeat is what notices a consumer lost while the receiver's
// own connection stays up: in a cluster, the server holding the (R1)
// consumer stops while the receiver is connected to another. Two missed
// heartbeats recreate the consumer from the next wanted sequence, and the
// message stored meanwhile arrives, without a reconnect. Such a consumer
// gets the short Heartbeat, not the long LocalHeartbeat.
func TestSubscribe_HeartbeatFindsConsumerLostOnAnotherServer(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	sp := spec()
	sp.Replicas = 3
	admin := connect(t, c)
	if _, err := admin.EnsureStream(ctx(t), sp); err != nil {
		t.Fatal(err)
	}
	subj := MsgSubject("remaphore", "all")
	rc, sub, host := placeReceiver(t, c, SubscribeOptions{Stream: sp, Subject: subj, Heartbeat: time.Second, LocalHeartbeat: MaxHeartbeat}, false)
	if hb := sub.Heartbeat(); hb != time.Second {
		t.Fatalf("a consumer on another server has heartbeat %v, want the short 1s", hb)
	}
	first := sub.ConsumerName()
	c.Stop(host)
	if _, err := admin.Publish(ctx(t), sp, subj, []byte("after the consumer's server stopped"), "id-lost"); err != nil {
		t.Fatal(err)
	}
	// Two missed heartbeats (2s), a new consumer (maybe after a stream
	// leader election): generous on a loaded machine.
	d, ok := recv(t, sub, 30*time.Second)
	if !ok || d.HeaderID != "id-lost" {
		t.Fatalf("message not received after the consumer's server stopped: %+v %v", d, ok)
	}
	if n := rc.NATS().Stats().Reconnects; n != 0 {
		t.Fatalf("the receiver reconnected %d times: this test is about a lost consumer on a live connection", n)
	}
	if sub.ConsumerName() == first {
		t.Fatalf("consumer %s was not recreated", first)
	}
}

// A consumer on the server the receiver is connected to gets the long
// LocalHeartbeat: losing that server is a disconnect, and the reconnect
// recreates the consumer long before two heartbeats (60s) could.
func TestSubscribe_LocalConsumerLostWithItsServer(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	sp := spec()
	sp.Replicas = 3
	admin := connect(t, c)
	if _, err := admin.EnsureStream(ctx(t), sp); err != nil {
		t.Fatal(err)
	}
	subj := MsgSubject("remaphore", "all")
	o := SubscribeOptions{Stream: sp, Subject: subj, Heartbeat: time.Second, LocalHeartbeat: MaxHeartbeat}
	rc, sub, host := placeReceiver(t, c, o, true)
	if hb := sub.Heartbeat(); hb != MaxHeartbeat {
		t.Fatalf("a consumer on the connected server has heartbeat %v, want the long %v", hb, MaxHeartbeat)
	}
	first := sub.ConsumerName()
	c.Stop(host)
	if _, err := admin.Publish(ctx(t), sp, subj, []byte("after the receiver's server stopped"), "id-local"); err != nil {
		t.Fatal(err)
	}
	d, ok := recv(t, sub, 25*time.Second)
	if !ok || d.HeaderID != "id-local" {
		t.Fatalf("message not received within 25s (< two 30s heartbeats) after the receiver's own server stopped: %+v %v", d, ok)
	}
	if rc.NATS().Stats().Reconnects == 0 || sub.ConsumerName() == first {
		t.Fatalf("reconnects %d, consumer %s (was %s): want a reconnect and a new consumer", rc.NATS().Stats().Reconnects, sub.ConsumerName(), first)
	}
}

// A heartbeat at the NATS client's maximum (the config's default for a
// waiting receiver) and ones outside the client's range (capped) still
// deliver: the pull expiry grows with the heartbeat, as the client
// requires. On a standalone server the consumer is local: LocalHeartbeat.
func TestSubscribe_LongHeartbeat(t *testing.T) {
	c := natstest.Start(t)
	conn := connect(t, c)
	subj := MsgSubject("remaphore", "all")
	for _, tc := range []struct{ hb, local, want time.Duration }{
		{MaxHeartbeat, 0, MaxHeartbeat},
		{time.Hour, 0, MaxHeartbeat},
		{time.Millisecond, 0, 500 * time.Millisecond},
		{5 * time.Second, MaxHeartbeat, MaxHeartbeat},
		{5 * time.Second, time.Second, 5 * time.Second}, // never shorter than Heartbeat
	} {
		sub, err := conn.Subscribe(ctx(t), SubscribeOptions{Stream: spec(), Subject: subj, Heartbeat: tc.hb, LocalHeartbeat: tc.local})
		if err != nil {
			t.Fatalf("heartbeat %v/%v: %v", tc.hb, tc.local, err)
		}
		if got := sub.Heartbeat(); got != tc.want {
			t.Fatalf("heartbeat %v, local %v: got %v, want %v", tc.hb, tc.local, got, tc.want)
		}
		id := fmt.Sprint("hb-", tc.hb, tc.local)
		if _, err := conn.Publish(ctx(t), spec(), subj, []byte(id), id); err != nil {
			t.Fatal(err)
		}
		if d, ok := recv(t, sub, 10*time.Second); !ok || d.HeaderID != id {
			t.Fatalf("heartbeat %v/%v: got %+v %v", tc.hb, tc.local, d, ok)
		}
		sub.Close()
	}
	if got := pullExpiry(MaxHeartbeat); got < 2*MaxHeartbeat {
		t.Fatalf("pull expiry %v for a %v heartbeat: the client requires at least two heartbeats per pull", got, MaxHeartbeat)
	}
}
