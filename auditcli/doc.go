// Package auditcli is the remaphore-audit command: its subcommands (run,
// query, tail, verify, stats), their flags, the output formats and the exit
// codes. [Main] runs one invocation and returns its exit code;
// cmd/remaphore-audit only calls it. The work itself is in package audit
// (the store) and audit/ingest (run's writer). Each subcommand is in
// command_<name>.go, the flags they share in flags.go, the output in
// output.go and the exit codes in exit.go.
//
// Errors print as "remaphore-audit: error: …", optionally followed by
// "remaphore-audit: hint: …", on stderr; logs go to stderr through
// log/slog; stdout carries only data (records, problems, stats).
//
// # Reading while the auditor runs
//
// bbolt locks the database file while it is open. The auditor (run) opens
// it only to write a batch and closes it when it has caught up, so query,
// tail, verify and stats open it read-only in between; while a long backlog
// is written they wait up to -wait for one of the pauses the writer leaves
// every second. tail -f opens the file for each look and closes it again.
//
// # Exit codes
//
//	0  ok
//	1  verify found a problem or a gap (-allow-gaps: problems only); tail
//	   (without -f) found no record
//	2  usage or configuration error (also: a -sender destination no sender
//	   has; a consumer name taken by a consumer run did not create)
//	3  NATS or JetStream error, or the database cannot be opened
//	   (missing, busy, held by another auditor, not an audit database)
package auditcli
