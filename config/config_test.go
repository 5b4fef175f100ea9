package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/sign"
)

func mustParse(t *testing.T, text string) *Config {
	t.Helper()
	c, err := Parse("test.conf", []byte(text))
	if err != nil {
		t.Fatalf("Parse: %v (hint: %s)\n%s", err, hintOf(err), text)
	}
	return c
}

func hintOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Hint
	}
	return ""
}

func TestParseSpecExample(t *testing.T) {
	me, right := testKey(t, 1), testKey(t, 2)
	text := fmt.Sprintf(`server: nats://natsserver:4222
credentials: /path/to/credentials/file
subject: remaphore
default_identity: %s
destination: com.crypto.us.left
allow_skew: 5s

[ Identities ]
%s %s [ping]

[ Peers ]
com.crypto.us.right %s [ping] 
`, me.Public(), me.Public(), me.Base58(), right.Public())
	c := mustParse(t, text)
	want := &Config{
		Path:            "test.conf",
		Servers:         []string{"nats://natsserver:4222"},
		Credentials:     "/path/to/credentials/file",
		Subject:         "remaphore",
		DefaultIdentity: me.Public(),
		Destination:     "com.crypto.us.left",
		AllowSkew:       5 * time.Second,
		Replicas:        1,
		Retention:       24 * time.Hour,
		MaxConsumers:    100000,
		MaxBytes:        DefaultMaxBytes,
		Heartbeat:       DefaultHeartbeat,
		Identities:      []policy.Identity{{Key: me, Verbs: mustVerbs(t, "ping")}},
		Peers:           []policy.Peer{{Dest: "com.crypto.us.right", Key: right.Public(), Verbs: mustVerbs(t, "ping")}},
	}
	if d := diffConfig(want, c); d != "" {
		t.Fatal(d)
	}
	roundTrip(t, c)
}

