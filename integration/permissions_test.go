package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/remaphore/remaphore/internal/natstest"
	"github.com/remaphore/remaphore/transport"
)

// authTemplate is the least-privilege layout the compose harness and the
// README use; these tests run it unchanged.
const authTemplate = "compose/auth.conf.tmpl"

// permsMaxConsumers is the account's JetStream consumer cap in these
// tests: room for the auditor, two receivers and a requester at once.
const permsMaxConsumers = 8

// permsAuditConsumer is the auditor's durable consumer (-name), which the
// layout denies to every host by name.
const permsAuditConsumer = "audit-perms"

// permsExtra is what every config of these tests adds: the stream's own
// consumer limit may not exceed the account's (the server refuses to
// create it otherwise).
var permsExtra = fmt.Sprintf("max_consumers: %d\n", permsMaxConsumers)

// role is one user line of the template: an nkey user and the permission
// set ($RECEIVER, $SENDER, $SENDER_RECEIVER, $AUDITOR) it gets.
type role struct {
	perms string
	user  natstest.User
}

// authConf renders the template with one user per role.
func authConf(t *testing.T, roles ...role) string {
	t.Helper()
	tmpl, err := os.ReadFile(authTemplate)
	if err != nil {
		t.Fatal(err)
	}
	l := natstest.Layout{MaxConsumers: permsMaxConsumers, MaxFile: "1GB", MaxConnections: 100, AuditConsumer: permsAuditConsumer}
	for _, r := range roles {
		l.Users = append(l.Users, natstest.UserLine(r.user.Public, r.perms))
	}
	return l.Render(string(tmpl))
}

// permsBed is a server running the template, and the users of each role.
type permsBed struct {
	srv                                *natstest.Server
	dir                                string
	auditor, sender, recvA, recvB, hub natstest.User
}

func newPermsBed(t *testing.T) *permsBed {
	t.Helper()
	dir := t.TempDir()
	b := &permsBed{dir: dir,
		auditor: natstest.NewUser(t, dir), sender: natstest.NewUser(t, dir),
		recvA: natstest.NewUser(t, dir), recvB: natstest.NewUser(t, dir), hub: natstest.NewUser(t, dir)}
	b.srv = natstest.StartConfig(t, authConf(t,
		role{"AUDITOR", b.auditor}, role{"SENDER", b.sender},
		role{"RECEIVER", b.recvA}, role{"RECEIVER", b.recvB}, role{"SENDER_RECEIVER", b.hub}))
	return b
}

// natsClient is a raw nats.go connection with the credentials of one
// user; errs receives the server's asynchronous errors (permission
// violations).
type natsClient struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	errs chan error
}

func (b *permsBed) dial(t *testing.T, u natstest.User) *natsClient {
	t.Helper()
	opt, err := nats.NkeyOptionFromSeed(u.SeedFile)
	if err != nil {
		t.Fatal(err)
	}
	c := &natsClient{errs: make(chan error, 64)}
	c.nc, err = nats.Connect(b.srv.URL, opt, nats.Name("permissions-test"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case c.errs <- err:
			default:
			}
		}))
	if err != nil {
		t.Fatalf("connect as %s: %v", u.Public, err)
	}
	t.Cleanup(c.nc.Close)
	if c.js, err = jetstream.New(c.nc); err != nil {
		t.Fatal(err)
	}
	return c
}

// refused runs do and waits for the server's permissions violation on
// subject.
func (c *natsClient) refused(t *testing.T, what, subject string, do func()) {
	t.Helper()
	for len(c.errs) > 0 {
		<-c.errs
	}
	do()
	want := fmt.Sprintf("Permissions Violation for Publish to %q", subject)
	deadline := time.After(10 * time.Second)
	for {
		select {
		case err := <-c.errs:
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), want) {
				return
			}
			t.Logf("%s: other async error: %v", what, err)
		case <-deadline:
			t.Errorf("%s: the server did not refuse it (no %s within 10s)", what, want)
			return
		}
	}
}

