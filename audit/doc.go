// Package audit is remaphore's forensic store: every message and reply the
// stream held, in a bbolt file, with indexes for queries and hash chains
// that prove nothing was changed or removed.
//
// The auditor (package [github.com/remaphore/remaphore/audit/ingest])
// reads the stream from where the store stops, decides on each batch with
// the policy package, writes it in one transaction with [Store.Append], and
// only then acks it. This package knows nothing of NATS.
// [Store.Query], [Store.Verify] and [Store.Stats] read the file; open it with
// Options.ReadOnly for them, and they never change it.
//
// # Records
//
// A [Record] is keyed by its stream sequence (8 bytes, big-endian) and holds
// what arrived (subject, Nats-Msg-Id header, the whole body), the verdict
// (accepted, or the policy reason that refused it, with detail), what the
// body says (sender key and its peer destination, kind, verb, destination
// pattern, uuid, sent time, request flag, request id, responder and exit
// code for replies, payload), the stream's time, and a chain link. The
// encoding is fixed-width integers and uvarint-prefixed bytes: one encoding
// per record, so hashes are reproducible.
//
// Accepted records live in one bucket and refused records in another, which
// is capped by count and by bytes (Options.MaxRejected and
// Options.MaxRejectedBytes, oldest evicted first) so that a flood of
// forged messages cannot fill the disk. An accepted record keeps the whole
// signed body (verify checks its signature again); a refused record keeps
// the decoded fields, the reason, the body's size and SHA-256, and at most
// its first RefusedKeep bytes.
//
// Sequences the stream no longer held when the auditor came to read them
// (expired, discarded by a limit, purged, deleted) are a [Gap] record:
// first and last sequence, what the stream said, when it was seen. Gap
// records have a chain of their own; verify lists every gap, and the
// accepted, refused and gap records together account for every sequence. The stream sequence is the key and
// the store remembers the highest one decided: appending a sequence at or
// below it is a no-op, so a restart, a redelivery or a crash between commit
// and ack stores nothing twice.
//
// # Hash chains
//
// Each record stores the sequence and hash of the previous record of its
// bucket, and its own hash: SHA-256 over that link and the record's bytes.
// The meta bucket keeps each chain's head. [Store.Verify] walks each chain in
// sequence order and names every record that fails: an edited record (its
// hash), a deleted one (the next record links to a sequence that is gone:
// the gap between the neighbours is named), a record changed and re-hashed
// (the next record's link no longer matches), a body whose signature no
// longer verifies or whose fields differ from the stored ones, a missing or
// stray index entry, and a head that disagrees with the last record.
// Whoever can write the file can rewrite a whole chain; publish the head
// ([Store.Stats], or verify's last line) somewhere else to pin it. No one
// without a peer's private key can make a record whose signature verifies.
//
// The refused bucket has its own chain. Eviction removes its oldest records,
// and the last evicted link is kept as the chain's anchor, so verify checks
// the remaining chain from there and eviction never reads as a deletion.
//
// # Indexes
//
// Every record has an entry in a time index (stream time, sequence), and an
// accepted record in value indexes for verb, uuid, sender key, sender peer
// destination and destination pattern, keyed value, stream time, sequence
// (see index.go). A query with one value and a time range is one range
// scan; results come in stream-time order whichever index serves them.
// Refused records written by this version are in the time index only (their
// values are the sender's choice, and a flood of fresh values would make
// each one a random insert in every value index); queries on them read the
// capped refused part through the time index. Counters by verdict,
// verb and sender are kept by Append, so [Store.Stats] reads no records.
//
// The verb, sender, peer and destination indexes hold each transaction's
// entries for one value in one key (a chunk), as a few values take most
// records: the single writer makes one put per value and transaction
// instead of one per record and index, about a third of its time per
// record (BenchmarkAppend). Files written so (format 2) are refused by
// earlier versions, which would miss the entries in chunks; a format 1 file
// is read as it is and becomes format 2 at its first write.
//
// # Concurrency
//
// bbolt locks the whole file while it is open: one writer, or any number of
// readers. The auditor holds it only to write and closes it whenever it has
// caught up (and for a moment every second while a backlog streams in), so
// readers get in between batches; a separate lock file ([LockDaemon]) keeps
// a second auditor out of the same database and fails at once with
// [ErrLocked]. A reader that cannot get in within Options.Timeout fails with
// [ErrBusy] rather than hanging.
package audit
