package transport

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/remaphore/remaphore/internal/natstest"
	"github.com/remaphore/remaphore/internal/proctest"
)

// strictSpec is the stream a config with allow_skew 5s describes.
func strictSpec() StreamSpec {
	s := spec()
	s.MaxMsgSize = 1<<20 + 8192
	s.MaxBytes = 1 << 30
	s.MinDuplicates = MinDuplicateWindow(5 * time.Second)
	return s
}

// TestEnsureStream_Weak: a stream set up in advance with weaker settings
// (issue 14.4) is refused, naming the setting and the command that fixes
// it; the send path refuses it before storing anything.
func TestEnsureStream_Weak(t *testing.T) {
	base := func() jetstream.StreamConfig {
		return jetstream.StreamConfig{Name: "REMAPHORE", Subjects: []string{"remaphore.>"},
			Duplicates: 2 * time.Minute, MaxMsgSize: 1<<20 + 8192}
	}
	for _, tc := range []struct {
		name    string
		edit    func(*jetstream.StreamConfig)
		kind    error
		setting string
		msg     string
		fix     string
	}{
		{"1s duplicate window", func(c *jetstream.StreamConfig) { c.Duplicates = time.Second }, ErrStreamWeak, "duplicate_window",
			"stream settings too weak: stream REMAPHORE: duplicate window 1s is shorter than allow_skew needs (1m10s = 2*allow_skew + 1m): a captured message published again after 1s would be stored and delivered again",
			"nats stream edit REMAPHORE --dupe-window 2m0s"},
		{"unlimited message size", func(c *jetstream.StreamConfig) { c.MaxMsgSize = 0 }, ErrStreamWeak, "max_msg_size",
			"stream settings too weak: stream REMAPHORE: message size limit is unlimited, more than the 1056768 bytes a remaphore message can be: anyone who may publish can fill it with larger junk",
			"nats stream edit REMAPHORE --max-msg-size 1056768"},
		{"larger message size", func(c *jetstream.StreamConfig) { c.MaxMsgSize = 8 << 20 }, ErrStreamWeak, "max_msg_size",
			"stream settings too weak: stream REMAPHORE: message size limit is 8388608 bytes, more than the 1056768 bytes a remaphore message can be: anyone who may publish can fill it with larger junk",
			"nats stream edit REMAPHORE --max-msg-size 1056768"},
		{"other subjects", func(c *jetstream.StreamConfig) { c.Subjects = []string{"remaphore.msg.all"} }, ErrStreamMismatch, "subjects",
			"stream does not match: stream REMAPHORE: captures [remaphore.msg.all], not remaphore.>",
			"set stream: in the config to another name, or add the subjects: nats stream edit REMAPHORE --subjects 'remaphore.>'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := natstest.Start(t)
			conn := connect(t, c)
			cfg := base()
			tc.edit(&cfg)
			if _, err := conn.JetStream().CreateStream(ctx(t), cfg); err != nil {
				t.Fatal(err)
			}
			_, err := conn.EnsureStream(ctx(t), strictSpec())
			var se *StreamError
			if !errors.Is(err, tc.kind) || !errors.As(err, &se) {
				t.Fatalf("err = %v, want %v", err, tc.kind)
			}
			if err.Error() != tc.msg || se.Fix != tc.fix || se.Setting != tc.setting {
				t.Fatalf("error\n %q\nwant\n %q\nfix %q, want %q", err, tc.msg, se.Fix, tc.fix)
			}
			// A fresh connection's first publish refuses it too, and
			// stores nothing.
			conn2 := connect(t, c)
			if _, err := conn2.Publish(ctx(t), strictSpec(), MsgSubject("remaphore", "all"), []byte("x"), "id-1"); !errors.Is(err, tc.kind) {
				t.Fatalf("publish: %v", err)
			}
			st, _ := conn.JetStream().Stream(ctx(t), "REMAPHORE")
			if n := st.CachedInfo().State.Msgs; n != 0 {
				t.Fatalf("the stream holds %d messages", n)
			}
			// A receiver refuses it at once, without retrying.
			start := time.Now()
			_, err = conn.Subscribe(ctx(t), SubscribeOptions{Stream: strictSpec(), Subject: MsgSubject("remaphore", "all"), Retry: true})
			if !errors.Is(err, tc.kind) || time.Since(start) > 10*time.Second {
				t.Fatalf("subscribe: %v after %v", err, time.Since(start))
			}
		})
	}
}

