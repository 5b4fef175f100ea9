// Package config reads and writes remaphore.conf, the file every remaphore
// node and the auditor start from ([DefaultPath] unless -c names another).
//
// # The file
//
// A file has a top section of "key: value" lines, then two sections: the
// identities (the keys this node signs with) and the peers (the nodes it
// accepts messages from). remaphore -C prints a commented one ([Example]);
// without comments, a file reads:
//
//	server: nats://127.0.0.1:4222
//	credentials: /etc/remaphore/remaphore.creds
//	subject: remaphore
//	default_identity: 3v96V3EgjiuXjmdkb5a4RjjtqfLoZCD657uyqrYZ1Xam
//	destination: com.example.host1
//	allow_skew: 5s
//
//	[ Identities ]
//	3v96V3EgjiuXjmdkb5a4RjjtqfLoZCD657uyqrYZ1Xam 4Jq1… [ping]
//
//	[ Peers ]
//	com.example.host1 3v96V3EgjiuXjmdkb5a4RjjtqfLoZCD657uyqrYZ1Xam [ping]
//	com.example.host2 5v22… [ping, deploy]
//
// Keys and section names are case-insensitive ("SERVER:", "[identities]").
// Blank lines and lines starting with # are ignored, and a # after a space
// starts a comment at the end of a line. Fields are separated by spaces or
// tabs; a value runs to the end of its line.
//
// # Keys
//
//	server            NATS URL: nats://, tls://, ws://, wss:// or host:port.
//	                  At least one; repeat the line for failover, in order.
//	credentials       NATS credentials file. Required.
//	subject           subject root, default "remaphore"; a plain NATS
//	                  subject (no *, >, spaces or empty tokens).
//	default_identity  public key of the identity that signs when -p is not
//	                  given; must be one of the [ Identities ].
//	destination       this node's name, reverse dotted (com.example.host1).
//	                  Required; no wildcards.
//	allow_skew        largest accepted difference between a message's sent
//	                  time and the time the stream stored it, default 5s.
//	stream            JetStream stream name; default: derived from subject.
//	replicas          stream replicas, 1 to 5, default 1.
//	retention         how long the stream keeps messages, default 24h.
//	max_consumers     stream consumer limit, default 100000.
//	max_bytes         stream size limit, default 1GiB (at least 8MiB);
//	                  KiB, MiB, GiB, TiB or bytes. The oldest go first.
//	tls_ca            CA file for the server's certificate.
//	tls_cert, tls_key client certificate and key, both or neither.
//	audit_db          the auditor's database file.
//	audit_refused_max_bytes
//	                  size the auditor's refused records may take before
//	                  the oldest are evicted, default 256MiB (at least 1MiB).
//	audit_metrics     HOST:PORT the auditor serves Prometheus metrics and
//	                  /healthz on (remaphore-audit run -metrics).
//	receipts          true or false, default false: a receiver publishes a
//	                  signed receipt for each message it acted on.
//
// Durations are Go durations: 5s, 1m30s, 24h. A relative path in
// credentials, tls_* or audit_db is relative to the file's directory; see
// [Config.Resolve]. Each key but server may appear once.
//
// # Identities and peers
//
// An identity line is "publickey privatekey [verbs]": the private key must
// be the public key's own. A peer line is "destination publickey [verbs]";
// a public key may be listed once. Keys are base58 (32 bytes public, 64
// bytes private: seed then public key) or the NATS nkeys user forms "U…"
// and "SU…", which mean the same key. The verb list is written in brackets,
// comma-separated, and lower-cased: [ping], [ping, deploy], [*] for every
// verb. A line without a verb list, or with an empty one, is an error: it
// would allow nothing.
//
// # Errors and permissions
//
// [Parse] stops at the first problem and returns it as an [*Error] with the
// file, the line, and a hint saying what to write instead; every one
// matches [ErrInvalid]. An error never shows a private key, nor a password
// or token in a server URL (user:xxxxx@). [Load] also refuses, as ssh
// does, a file that others can change (writable by group or others, or
// owned by a user other than root and the one running remaphore), and one
// that holds a secret (identities, a password in a server URL) and is open
// to other users ([ErrPermissions]; the hint is the exact chmod or chown).
// Owner and group may read it, so that a group of users can share one
// configuration. [Config.CheckFiles] applies the same rules to the
// credentials and TLS files, before a connection uses them. Symlinks are
// followed: the target is judged, not the link or its directories. A
// missing file matches [ErrNotFound].
//
// [Config.Format] writes the canonical form: keys in a fixed order, optional
// keys only when they differ from their defaults, base58 keys. Parsing it
// gives the same Config back; a fuzz test holds the package to that.
package config
