package config

import (
	"strings"
	"time"

	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/sign"
)

// DefaultPath is the configuration file read when -c is not given.
const DefaultPath = "/etc/remaphore/remaphore.conf"

// Defaults of the optional keys. A Config built in code may leave these
// fields zero; Format then leaves the key out and Parse fills in the default.
const (
	DefaultSubject      = "remaphore"
	DefaultAllowSkew    = 5 * time.Second
	DefaultReplicas     = 1
	DefaultRetention    = 24 * time.Hour
	DefaultMaxConsumers = 100000
	// DefaultMaxBytes bounds the stream's storage (max_bytes): about a
	// thousand messages at the 1 MiB payload limit, millions of ordinary
	// ones. When full, the stream discards its oldest messages.
	DefaultMaxBytes = 1 << 30
	// MinMaxBytes is the smallest max_bytes accepted: room for a few
	// messages of the largest size.
	MinMaxBytes = 8 << 20
	// DefaultHeartbeat is a waiting receiver's idle heartbeat while its
	// consumer is on the server it is connected to: the server sends one
	// per receiver per interval, and two missed ones make the receiver
	// recreate its consumer. Losing that server is a disconnect, noticed
	// at once (a silent one by the connection's pings), so the heartbeat
	// is the last resort there: 30s rather than the NATS client's 5s, at
	// 5,000 waiting receivers 167 heartbeats a second instead of 1,000.
	// A consumer on another server of a cluster, whose loss only the
	// heartbeat notices (within two), gets at most 5s.
	DefaultHeartbeat = 30 * time.Second
	// MinHeartbeat and MaxHeartbeat bound "heartbeat" (the NATS client
	// accepts at most 30s).
	MinHeartbeat = time.Second
	MaxHeartbeat = 30 * time.Second
)

// Limits checked by Parse.
const (
	// MaxReplicas is the largest "replicas" JetStream accepts.
	MaxReplicas = 5
	// MaxFileSize is the largest configuration file Parse and Load read.
	MaxFileSize = 1 << 20
	// maxStream is the longest stream name accepted.
	maxStream = 255
)

// Config is a parsed and validated remaphore.conf.
type Config struct {
	Path            string            // file it was read from ("" when parsed from bytes without a name)
	Servers         []string          // "server", repeatable, order kept (failover order)
	Credentials     string            // "credentials", required, as written
	Subject         string            // "subject", default "remaphore"
	DefaultIdentity sign.PublicKey    // "default_identity", zero when absent
	Destination     string            // "destination", required
	AllowSkew       time.Duration     // "allow_skew", default 5s, > 0
	Stream          string            // "stream", default "" (transport derives the name from Subject)
	Replicas        int               // "replicas", default 1, 1..5
	Retention       time.Duration     // "retention", default 24h, > 0
	MaxConsumers    int               // "max_consumers", default 100000, >= 1
	MaxBytes        int64             // "max_bytes", default 1 GiB, >= 8 MiB
	Heartbeat       time.Duration     // "heartbeat", default 30s, 1s..30s: a waiting receiver's idle heartbeat (at most 5s for a consumer on another server)
	TLSCA           string            // "tls_ca"
	TLSCert         string            // "tls_cert"; tls_cert and tls_key both or neither
	TLSKey          string            // "tls_key"
	AuditDB         string            // "audit_db"
	AuditRefusedMax int64             // "audit_refused_max_bytes": a size; 0 when absent (the auditor's default, 256 MiB)
	AuditMetrics    string            // "audit_metrics": HOST:PORT the auditor serves /metrics and /healthz on; "" for none
	Receipts        bool              // "receipts": true or false, default false; see setReceipts
	Identities      []policy.Identity // "[ Identities ]": publickey privatekey [verbs]
	Peers           []policy.Peer     // "[ Peers ]": destination publickey [verbs]

	lines map[string]int // key -> line it was set on, for errors about the files keys name
}

