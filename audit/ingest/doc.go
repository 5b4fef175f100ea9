// Package ingest is remaphore-audit's writer: [Run] reads the stream
// through a durable JetStream pull consumer of its own from where the
// store (package [github.com/remaphore/remaphore/audit]) stops, decides on
// every message with the policy package in a pool of checkers (one replay
// cache per shard of message ids), writes each batch in one transaction
// and only then acks it, and records the sequences the stream no longer
// holds as gap records.
//
// The pipeline runs one goroutine per stage (fetch; decide; collect, which
// also encodes and hashes the records with an [audit.Sealer]; commit and
// ack) and the checkers on every core. The commit stage is the only one
// no number of cores can spread (bbolt has one writer, each commit two
// fsyncs), so everything that can be done before it is, and the batches
// that queue while it writes go into its next transaction
// (BENCHMARKS.md, "The auditor at width").
//
// Files: ingest.go is the pipeline (fetch, decide, commit and ack),
// checkers.go the checker pool, consumer.go the consumer's name, owner tag
// and the errors about it.
package ingest
