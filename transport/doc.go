// Package transport carries remaphore's signed bodies over NATS JetStream.
//
// It knows subjects, the stream and connections, and nothing of verbs, peers
// or signatures: bodies are opaque bytes with a message id.
//
//   - [Connect] dials the configured servers in failover order with a NATS
//     credentials file (.creds, or an nkey seed file) and optional TLS.
//   - [Conn.EnsureStream] creates the stream when it is missing and never
//     rewrites one that exists; a stream that does not capture the root's
//     subjects is an error ([ErrStreamMismatch]), and so, for a spec with
//     MinDuplicates (every remaphore command's), is one weaker than the
//     spec: a shorter duplicate window, no or a larger message size limit,
//     a mirror of another stream ([ErrStreamWeak], a [*StreamError] with
//     the nats stream edit command that fixes it). Settings that only
//     differ are logged once. No JetStream is [ErrNoJetStream], at once.
//   - Server URLs appear in errors and logs only through [RedactURL]: a
//     password or token in them is never shown.
//   - [Conn.Publish] publishes with Nats-Msg-Id and returns only once the
//     stream has stored the message.
//   - [Conn.Subscribe] is the live receiver: it reads the stream's last
//     sequence and consumes from the next one, so messages stored before it
//     was ready are never delivered and every message stored after is, even
//     across reconnects and server failovers.
//
// # Subjects
//
// Messages travel on <root>.msg.<channel>, replies on <root>.reply.<id>,
// and one stream per root captures <root>.>.
//
// # Why a consumer and not a core subscription
//
// The stream's duplicate window refuses a re-publish of captured bytes, so a
// receiver reading the stream never sees such a copy; a core subscriber
// would. Each live receiver holds one ephemeral, in-memory consumer that it
// deletes on exit, with a short inactive threshold so the consumers of
// killed receivers do not pile up against the stream's max_consumers.
package transport
