package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/remaphore/remaphore/audit"
	"github.com/remaphore/remaphore/audit/ingest"
	"github.com/remaphore/remaphore/internal/natstest"
)

func (e *env) consumerInfo(t *testing.T, name string) *jetstream.ConsumerInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := e.conn.JetStream().Consumer(ctx, "REMAPHORE", name)
	if err != nil {
		return nil
	}
	info, err := c.Info(ctx)
	if err != nil {
		return nil
	}
	return info
}

func (e *env) waitConsumerAck(t *testing.T, p *proc, name string, seq uint64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if info := e.consumerInfo(t, name); info != nil && info.AckFloor.Stream >= seq {
			return
		}
		select {
		case <-p.Done():
			t.Fatalf("auditor exited %d\n%s", p.Code, p.Stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer %s never acked seq %d\n%s", name, seq, p.Stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func stored(t *testing.T, db string) []uint64 {
	t.Helper()
	s, err := audit.Open(db, audit.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var seqs []uint64
	s.Query(audit.Query{}, func(r *audit.Record) error { seqs = append(seqs, r.Seq); return nil })
	return seqs
}

// Issue 19 item 3: a second auditor with a file of its own runs beside the
// first with no extra flag: each has a consumer named after its host and
// file, both record everything, neither disturbs the other.
func TestTwoAuditorsSideBySide(t *testing.T) {
	e := newEnv(t)
	other := filepath.Join(t.TempDir(), "other.db")
	a := start(t, "run", "-c", e.conf)
	e.waitReady(t, a)
	b := start(t, "run", "-c", e.conf, "-db", other)
	e.waitReady(t, b)
	na, nb := ingest.DefaultConsumerName(e.db), ingest.DefaultConsumerName(other)
	if na == nb || !regexp.MustCompile(`^remaphore-audit-[A-Za-z0-9_-]+-[0-9a-f]{10}$`).MatchString(na) {
		t.Fatalf("consumer names %q and %q", na, nb)
	}
	for i := range 50 {
		e.send(t, e.alice, []byte(fmt.Sprintf("m%d", i)))
	}
	e.waitConsumerAck(t, a, na, 50)
	e.waitConsumerAck(t, b, nb, 50)
	// Stopping one leaves the other's consumer alone.
	a.Cmd.Process.Signal(syscall.SIGTERM)
	if code := a.Wait(t, 20*time.Second); code != 0 {
		t.Fatalf("first auditor exit %d\n%s", code, a.Stderr.String())
	}
	for i := range 10 {
		e.send(t, e.alice, []byte(fmt.Sprintf("n%d", i)))
	}
	e.waitConsumerAck(t, b, nb, 60)
	b.Cmd.Process.Signal(syscall.SIGTERM)
	if code := b.Wait(t, 20*time.Second); code != 0 {
		t.Fatalf("second auditor exit %d\n%s", code, b.Stderr.String())
	}
	for _, p := range []*proc{a, b} {
		if s := p.Stderr.String(); strings.Contains(s, "level=WARN") || strings.Contains(s, "level=ERROR") {
			t.Errorf("an auditor disturbed:\n%s", s)
		}
	}
	if got := stored(t, e.db); len(got) != 50 {
		t.Errorf("first auditor stored %d, want 50", len(got))
	}
	if got := stored(t, other); len(got) != 60 {
		t.Errorf("second auditor stored %d, want 60", len(got))
	}
	host, _ := os.Hostname()
	for name, db := range map[string]string{na: e.db, nb: other} {
		info := e.consumerInfo(t, name)
		if info == nil {
			t.Fatalf("consumer %s is gone", name)
		}
		md := info.Config.Metadata
		if md["remaphore-audit-db"] != db || md["remaphore-audit-host"] != host || len(md["remaphore-audit-owner"]) != 32 ||
			info.Config.InactiveThreshold != ingest.ConsumerIdle {
			t.Errorf("consumer %s: metadata %v, inactive threshold %s", name, md, info.Config.InactiveThreshold)
		}
	}
}

// Issue 19 item 3: an auditor told to use the consumer of another, live
// auditor says so, with the flag to use, exit 2, and leaves it alone.
func TestConsumerNameTakenByALiveAuditor(t *testing.T) {
	e := newEnv(t)
	a := start(t, "run", "-c", e.conf)
	e.waitReady(t, a)
	na := ingest.DefaultConsumerName(e.db)
	before := e.consumerInfo(t, na)
	other := filepath.Join(t.TempDir(), "other.db")
	b := run(t, "run", "-c", e.conf, "-db", other, "-name", na)
	host, _ := os.Hostname()
	want := regexp.QuoteMeta("remaphore-audit: error: consumer name taken: consumer "+na+" on stream REMAPHORE was not created by this auditor "+
		"(the auditor of "+e.db+" on host "+host+"; ") + `(in use: a fetch is waiting on it now|in use: it delivered a message \d+s ago|no fetch waiting on it now)` +
		regexp.QuoteMeta("): it is left as it is; run this auditor under a name of its own with -name NAME (without -name each database file gets its own, "+
			ingest.DefaultConsumerName(other)+"), or, if nothing uses that consumer any more, delete it (nats consumer rm REMAPHORE "+na+") and start again\n")
	if b.Code != 2 || !regexp.MustCompile(`\n`+want+`$`).MatchString("\n"+b.Stderr.String()) {
		t.Fatalf("exit %d, stderr:\n%s\nwant:\n%s", b.Code, b.Stderr.String(), want)
	}
	after := e.consumerInfo(t, na)
	if after == nil || !after.Created.Equal(before.Created) {
		t.Fatal("the live auditor's consumer was deleted or re-created")
	}
	e.send(t, e.alice, []byte("still recorded"))
	e.waitConsumerAck(t, a, na, 1)
}

// Issue 19 item 3, upgrade: a consumer under the old default name
// (remaphore-audit, no owner tag) is never touched; the upgraded auditor
// reads through its own consumer from where its database stops, so that
// nothing is lost or stored twice, and says how to remove the old one.
func TestUpgradeFromTheOldConsumerName(t *testing.T) {
	e := newEnv(t)
	for i := range 10 {
		e.send(t, e.alice, []byte(fmt.Sprintf("m%d", i)))
	}
	a := start(t, "run", "-c", e.conf)
	e.waitReady(t, a)
	e.waitAckFloor(t, a, 10, time.Minute)
	a.Cmd.Process.Signal(syscall.SIGTERM)
	a.Wait(t, 20*time.Second)
	// As an older auditor left it: its consumer under the old name, at
	// the database's position; the new name has no consumer yet.
	ctx := context.Background()
	st, _ := e.conn.JetStream().Stream(ctx, "REMAPHORE")
	if err := st.DeleteConsumer(ctx, ingest.DefaultConsumerName(e.db)); err != nil {
		t.Fatal(err)
	}
	legacy, err := st.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: ingest.LegacyConsumer, AckPolicy: jetstream.AckAllPolicy,
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: 11, FilterSubject: "remaphore.>"})
	if err != nil {
		t.Fatal(err)
	}
	created := legacy.CachedInfo().Created
	for i := range 10 {
		e.send(t, e.alice, []byte(fmt.Sprintf("n%d", i)))
	}
	b := start(t, "run", "-c", e.conf)
	e.waitReady(t, b)
	e.waitAckFloor(t, b, 20, time.Minute)
	b.Cmd.Process.Signal(syscall.SIGTERM)
	b.Wait(t, 20*time.Second)
	if !strings.Contains(b.Stderr.String(), `level=WARN msg="a consumer under the old default name exists; this auditor reads through its own consumer from where its database stops, and leaves the old one as it is: delete it once no older auditor uses it" old_consumer=remaphore-audit consumer=`+ingest.DefaultConsumerName(e.db)+` command="nats consumer rm REMAPHORE remaphore-audit"`) {
		t.Errorf("no word on the old consumer:\n%s", b.Stderr.String())
	}
	got := stored(t, e.db)
	if len(got) != 20 || got[0] != 1 || got[19] != 20 {
		t.Fatalf("stored %v, want 1..20 once each", got)
	}
	if info := e.consumerInfo(t, ingest.LegacyConsumer); info == nil || !info.Created.Equal(created) || info.Delivered.Consumer != 0 {
		t.Fatalf("the old consumer was touched: %+v", info)
	}
	// Told to use the old name itself, it refuses: it did not create it.
	c := run(t, "run", "-c", e.conf, "-name", ingest.LegacyConsumer)
	if c.Code != 2 || !strings.Contains(c.Stderr.String(), "remaphore-audit: error: consumer name taken: consumer remaphore-audit on stream REMAPHORE was not created by this auditor (no owner tag: made by an older remaphore-audit (whose default name was remaphore-audit) or by hand; ") {
		t.Fatalf("-name remaphore-audit: exit %d\n%s", c.Code, c.Stderr.String())
	}
}

// Issue 19 item 4: a server without JetStream fails the auditor at once
// with the sender's words, exit 3.
func TestRunWithoutJetStream(t *testing.T) {
	dir := t.TempDir()
	user := natstest.NewUser(t, dir)
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		Nkeys: []*server.NkeyUser{{Nkey: user.Public}}})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	t.Cleanup(s.Shutdown)
	conf := filepath.Join(dir, "a.conf")
	os.WriteFile(conf, []byte("server: "+s.ClientURL()+"\ncredentials: "+user.SeedFile+"\ndestination: com.example.audit\naudit_db: a.db\n"), 0o600)
	begin := time.Now()
	p := run(t, "run", "-c", conf, "-log", "error")
	if d := time.Since(begin); d > 10*time.Second {
		t.Errorf("took %s to fail", d)
	}
	want := "remaphore-audit: error: jetstream error: " + s.ClientURL() + " has no JetStream for this account (enable jetstream in the server's config): nats: no responders available for request\n"
	if p.Code != 3 || p.Stderr.String() != want {
		t.Fatalf("exit %d, stderr:\n%s\nwant:\n%s", p.Code, p.Stderr.String(), want)
	}
}
