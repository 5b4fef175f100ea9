package config

import (
	"bytes"
	"fmt"
	"strconv"
	"time"

	"github.com/remaphore/remaphore/sign"
)

// Format returns the canonical text of c: the keys in a fixed order (every
// server, then credentials, subject, default_identity, destination,
// allow_skew, stream, replicas, retention, max_consumers, max_bytes, heartbeat, tls_ca, tls_cert,
// tls_key, audit_db), optional keys only when they differ from their
// default (a zero field counts as the default), then [ Identities ] and
// [ Peers ] with keys in base58 and verbs as [a, b] or [*]. For a Config that
// Parse returned, Parse(c.Path, c.Format()) gives an equal Config.
func (c *Config) Format() []byte {
	var b bytes.Buffer
	kv := func(k, v string) { fmt.Fprintf(&b, "%s: %s\n", k, v) }
	for _, s := range c.Servers {
		kv("server", s)
	}
	if c.Credentials != "" {
		kv("credentials", c.Credentials)
	}
	if c.Subject != "" && c.Subject != DefaultSubject {
		kv("subject", c.Subject)
	}
	if !c.DefaultIdentity.IsZero() {
		kv("default_identity", c.DefaultIdentity.String())
	}
	if c.Destination != "" {
		kv("destination", c.Destination)
	}
	dur := func(k string, d, def time.Duration) {
		if d != 0 && d != def {
			kv(k, d.String())
		}
	}
	num := func(k string, n, def int) {
		if n != 0 && n != def {
			kv(k, strconv.Itoa(n))
		}
	}
	str := func(k, v string) {
		if v != "" {
			kv(k, v)
		}
	}
	dur("allow_skew", c.AllowSkew, DefaultAllowSkew)
	str("stream", c.Stream)
	num("replicas", c.Replicas, DefaultReplicas)
	dur("retention", c.Retention, DefaultRetention)
	num("max_consumers", c.MaxConsumers, DefaultMaxConsumers)
	if c.MaxBytes != 0 && c.MaxBytes != DefaultMaxBytes {
		kv("max_bytes", FormatSize(c.MaxBytes))
	}
	dur("heartbeat", c.Heartbeat, DefaultHeartbeat)
	str("tls_ca", c.TLSCA)
	str("tls_cert", c.TLSCert)
	str("tls_key", c.TLSKey)
	str("audit_db", c.AuditDB)
	if c.AuditRefusedMax != 0 {
		kv("audit_refused_max_bytes", FormatSize(c.AuditRefusedMax))
	}
	str("audit_metrics", c.AuditMetrics)
	if c.Receipts {
		kv("receipts", "true")
	}

	b.WriteString("\n[ Identities ]\n")
	for _, id := range c.Identities {
		fmt.Fprintf(&b, "%s %s %s\n", id.Key.Public(), id.Key.Base58(), id.Verbs)
	}
	b.WriteString("\n[ Peers ]\n")
	for _, p := range c.Peers {
		fmt.Fprintf(&b, "%s %s %s\n", p.Dest, p.Key, p.Verbs)
	}
	return b.Bytes()
}

// Example returns the commented configuration that remaphore -C prints, with
// id as the node's identity (a fresh key is generated when id is zero). It
// parses as it is; the operator edits server, credentials and destination,
// and adds the other nodes under [ Peers ].
func Example(id sign.PrivateKey) []byte {
	if id.IsZero() {
		k, err := sign.GenerateKey(nil)
		if err != nil {
			panic(err) // crypto/rand failed
		}
		id = k
	}
	pub := id.Public().String()
	return fmt.Appendf(nil, `# remaphore configuration. Default location: %s
#
# This file holds a private key: keep it readable by its owner and the group
# of remaphore users only (chmod 640, owned by root or the user running
# remaphore); remaphore refuses it when others may read it or anyone but its
# owner may change it. Relative paths below are relative to this file's
# directory.

# NATS server URL (nats://, tls://, ws://, wss:// or host:port).
# Repeat the line for failover servers; they are tried in order.
server: nats://127.0.0.1:4222
# NATS credentials file (required).
credentials: /etc/remaphore/remaphore.creds
# Subject root every node shares. Leave unchanged unless you understand.
subject: %s
# Public key of the identity that signs when -p is not given.
default_identity: %s
# This node's name, reverse dotted (tld.domain.host), globally unique.
destination: com.example.host1
# Largest accepted difference between a message's sent time and the time
# the stream stored it (the server's clock, which every host shares).
allow_skew: %s

# Optional keys:
#   stream         JetStream stream name (default: derived from subject)
#   replicas       stream replicas, 1 to 5 (default 1; 3 in a cluster)
#   retention      how long the stream keeps messages (default 24h)
#   max_consumers  receivers that may wait at once (default 100000)
#   max_bytes      stream size; the oldest messages go when full (default 1GiB)
#   heartbeat      a waiting receiver's idle heartbeat, 1s to 30s (default 30s)
#   tls_ca         CA certificate of the NATS servers
#   tls_cert       client certificate, with tls_key (both or neither)
#   audit_db       the auditor's database file (remaphore-audit)
#   audit_refused_max_bytes  room for the auditor's refused records (default 256MiB)
#   audit_metrics  HOST:PORT the auditor serves /metrics and /healthz on
#   receipts       true: publish a signed receipt of each message acted on
# for example:
# replicas: 3

# Local identities: publickey privatekey [verbs]
# The verbs are the ones this identity may send; [*] means every verb.
[ Identities ]
%s %s [ping]

# Nodes that may send to this one: destination publickey [verbs]
# A message is acted on only if its sender is listed here with its verb.
# This node is its own peer, so that it hears its own pings.
[ Peers ]
com.example.host1 %s [ping]
# com.example.host2 <publickey of host2> [ping, deploy]
`, DefaultPath, DefaultSubject, pub, DefaultAllowSkew, pub, id.Base58(), pub)
}