// The stream remaphore creates passes its own check, and carries the
// message size and byte limits (issue 13).
func TestEnsureStream_CreatedIsStrict(t *testing.T) {
	c := natstest.Start(t)
	conn := connect(t, c)
	st, err := conn.EnsureStream(ctx(t), strictSpec())
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	if cfg.MaxMsgSize != 1<<20+8192 || cfg.MaxBytes != 1<<30 || cfg.Discard != jetstream.DiscardOld {
		t.Fatalf("created %+v", cfg)
	}
	if _, err := connect(t, c).EnsureStream(ctx(t), strictSpec()); err != nil {
		t.Fatalf("a second process: %v", err)
	}
}

// A mirror is accepted only when it copies the root's stream whole.
func TestEnsureStream_Mirror(t *testing.T) {
	c := natstest.Start(t)
	conn := connect(t, c)
	if _, err := conn.EnsureStream(ctx(t), strictSpec()); err != nil {
		t.Fatal(err)
	}
	js := conn.JetStream()
	if _, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"other.>"}}); err != nil {
		t.Fatal(err)
	}
	for name, src := range map[string]*jetstream.StreamSource{
		"GOOD":     {Name: "REMAPHORE"},
		"WRONG":    {Name: "OTHER"},
		"FILTERED": {Name: "REMAPHORE", FilterSubject: "remaphore.msg.all"},
	} {
		if _, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: name, Mirror: src}); err != nil {
			t.Fatal(err)
		}
	}
	sp := strictSpec()
	sp.Name = "GOOD"
	if _, err := conn.EnsureStream(ctx(t), sp); err != nil {
		t.Fatalf("a mirror of REMAPHORE: %v", err)
	}
	sp.Name = "WRONG"
	_, err := conn.EnsureStream(ctx(t), sp)
	if want := "stream settings too weak: stream WRONG: is a mirror of stream OTHER, not of REMAPHORE (the stream of subject remaphore)"; err == nil || err.Error() != want {
		t.Fatalf("mirror of another stream: %v", err)
	}
	sp.Name = "FILTERED"
	if _, err := conn.EnsureStream(ctx(t), sp); !errors.Is(err, ErrStreamWeak) {
		t.Fatalf("filtered mirror: %v", err)
	}
}

// A mirror of a weak origin in the same account is as weak as its origin.
func TestEnsureStream_MirrorOfWeakOrigin(t *testing.T) {
	c := natstest.Start(t)
	conn := connect(t, c)
	js := conn.JetStream()
	if _, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "REMAPHORE", Subjects: []string{"remaphore.>"}, Duplicates: time.Second, MaxMsgSize: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "LOCAL", Mirror: &jetstream.StreamSource{Name: "REMAPHORE"}}); err != nil {
		t.Fatal(err)
	}
	sp := strictSpec()
	sp.Name = "LOCAL"
	if _, err := conn.EnsureStream(ctx(t), sp); !errors.Is(err, ErrStreamWeak) || !strings.Contains(err.Error(), "stream REMAPHORE: duplicate window 1s") {
		t.Fatalf("err = %v", err)
	}
}

// TestEnsureStream_WarnsOnceWhenSettingsDiffer (issue 19.6): retention,
// replicas, max_consumers and max_bytes of an existing stream that differ
// from the config's are logged once each, with the command that changes
// them; the stream is used.
func TestEnsureStream_WarnsOnceWhenSettingsDiffer(t *testing.T) {
	c := natstest.Start(t)
	var logs proctest.Buffer
	ctx0 := ctx(t)
	conn, err := Connect(ctx0, Options{Servers: c.URLs(), Credentials: c.User.SeedFile,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{ReplaceAttr: dropTime}))})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.JetStream().CreateStream(ctx0, jetstream.StreamConfig{Name: "REMAPHORE", Subjects: []string{"remaphore.>"},
		Duplicates: 5 * time.Minute, MaxMsgSize: 1 << 20, MaxAge: 24 * time.Hour, MaxConsumers: 100, MaxBytes: 64 << 20}); err != nil {
		t.Fatal(err)
	}
	sp := strictSpec()
	sp.MaxAge = 168 * time.Hour
	for range 3 {
		if _, err := conn.EnsureStream(ctx0, sp); err != nil {
			t.Fatal(err)
		}
	}
	want := `level=WARN msg="the existing stream's max_age differs from the config's retention; the stream is used as it is" stream=REMAPHORE stream_value=24h0m0s config_value=168h0m0s fix="nats stream edit REMAPHORE --max-age 168h0m0s"
level=WARN msg="the existing stream's max_consumers differs from the config's max_consumers; the stream is used as it is" stream=REMAPHORE stream_value=100 config_value=1000 fix="nats stream edit REMAPHORE --max-consumers 1000"
level=WARN msg="the existing stream's max_bytes differs from the config's max_bytes; the stream is used as it is" stream=REMAPHORE stream_value=67108864 config_value=1073741824 fix="nats stream edit REMAPHORE --max-bytes 1073741824"
`
	if got := logs.String(); got != want {
		t.Fatalf("logs\n%s\nwant\n%s", got, want)
	}
}