// Identity returns the configured identity whose public key is pub.
func (c *Config) Identity(pub sign.PublicKey) (policy.Identity, bool) {
	for _, id := range c.Identities {
		if id.Key.Public() == pub {
			return id, true
		}
	}
	return policy.Identity{}, false
}

// IsSet reports whether the file holds the key (for example "retention"),
// as opposed to the default.
func (c *Config) IsSet(key string) bool {
	_, ok := c.lines[key]
	return ok
}

// Peer returns the configured peer whose public key is pub.
func (c *Config) Peer(pub sign.PublicKey) (policy.Peer, bool) {
	for _, p := range c.Peers {
		if p.Key == pub {
			return p, true
		}
	}
	return policy.Peer{}, false
}

// key describes one "key: value" of the top section. The order of keys is
// the order Format writes them in.
type key struct {
	name   string
	repeat bool
	set    func(p *parser, line int, v string) error
}

var keys []key

// keyNames is the list of known keys, for error messages.
var keyNames string

func init() {
	keys = []key{
		{"server", true, (*parser).setServer},
		{"credentials", false, func(p *parser, _ int, v string) error { p.c.Credentials = v; return nil }},
		{"subject", false, (*parser).setSubject},
		{"default_identity", false, (*parser).setDefaultIdentity},
		{"destination", false, (*parser).setDestination},
		{"allow_skew", false, func(p *parser, line int, v string) error {
			return p.setDuration(line, "allow_skew", v, &p.c.AllowSkew)
		}},
		{"stream", false, (*parser).setStream},
		{"replicas", false, func(p *parser, line int, v string) error {
			return p.setInt(line, "replicas", v, 1, MaxReplicas, &p.c.Replicas,
				"write a number from 1 to 5: 1 for a single server, 3 for a cluster")
		}},
		{"retention", false, func(p *parser, line int, v string) error {
			return p.setDuration(line, "retention", v, &p.c.Retention)
		}},
		{"max_consumers", false, func(p *parser, line int, v string) error {
			return p.setInt(line, "max_consumers", v, 1, int(^uint(0)>>1), &p.c.MaxConsumers,
				"write a number of at least 1 (every waiting receiver holds one consumer)")
		}},
		{"max_bytes", false, (*parser).setMaxBytes},
		{"heartbeat", false, (*parser).setHeartbeat},
		{"tls_ca", false, func(p *parser, _ int, v string) error { p.c.TLSCA = v; return nil }},
		{"tls_cert", false, func(p *parser, _ int, v string) error { p.c.TLSCert = v; return nil }},
		{"tls_key", false, func(p *parser, _ int, v string) error { p.c.TLSKey = v; return nil }},
		{"audit_db", false, func(p *parser, _ int, v string) error { p.c.AuditDB = v; return nil }},
		{"audit_refused_max_bytes", false, (*parser).setAuditRefusedMax},
		{"audit_metrics", false, (*parser).setAuditMetrics},
		{"receipts", false, (*parser).setReceipts},
	}
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.name
	}
	keyNames = strings.Join(names, ", ")
}

func lookupKey(name string) *key {
	for i := range keys {
		if keys[i].name == name {
			return &keys[i]
		}
	}
	return nil
}

// exampleValue is the value hints show for a key written without one or
// without its colon; "" where no single example fits.
func exampleValue(name string) string {
	switch name {
	case "server":
		return "nats://127.0.0.1:4222"
	case "credentials":
		return "/etc/remaphore/remaphore.creds"
	case "subject":
		return DefaultSubject
	case "destination":
		return "com.example.host1"
	case "allow_skew":
		return "5s"
	case "retention":
		return "24h"
	case "replicas":
		return "1"
	case "max_consumers":
		return "100000"
	case "max_bytes":
		return "1GiB"
	case "stream":
		return "REMAPHORE"
	case "heartbeat":
		return "30s"
	case "receipts":
		return "true"
	}
	return ""
}
