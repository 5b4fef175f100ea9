package config

import (
	"fmt"
	"testing"
	"time"

	"github.com/remaphore/remaphore/policy"
)

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
audit_metrics: 127.0.0.1:9464
`)
	if c.Subject != "ops.remaphore" || c.Stream != "OPS_REMAPHORE" || c.Replicas != 3 || c.Retention != 72*time.Hour ||
		c.MaxConsumers != 5000 || c.Heartbeat != 10*time.Second || c.TLSCA != "ca.pem" || c.TLSCert != "cert.pem" || c.TLSKey != "key.pem" ||
		c.AuditDB != "/var/lib/remaphore/audit.db" || c.AuditRefusedMax != 64<<20 || c.AuditMetrics != "127.0.0.1:9464" {
		t.Fatalf("optional keys: %+v", c)
	}
	roundTrip(t, c)
}