func mustVerbs(t *testing.T, s string) policy.Verbs {
	t.Helper()
	v, err := policy.ParseVerbList(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// The older implementation's -C output: [ping, deploy] with a space after
// each comma; and files written by hand with other cases and spacing.
func TestParseCompatForms(t *testing.T) {
	a, b := testKey(t, 1), testKey(t, 2)
	text := fmt.Sprintf(`# written by hand
SERVER: nats://n1:4222
Server:	tls://n2:4443   # second, for failover
server: n3:4222
Credentials: creds/remaphore.creds
DESTINATION: com.example.a
Allow_Skew: 1m30s
[IDENTITIES]
%s	%s	[PING, Deploy]
  [ peers ]  # trailing comment
com.example.b %s [ ping ,deploy ]
com.example.c %s [*]
`, a.Public(), a.Base58(), b.Public(), a.Public())
	c := mustParse(t, text)
	if got := c.Servers; len(got) != 3 || got[0] != "nats://n1:4222" || got[1] != "tls://n2:4443" || got[2] != "n3:4222" {
		t.Errorf("Servers = %q", got)
	}
	if c.AllowSkew != 90*time.Second {
		t.Errorf("AllowSkew = %v", c.AllowSkew)
	}
	if c.Credentials != "creds/remaphore.creds" {
		t.Errorf("Credentials = %q", c.Credentials)
	}
	if got := c.Identities[0].Verbs.String(); got != "[deploy, ping]" {
		t.Errorf("identity verbs = %s", got)
	}
	if got := c.Peers[0].Verbs.String(); got != "[deploy, ping]" {
		t.Errorf("peer b verbs = %s", got)
	}
	if !c.Peers[1].Verbs.All() || !c.Peers[1].Verbs.Allows("anything") {
		t.Errorf("peer c verbs = %s, want [*]", c.Peers[1].Verbs)
	}
	if c.Subject != "remaphore" || !c.DefaultIdentity.IsZero() {
		t.Errorf("Subject = %q, DefaultIdentity = %s", c.Subject, c.DefaultIdentity)
	}
	roundTrip(t, c)
}

func TestParseCRLFAndBOM(t *testing.T) {
	a := testKey(t, 1)
	text := "\ufeffserver: nats://n1:4222\r\ncredentials: c\r\ndestination: x.y\r\n[ Identities ]\r\n" +
		a.Public().String() + " " + a.Base58() + " [ping]\r\n"
	c := mustParse(t, text)
	if c.Servers[0] != "nats://n1:4222" || c.Destination != "x.y" || len(c.Identities) != 1 {
		t.Fatalf("%+v", c)
	}
}

func TestParseNKeyForms(t *testing.T) {
	a, b := testKey(t, 1), testKey(t, 2)
	base := mustParse(t, fmt.Sprintf(`server: nats://n:4222
credentials: c
destination: com.example.a
default_identity: %s
[ Identities ]
%s %s [ping]
[ Peers ]
com.example.b %s [ping]
`, a.Public(), a.Public(), a.Base58(), b.Public()))
	if !strings.HasPrefix(a.Public().NKey(), "U") || !strings.HasPrefix(a.NKeySeed(), "SU") {
		t.Fatalf("unexpected nkeys forms %s…", a.Public().NKey()[:2])
	}
	nk := mustParse(t, fmt.Sprintf(`server: nats://n:4222
credentials: c
destination: com.example.a
default_identity: %s
[ Identities ]
%s %s [ping]
[ Peers ]
com.example.b %s [ping]
`, a.Public().NKey(), a.Public().NKey(), a.NKeySeed(), b.Public().NKey()))
	if d := diffConfig(base, nk); d != "" {
		t.Fatalf("nkeys forms differ from base58 forms:\n%s", d)
	}
	// Mixed: base58 public key with an nkeys seed.
	mixed := mustParse(t, fmt.Sprintf(`server: nats://n:4222
credentials: c
destination: com.example.a
[ Identities ]
%s %s [ping]
`, a.Public(), a.NKeySeed()))
	if mixed.Identities[0].Key.Base58() != a.Base58() {
		t.Fatal("mixed forms: wrong key")
	}
	// Format writes base58.
	out := string(nk.Format())
	if strings.Contains(out, a.NKeySeed()) || !strings.Contains(out, a.Base58()) {
		t.Fatalf("Format should write base58 keys:\n%s", out)
	}
}

func TestParseDefaultsAndOptional(t *testing.T) {
	c := mustParse(t, "server: nats://n:4222\ncredentials: c\ndestination: a.b\n")
	if c.Subject != DefaultSubject || c.AllowSkew != DefaultAllowSkew || c.Replicas != DefaultReplicas ||
		c.Retention != DefaultRetention || c.MaxConsumers != DefaultMaxConsumers || c.Stream != "" {
		t.Fatalf("defaults: %+v", c)
	}
	if len(c.Identities) != 0 || len(c.Peers) != 0 {
		t.Fatal("no identities or peers expected")
	}
	c = mustParse(t, `server: wss://n.example.com/nats
credentials: /c
subject: ops.remaphore
destination: a.b
stream: OPS_REMAPHORE
replicas: 3
retention: 72h
max_consumers: 5000
heartbeat: 10s
tls_ca: ca.pem
tls_cert: cert.pem
tls_key: key.pem
audit_db: /var/lib/remaphore/audit.db
audit_refused_max_bytes: 64MiB
`)
	if c.Subject != "ops.remaphore" || c.Stream != "OPS_REMAPHORE" || c.Replicas != 3 || c.Retention != 72*time.Hour ||
		c.MaxConsumers != 5000 || c.Heartbeat != 10*time.Second || c.TLSCA != "ca.pem" || c.TLSCert != "cert.pem" || c.TLSKey != "key.pem" ||
		c.AuditDB != "/var/lib/remaphore/audit.db" || c.AuditRefusedMax != 64<<20 {
		t.Fatalf("optional keys: %+v", c)
	}
	roundTrip(t, c)
}

func TestParseValues(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{"credentials: /a b/c # comment", "/a b/c"},
		{"credentials: /a#b", "/a#b"},
		{"credentials:/x", "/x"},
		{"credentials: \t/x\t", "/x"},
		{"credentials: a:b", "a:b"},
	} {
		c := mustParse(t, "server: nats://n:4222\ndestination: a.b\n"+tc.line+"\n")
		if c.Credentials != tc.want {
			t.Errorf("%q: Credentials = %q, want %q", tc.line, c.Credentials, tc.want)
		}
		roundTrip(t, c)
	}
	for _, s := range []string{
		"nats://n:4222", "nats://n", "tls://10.0.0.1:4222", "ws://n:8080", "wss://n/path", "n:4222",
		"[::1]:4222", "nats://[::1]:4222", "nats://user:pw@n:4222", "NATS://n:4222",
	} {
		c := mustParse(t, "credentials: c\ndestination: a.b\nserver: "+s+"\n")
		if c.Servers[0] != s {
			t.Errorf("server %q parsed as %q", s, c.Servers[0])
		}
	}
}

func TestLookup(t *testing.T) {
	a, b, x := testKey(t, 1), testKey(t, 2), testKey(t, 3)
	c := mustParse(t, fmt.Sprintf(`server: nats://n:4222
credentials: c
destination: a.b
[ Identities ]
%s %s [ping]
[ Peers ]
a.c %s [deploy]
`, a.Public(), a.Base58(), b.Public()))
	if id, ok := c.Identity(a.Public()); !ok || id.Key.Base58() != a.Base58() || !id.Verbs.Allows("ping") {
		t.Fatal("Identity(a)")
	}
	if _, ok := c.Identity(x.Public()); ok {
		t.Fatal("Identity(x) found")
	}
	if p, ok := c.Peer(b.Public()); !ok || p.Dest != "a.c" || !p.Verbs.Allows("deploy") {
		t.Fatal("Peer(b)")
	}
	if _, ok := c.Peer(a.Public()); ok {
		t.Fatal("Peer(a) found")
	}
}

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
