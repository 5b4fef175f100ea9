// Package sign holds remaphore's keys and its signed wire format, version 1.
//
// Every remaphore message, reply and receipt travels as one body: the signed bytes
// followed by a 64-byte ed25519 signature. The package does no I/O and knows
// nothing of NATS; [Seal] builds a body, [Open] checks one.
//
// # Keys
//
// A key is an ed25519 key pair. The configuration writes the public half as
// base58 of its 32 bytes and the private half as base58 of its 64 bytes (seed
// followed by public key, as crypto/ed25519 lays it out). The NATS nkeys user
// forms ("U…" public, "SU…" seed) are accepted too and mean the same key; see
// [ParsePublicKey] and [ParsePrivateKey]. Keys are generated and decoded with
// github.com/nats-io/nkeys. Signing uses the ed25519 key that nkeys derives,
// kept in memory: nkeys' own KeyPair.Sign re-derives the key from the seed on
// every call, which doubles the cost of a signature. A test checks that both
// produce the same bytes.
//
// # Wire format v1
//
// The signed bytes are a sequence of fields, each length-prefixed:
//
//	tag      u8 length + "remaphore/v1/msg", "remaphore/v1/reply" or
//	         "remaphore/v1/receipt"
//	root     u8 length + subject root
//	channel  u8 length + channel
//	sender   32 bytes, ed25519 public key
//	dest     u8 length + destination pattern
//	verb     u8 length + verb
//	uuid     u8 length + uuid
//	sent     8 bytes, big-endian unix nanoseconds
//	request  1 byte, 0 or 1
//	nonce    16 random bytes
//	payload  u32 length + payload
//
// and for a reply (tag "remaphore/v1/reply") three more:
//
//	request id      32 bytes, SHA-256 of the request's signed bytes
//	responder dest  u8 length + the responder's own destination
//	exit code       4 bytes, big-endian int32
//
// and for a receipt (tag "remaphore/v1/receipt", published by a receiver with
// receipts on after it acted on a message; request is 0, the payload empty,
// root, channel, verb and uuid are the message's, dest is its sender's
// destination) six more:
//
//	message id     32 bytes, SHA-256 of the accepted message's signed bytes
//	receiver dest  u8 length + the receiver's own destination
//	script         1 byte, 0 (no script ran; exit code is 0) or 1
//	exit code      4 bytes, big-endian int32
//	accepted       8 bytes, big-endian unix nanoseconds
//	finished       8 bytes, big-endian unix nanoseconds
//
// The domain tag keeps a signed reply or receipt from ever being taken for a
// message and the other way round; root and channel keep bytes captured on one channel from
// being accepted on another. The message id ([Envelope.ID]) is the lowercase
// hex SHA-256 of the signed bytes; it is sent as the Nats-Msg-Id header so the
// stream's duplicate window drops a re-publish of captured bytes.
//
// # Strictness
//
// [Decode] checks the body's size before it looks at any field, and refuses an
// unknown tag, a field over its limit, a request or script flag other than 0
// or 1, a receipt with a payload, a request flag, an exit code without a
// script or no message id, and trailing bytes. Decoding a body and encoding the result gives back the same
// bytes: there is exactly one encoding of each message. The golden vectors in
// testdata/ pin the format; a change to the bytes on the wire fails a test.
package sign
