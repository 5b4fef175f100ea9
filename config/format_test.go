package config

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/sign"
)

func TestFormatCanonical(t *testing.T) {
	a, b := testKey(t, 1), testKey(t, 2)
	c := &Config{
		Path:            "x.conf",
		Servers:         []string{"nats://n1:4222", "nats://n2:4222"},
		Credentials:     "/c",
		Subject:         "remaphore", // default: left out
		DefaultIdentity: a.Public(),
		Destination:     "com.example.a",
		AllowSkew:       10 * time.Second,
		Replicas:        3,
		Retention:       DefaultRetention, // default: left out
		MaxConsumers:    0,                // zero: left out
		TLSCA:           "ca.pem",
		Identities:      []policy.Identity{{Key: a, Verbs: mustVerbs(t, "deploy, PING")}},
		Peers: []policy.Peer{
			{Dest: "com.example.b", Key: b.Public(), Verbs: policy.AllVerbs()},
			{Dest: "com.example.a", Key: a.Public(), Verbs: mustVerbs(t, "ping")},
		},
	}
	want := fmt.Sprintf(`server: nats://n1:4222
server: nats://n2:4222
credentials: /c
default_identity: %s
destination: com.example.a
allow_skew: 10s
replicas: 3
tls_ca: ca.pem

[ Identities ]
%s %s [deploy, ping]

[ Peers ]
com.example.b %s [*]
com.example.a %s [ping]
`, a.Public(), a.Public(), a.Base58(), b.Public(), a.Public())
	if got := string(c.Format()); got != want {
		t.Fatalf("Format:\n%s\nwant:\n%s", got, want)
	}
	c2, err := Parse("x.conf", c.Format())
	if err != nil {
		t.Fatal(err)
	}
	c.MaxConsumers = DefaultMaxConsumers
	c.MaxBytes = DefaultMaxBytes
	c.Heartbeat = DefaultHeartbeat
	if d := diffConfig(c, c2); d != "" {
		t.Fatal(d)
	}
}

func TestRoundTripFull(t *testing.T) {
	a, b, x := testKey(t, 1), testKey(t, 2), testKey(t, 3)
	c := mustParse(t, fmt.Sprintf(`server: nats://n1:4222
server: tls://n2:4222
server: n3:4222
credentials: ../creds/x.creds
subject: a.b.c
default_identity: %s
destination: com.example.a
allow_skew: 2m
stream: S1
replicas: 5
retention: 1h30m
max_consumers: 1
tls_ca: /ca
tls_cert: c.pem
tls_key: k.pem
audit_db: audit.db
[ Identities ]
%s %s [ping, deploy]
%s %s [*]
[ Peers ]
com.example.b %s [x, y, z]
com.example.x %s [*]
com.example.a %s [ping]
`, b.Public(), a.Public(), a.Base58(), b.Public().NKey(), b.NKeySeed(), b.Public(), x.Public().NKey(), a.Public()))
	roundTrip(t, c)
}

func TestExample(t *testing.T) {
	k := testKey(t, 7)
	text := Example(k)
	c, err := Parse("example.conf", text)
	if err != nil {
		t.Fatalf("Example does not parse: %v\n%s", err, text)
	}
	if len(c.Servers) != 1 || c.Servers[0] != "nats://127.0.0.1:4222" {
		t.Errorf("Servers = %q", c.Servers)
	}
	if c.Credentials != "/etc/remaphore/remaphore.creds" || c.Subject != "remaphore" ||
		c.Destination != "com.example.host1" || c.AllowSkew != 5*time.Second || c.DefaultIdentity != k.Public() {
		t.Errorf("Example values: %+v", c)
	}
	if len(c.Identities) != 1 || c.Identities[0].Key.Base58() != k.Base58() || c.Identities[0].Verbs.String() != "[ping]" {
		t.Errorf("Identities = %v", c.Identities)
	}
	if len(c.Peers) != 1 || c.Peers[0].Dest != "com.example.host1" || c.Peers[0].Key != k.Public() ||
		c.Peers[0].Verbs.String() != "[ping]" {
		t.Errorf("Peers = %+v", c.Peers)
	}
	s := string(text)
	for _, want := range []string{"[ Identities ]", "[ Peers ]", "# com.example.host2 ", "chmod"} {
		if !strings.Contains(s, want) {
			t.Errorf("Example lacks %q", want)
		}
	}
	// A comment line explains every key the example sets.
	lines := strings.Split(s, "\n")
	for i, line := range lines {
		if strings.HasPrefix(line, "[") {
			break
		}
		if line != "" && !strings.HasPrefix(line, "#") && (i == 0 || !strings.HasPrefix(lines[i-1], "#")) {
			t.Errorf("line %d %q has no comment above it", i+1, line)
		}
	}
	roundTrip(t, c)

	// A zero key: Example makes a fresh one.
	z, err := Parse("", Example(sign.PrivateKey{}))
	if err != nil || len(z.Identities) != 1 || z.Identities[0].Key.IsZero() {
		t.Fatalf("Example(zero): %v", err)
	}
}

// The -C template's comment names every key the parser knows, so that an
// operator reading it learns of each optional one (receipts and the
// auditor's keys included).
func TestExample_NamesEveryKey(t *testing.T) {
	ex := string(Example(testKey(t, 1)))
	for _, k := range keys {
		if !strings.Contains(ex, "#   "+k.name+" ") && !strings.Contains(ex, "\n"+k.name+": ") && !strings.Contains(ex, "with "+k.name+" ") {
			t.Errorf("the template does not name %s", k.name)
		}
	}
}

// The -C template describes allow_skew as the README does: against the
// stream's time, not the local clock.
func TestExample_AllowSkewText(t *testing.T) {
	ex := string(Example(testKey(t, 1)))
	want := "# Largest accepted difference between a message's sent time and the time\n# the stream stored it (the server's clock, which every host shares).\nallow_skew: 5s\n"
	if !strings.Contains(ex, want) {
		t.Fatalf("template:\n%s", ex)
	}
}