// publishRaw publishes on subject and flushes, so that a refusal comes
// back before the next step.
func (c *natsClient) publishRaw(t *testing.T, subject string, body []byte) {
	t.Helper()
	if err := c.nc.Publish(subject, body); err != nil {
		t.Fatalf("publish %s: %v", subject, err)
	}
	if err := c.nc.FlushTimeout(5 * time.Second); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

// request sends an API request without waiting for an answer (the server
// refuses it: none comes).
func (c *natsClient) request(t *testing.T, subject string, body string) {
	t.Helper()
	if err := c.nc.PublishRequest(subject, c.nc.NewRespInbox(), []byte(body)); err != nil {
		t.Fatalf("publish %s: %v", subject, err)
	}
	if err := c.nc.FlushTimeout(5 * time.Second); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

// auditConf writes the auditor's config: every host is a peer, the
// database in dir.
func (b *permsBed) auditConf(t *testing.T, peers ...peer) (path, db string) {
	t.Helper()
	db = filepath.Join(b.dir, "audit.db")
	text := "audit_db: " + db + "\n" + conf{servers: []string{b.srv.URL}, creds: b.auditor.SeedFile, dest: "com.test.audit", extra: permsExtra, peers: peers}.text()
	path = filepath.Join(b.dir, "audit.conf")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, db
}

// auditRecord is the part of a `remaphore-audit query -json` line these
// tests look at.
type auditRecord struct {
	Seq     uint64 `json:"seq"`
	Verdict string `json:"verdict"`
	Reason  string `json:"reason"`
	UUID    string `json:"uuid"`
}

// auditQuery runs remaphore-audit query -json args and parses its lines.
func auditQuery(t *testing.T, cfg string, args ...string) []auditRecord {
	t.Helper()
	p := startBinary(t, auditBinary(t), "audit-query", append([]string{"query", "-c", cfg, "-json"}, args...)...)
	if code := p.wait(t, procBound+5*time.Second); code != exitOK {
		t.Fatalf("remaphore-audit query exited %d\n%s", code, p.describe())
	}
	var recs []auditRecord
	for _, l := range strings.Split(strings.TrimSpace(p.stdout.String()), "\n") {
		if l == "" {
			continue
		}
		var r auditRecord
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("query line %q: %v", l, err)
		}
		recs = append(recs, r)
	}
	return recs
}

// The least-privilege layout (integration/compose/auth.conf.tmpl) lets
// every role do its part: the auditor creates the stream and records
// everything, a sender sends and requests, receivers wait and answer. And
// it refuses what a role must not do, whatever client is used.
func TestPermissionsLayout(t *testing.T) {
	b := newPermsBed(t)
	sender := newNode(t, "com.test.uploader")
	recvA := newNode(t, "com.test.dl.a")
	recvB := newNode(t, "com.test.dl.b")
	hub := newNode(t, "com.test.hub") // sends and waits
	sendCfg := writeConf(t, b.dir, "sender", conf{
		servers: []string{b.srv.URL}, creds: b.sender.SeedFile, dest: sender.dest, extra: permsExtra,
		identities: []identity{{key: sender.key, verbs: "*"}},
		peers:      []peer{peerOf(recvA, "*"), peerOf(recvB, "*")},
	})
	recvCfg := func(n node, u natstest.User) string {
		return writeConf(t, b.dir, strings.ReplaceAll(n.dest, ".", "_"), conf{
			servers: []string{b.srv.URL}, creds: u.SeedFile, dest: n.dest, extra: permsExtra,
			identities: []identity{{key: n.key, verbs: "*"}},
			peers:      []peer{peerOf(sender, "*")},
		})
	}
	cfgA, cfgB, cfgHub := recvCfg(recvA, b.recvA), recvCfg(recvB, b.recvB), recvCfg(hub, b.hub)
	auditCfg, _ := b.auditConf(t, peerOf(sender, "*"), peerOf(recvA, "*"), peerOf(recvB, "*"), peerOf(hub, "*"))
	script := writeScript(t, b.dir, "echo.sh", `echo "$REMAPHORE_DESTMATCH got $2"`+"\n")

	// Only the auditor may create the stream. A sender before it fails at
	// once and says so; a receiver started first logs the refusal and
	// keeps trying, and listens once the auditor has created the stream.
	early := start(t, "receiver-before-the-stream", "-c", cfgB, "-u", "hello", "-t", "40s", "-log", "info", script)
	early.waitFor(t, `Permissions Violation for Publish to \"$JS.API.STREAM.CREATE.REMAPHORE\"`, readyWithin)
	s0 := run(t, "sender-before-the-stream", "-c", sendCfg, "-s", "-u", "too-early", "payload zero")
	if expectCode(t, s0, s0.code, exitNATS) {
		expectStderr(t, s0, "may not publish on $JS.API.STREAM.CREATE.REMAPHORE")
		expectStderr(t, s0, "stream REMAPHORE does not exist yet, and only the auditor or an admin creates it")
	}

	aud := startBinary(t, auditBinary(t), "auditor", "run", "-c", auditCfg, "-name", permsAuditConsumer, "-log", "info")
	aud.waitFor(t, "msg=ready", readyWithin)
	early.waitReady(t)

	t.Run("send", func(t *testing.T) {
		r := start(t, "receiver-a", "-c", cfgA, "-u", "hello", "-t", "30s", "-log", "info", script)
		h := start(t, "hub-waits", "-c", cfgHub, "-u", "hello", "-t", "30s", "-log", "info", script)
		r.waitReady(t)
		h.waitReady(t)
		s := run(t, "sender", "-c", sendCfg, "-s", "-u", "hello", "payload one")
		expectCode(t, s, s.code, exitOK)
		for _, p := range []struct {
			p    *proc
			dest string
		}{{r, recvA.dest}, {h, hub.dest}, {early, recvB.dest}} {
			if expectCode(t, p.p, p.p.wait(t, 40*time.Second), exitOK) {
				if got, want := p.p.stdout.String(), p.dest+" got payload one\n"; got != want {
					t.Errorf("%s's script printed %q, want %q", p.p.name, got, want)
				}
			}
		}
		// The host of both roles sends too.
		hs := run(t, "hub-sends", "-c", cfgHub, "-s", "-u", "from-hub", "-D", "com.test.nowhere", "hub payload")
		expectCode(t, hs, hs.code, exitOK)
	})

	t.Run("request", func(t *testing.T) {
		ra := start(t, "responder-a", "-c", cfgA, "-o", "-t", "30s", "-log", "info", script)
		rb := start(t, "responder-b", "-c", cfgB, "-o", "-t", "30s", "-log", "info", script)
		ra.waitReady(t)
		rb.waitReady(t)
		q := run(t, "requester", "-c", sendCfg, "-r", "-t", "20s", "-u", "req-1", "-D", "com.test.dl.*", "status")
		if expectCode(t, q, q.code, exitOK) {
			expectRecords(t, q, []record{
				{dest: recvA.dest, output: recvA.dest + " got status"},
				{dest: recvB.dest, output: recvB.dest + " got status"},
			})
		}
		expectCode(t, ra, ra.wait(t, 10*time.Second), exitOK)
		expectCode(t, rb, rb.wait(t, 10*time.Second), exitOK)
	})

	t.Run("auditor-records", func(t *testing.T) {
		// The message, the request and its two replies, all accepted.
		want := map[string]int{"hello": 1, "req-1": 3, "from-hub": 1}
		deadline := time.Now().Add(30 * time.Second)
		for {
			got := map[string]int{}
			for _, r := range auditQuery(t, auditCfg) {
				if r.Verdict == "accepted" {
					got[r.UUID]++
				}
			}
			if fmt.Sprint(got) == fmt.Sprint(want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the auditor holds %v accepted records by uuid, want %v\n%s", got, want, aud.describe())
			}
			time.Sleep(200 * time.Millisecond)
		}
	})

	// A waiting host's credentials cannot store a message: remaphore
	// itself fails at once with exit 3 and names the refusal.
	t.Run("receiver-cannot-send", func(t *testing.T) {
		for _, mode := range []struct {
			args []string
			err  string
		}{
			{[]string{"-s"}, "may not publish on remaphore.msg.all"},
			// A requester reads replies first: refused before it sends.
			{[]string{"-r", "-t", "10s", "-D", "com.test.uploader"}, "may not publish on the consumer API for remaphore.reply."},
		} {
			args := append([]string{"-c", cfgA}, mode.args...)
			p := run(t, "receiver-sends"+mode.args[0], append(args, "-u", "forged", "rm -rf /")...)
			if expectCode(t, p, p.code, exitNATS) {
				expectStderr(t, p, mode.err)
				if p.elapsed > 8*time.Second {
					t.Errorf("%s took %v: a refusal must not be retried until the timeout", p.name, p.elapsed)
				}
			}
		}
	})

	t.Run("raw-refusals", func(t *testing.T) {
		admin := b.dial(t, b.auditor)
		env := message(t, recvA.key, channel, nil)
		recv, snd := b.dial(t, b.recvA), b.dial(t, b.sender)
		// Receipts (receipts: true): a receiver publishes them.
		receiptSubj := transport.ReceiptSubject(root, strings.Repeat("ab", 32))
		if _, err := recv.js.PublishMsg(ctxFor(t, 10*time.Second), &nats.Msg{Subject: receiptSubj, Data: []byte("receipt"),
			Header: nats.Header{jetstream.MsgIDHeader: []string{"receipt-perm-check"}}}); err != nil {
			t.Errorf("a receiver publishes a receipt: %v", err)
		}
		before := lastSeqOf(t, admin.js)

		msgSubj := transport.MsgSubject(root, channel)
		recv.refused(t, "a receiver publishes a message", msgSubj, func() { recv.publishRaw(t, msgSubj, env.Body()) })
		recv.refused(t, "a receiver publishes on another channel", transport.MsgSubject(root, "deploys"),
			func() { recv.publishRaw(t, transport.MsgSubject(root, "deploys"), env.Body()) })
		admin.refused(t, "the auditor publishes a message", msgSubj, func() { admin.publishRaw(t, msgSubj, env.Body()) })
		// Replies: only receivers answer requests.
		reply := transport.ReplySubject(root, strings.Repeat("ab", 32))
		snd.refused(t, "a sender publishes a reply", reply, func() { snd.publishRaw(t, reply, env.Body()) })
		// Receipts: senders may not publish them (receivers may, above).
		snd.refused(t, "a sender publishes a receipt", receiptSubj, func() { snd.publishRaw(t, receiptSubj, env.Body()) })
		// Outside the stream's subjects: other hosts' inboxes (a forged
		// PubAck or API answer), the root itself.
		recv.refused(t, "a receiver publishes to an inbox", "_INBOX.x.y", func() { recv.publishRaw(t, "_INBOX.x.y", []byte("+OK")) })
		snd.refused(t, "a sender publishes under the root", root+".other", func() { snd.publishRaw(t, root+".other", env.Body()) })

		// The stream's administration: nobody but the auditor creates it,
		// and nobody deletes, purges or edits it.
		for _, c := range []struct {
			who  string
			cl   *natsClient
			subj string
		}{
			{"a receiver", recv, "$JS.API.STREAM.CREATE.REMAPHORE"},
			{"a sender", snd, "$JS.API.STREAM.CREATE.REMAPHORE"},
			{"a receiver", recv, "$JS.API.STREAM.DELETE.REMAPHORE"},
			{"a sender", snd, "$JS.API.STREAM.PURGE.REMAPHORE"},
			{"a sender", snd, "$JS.API.STREAM.UPDATE.REMAPHORE"},
			{"the auditor", admin, "$JS.API.STREAM.DELETE.REMAPHORE"},
			{"the auditor", admin, "$JS.API.STREAM.PURGE.REMAPHORE"},
			{"the auditor", admin, "$JS.API.STREAM.MSG.DELETE.REMAPHORE"},
			{"a receiver", recv, "$JS.API.STREAM.CREATE.OTHER"},
		} {
			c.cl.refused(t, c.who+" calls "+c.subj, c.subj, func() { c.cl.request(t, c.subj, `{"name":"REMAPHORE"}`) })
		}

		// Reading: a receiver reads messages, never replies (script
		// output), not even by naming an allowed filter in the subject
		// and another in the request.
		replyFilter := root + ".reply.*"
		sub := "$JS.API.CONSUMER.CREATE.REMAPHORE.snoop." + replyFilter
		recv.refused(t, "a receiver creates a consumer on replies", sub, func() {
			_, _ = recv.js.CreateConsumer(ctxFor(t, 3*time.Second), "REMAPHORE", jetstream.ConsumerConfig{Name: "snoop", FilterSubject: replyFilter})
		})
		body, _ := json.Marshal(map[string]any{"stream_name": "REMAPHORE", "config": map[string]any{"name": "snoop", "filter_subject": root + ".>", "ack_policy": "none"}})
		m, err := recv.nc.Request("$JS.API.CONSUMER.CREATE.REMAPHORE.snoop."+msgSubj, body, 5*time.Second)
		if err != nil {
			t.Errorf("consumer create with a mismatched filter: no answer: %v", err)
		} else if !strings.Contains(string(m.Data), `"error"`) {
			t.Errorf("the server created a consumer whose filter %s.> differs from the subject's %s: %s", root, msgSubj, m.Data)
		}

		if after := lastSeqOf(t, admin.js); after != before {
			t.Errorf("the stream went from seq %d to %d: a refused publish was stored", before, after)
		}
	})

	// A receiver may create consumers (filtered to messages) with any
	// settings, push consumers too. One that delivers into the JetStream
	// API does nothing there: the server ignores API requests that do not
	// come from a client, so it is no way around the permissions.
	t.Run("push-consumer-into-the-api", func(t *testing.T) {
		admin, recv := b.dial(t, b.auditor), b.dial(t, b.recvA)
		before := lastSeqOf(t, admin.js)
		for i, api := range []string{"$JS.API.STREAM.DELETE.REMAPHORE", "$JS.API.STREAM.PURGE.REMAPHORE"} {
			name := fmt.Sprintf("push-%d", i)
			_, err := recv.js.CreateConsumer(ctxFor(t, 5*time.Second), "REMAPHORE", jetstream.ConsumerConfig{
				Name: name, FilterSubject: transport.MsgSubject(root, channel), DeliverSubject: api,
			})
			if err != nil {
				t.Logf("push consumer delivering to %s refused: %v", api, err)
				continue
			}
			t.Cleanup(func() { _ = recv.js.DeleteConsumer(ctxFor(t, 5*time.Second), "REMAPHORE", name) })
		}
		// Deliveries would happen at once; give them time on a slow machine.
		time.Sleep(2 * time.Second)
		st, err := admin.js.Stream(ctxFor(t, 10*time.Second), transport.StreamName(root))
		if err != nil {
			t.Fatalf("the stream is gone: %v", err)
		}
		if s := st.CachedInfo().State; s.LastSeq != before || s.Msgs != before {
			t.Errorf("the stream changed: %d messages up to seq %d, want %d up to %d", s.Msgs, s.LastSeq, before, before)
		}
	})

	// Consumer names are not predictable, so hosts may pull from and
	// delete any consumer of the stream, except the auditor's, named with
	// -name and denied to them by name: a host's credentials pulling from
	// it would take messages the auditor must record. A receiver's
	// credentials trying to steal from it, delete it or take its name
	// while a sender sends are refused, and the audit trail holds
	// everything sent.
	t.Run("steal-from-the-auditor", func(t *testing.T) {
		thief, snd := b.dial(t, b.recvA), b.dial(t, b.sender)
		next := "$JS.API.CONSUMER.MSG.NEXT.REMAPHORE." + permsAuditConsumer
		del := "$JS.API.CONSUMER.DELETE.REMAPHORE." + permsAuditConsumer
		create := "$JS.API.CONSUMER.CREATE.REMAPHORE." + permsAuditConsumer + "." + transport.MsgSubject(root, channel)
		thief.refused(t, "a receiver pulls from the auditor's consumer", next, func() { thief.request(t, next, `{"batch":10}`) })
		snd.refused(t, "a sender pulls from the auditor's consumer", next, func() { snd.request(t, next, `{"batch":10}`) })
		thief.refused(t, "a receiver deletes the auditor's consumer", del, func() { thief.request(t, del, "") })
		thief.refused(t, "a receiver creates a consumer with the auditor's name", create, func() {
			_, _ = thief.js.CreateConsumer(ctxFor(t, 3*time.Second), "REMAPHORE", jetstream.ConsumerConfig{
				Name: permsAuditConsumer, FilterSubject: transport.MsgSubject(root, channel)})
		})

		stop := make(chan struct{})
		stolen := make(chan int, 1)
		go func() {
			n := 0
			defer func() { stolen <- n }()
			for {
				select {
				case <-stop:
					return
				default:
				}
				msg, err := thief.nc.Request(next, []byte(`{"batch":1,"expires":200000000}`), 250*time.Millisecond)
				if err == nil && msg.Header.Get("Status") == "" && len(msg.Data) > 0 {
					n++
				}
			}
		}()
		const sends = 10
		want := map[string]int{}
		for i := 1; i <= sends; i++ {
			uuid := fmt.Sprintf("robbed-%d", i)
			want[uuid] = 1
			s := run(t, "sender-robbed", "-c", sendCfg, "-s", "-u", uuid, "-D", "com.test.nowhere", "x")
			expectCode(t, s, s.code, exitOK)
		}
		close(stop)
		if n := <-stolen; n != 0 {
			t.Errorf("a receiver's credentials pulled %d messages from the auditor's consumer", n)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			got := map[string]int{}
			for _, r := range auditQuery(t, auditCfg) {
				if r.Verdict == "accepted" && want[r.UUID] > 0 {
					got[r.UUID]++
				}
			}
			if fmt.Sprint(got) == fmt.Sprint(want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the auditor holds %v accepted records by uuid, want %v\n%s", got, want, aud.describe())
			}
			time.Sleep(200 * time.Millisecond)
		}
	})

	// The account's JetStream limits apply to every user of it: a
	// receiver's credentials creating consumers in a loop stop at the
	// account's cap instead of exhausting the server.
	t.Run("account-consumer-cap", func(t *testing.T) {
		recv := b.dial(t, b.recvB)
		var made []string
		defer func() {
			for _, n := range made {
				_ = recv.js.DeleteConsumer(ctxFor(t, 5*time.Second), "REMAPHORE", n)
			}
		}()
		for i := 0; ; i++ {
			if i > permsMaxConsumers {
				t.Fatalf("created %d consumers; the account allows %d", i, permsMaxConsumers)
			}
			name := fmt.Sprintf("flood-%d", i)
			_, err := recv.js.CreateConsumer(ctxFor(t, 5*time.Second), "REMAPHORE", jetstream.ConsumerConfig{
				Name: name, FilterSubject: transport.MsgSubject(root, channel), InactiveThreshold: time.Minute,
			})
			if err == nil {
				made = append(made, name)
				continue
			}
			if !errors.Is(err, jetstream.ErrMaximumConsumersLimit) {
				t.Fatalf("consumer %d: %v, want the account's maximum consumers limit", i, err)
			}
			break
		}
	})

	aud.cmd.Process.Signal(os.Interrupt)
	if code := aud.wait(t, 20*time.Second); code != exitOK {
		t.Errorf("the auditor exited %d\n%s", code, aud.describe())
	}
	if strings.Contains(aud.stderr.String(), "Permissions Violation") {
		t.Errorf("the auditor ran into a permissions violation: its role lacks a subject\n%s", aud.describe())
	}
}

func lastSeqOf(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, transport.StreamName(root))
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	return st.CachedInfo().State.LastSeq
}