func dropTime(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// TestSubscribe_NoJetStreamFailsAtOnce (issue 19.4): a receiver that
// retries until its timeout gets the sender's message at once instead.
func TestSubscribe_NoJetStreamFailsAtOnce(t *testing.T) {
	s, conn := serverWithoutJetStream(t)
	start := time.Now()
	_, err := conn.Subscribe(ctx(t), SubscribeOptions{Stream: strictSpec(), Subject: MsgSubject("remaphore", "all"), Retry: true})
	want := "jetstream error: " + s.ClientURL() + " has no JetStream for this account (enable jetstream in the server's config): nats: no responders available for request"
	if !errors.Is(err, ErrNoJetStream) || !errors.Is(err, ErrJetStream) || err.Error() != want {
		t.Fatalf("err\n %v\nwant\n %s", err, want)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v: a server without JetStream is not worth retrying", d)
	}
}

// TestRedactURL (issue 14.3): a password or token in a server URL never
// shows in errors and logs.
func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"nats://alice:S3cretPW@host:4222": "nats://alice:xxxxx@host:4222",
		"nats://S3cretTOKEN@host:4222":    "nats://xxxxx@host:4222",
		"tls://host:4222":                 "tls://host:4222",
		"host:4222":                       "host:4222",
		"alice:S3cretPW@host:4222":        "(a server address with credentials)",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
	var logs bytes.Buffer
	_, err := Connect(ctx(t), Options{Servers: []string{"nats://alice:S3cretPW@127.0.0.1:1", "nats://S3cretTOKEN@127.0.0.1:2"}, DialTimeout: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err == nil || strings.Contains(err.Error()+logs.String(), "S3cret") {
		t.Fatalf("err %v, logs %s", err, logs.String())
	}
	if !strings.Contains(err.Error(), "nats://alice:xxxxx@127.0.0.1:1, nats://xxxxx@127.0.0.1:2") {
		t.Fatalf("err %v", err)
	}
}

// A server whose JetStream storage is smaller than max_bytes cannot
// create the stream: a configuration problem named as such, at once, not
// retried until the receiver's -t.
func TestEnsureStream_MaxBytesOverServerStorage(t *testing.T) {
	_, conn := startServer(t, &server.Options{JetStream: true, StoreDir: t.TempDir(), JetStreamMaxStore: 64 << 20})
	start := time.Now()
	_, err := conn.Subscribe(ctx(t), SubscribeOptions{Stream: strictSpec(), Subject: MsgSubject("remaphore", "all"), Retry: true})
	var se *StreamError
	if !errors.Is(err, ErrStreamLimits) || !errors.As(err, &se) || se.Setting != "max_bytes" {
		t.Fatalf("err = %v", err)
	}
	if want := "stream limits refused: stream REMAPHORE: the server cannot reserve max_bytes 1073741824 bytes (x1 replicas) for it: insufficient storage resources available"; err.Error() != want {
		t.Fatalf("error\n %q\nwant\n %q", err, want)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %v: retried", d)
	}
	// Within the server's storage, it is created.
	sp := strictSpec()
	sp.MaxBytes = 32 << 20
	if _, err := conn.EnsureStream(ctx(t), sp); err != nil {
		t.Fatal(err)
	}
}

// Only the settings the config states are compared: a host left at the
// defaults does not warn about a stream another host made.
func TestEnsureStream_WarnsOnlyForStatedKeys(t *testing.T) {
	c := natstest.Start(t)
	var logs proctest.Buffer
	conn, err := Connect(ctx(t), Options{Servers: c.URLs(), Credentials: c.User.SeedFile,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{ReplaceAttr: dropTime}))})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.JetStream().CreateStream(ctx(t), jetstream.StreamConfig{Name: "REMAPHORE", Subjects: []string{"remaphore.>"},
		Duplicates: 5 * time.Minute, MaxMsgSize: 1 << 20, MaxAge: 24 * time.Hour, MaxConsumers: 100, MaxBytes: 64 << 20}); err != nil {
		t.Fatal(err)
	}
	sp := strictSpec()
	sp.MaxAge = 168 * time.Hour
	sp.Stated = map[string]bool{"max_consumers": true}
	if _, err := conn.EnsureStream(ctx(t), sp); err != nil {
		t.Fatal(err)
	}
	want := `level=WARN msg="the existing stream's max_consumers differs from the config's max_consumers; the stream is used as it is" stream=REMAPHORE stream_value=100 config_value=1000 fix="nats stream edit REMAPHORE --max-consumers 1000"
`
	if got := logs.String(); got != want {
		t.Fatalf("logs\n%s\nwant\n%s", got, want)
	}
}
