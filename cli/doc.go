// Package cli is the remaphore command: flags exactly as the user's
// specification writes them, the choice of mode (send, request, receive,
// print an example config, -version), the output formats and the exit
// codes. The protocol itself (signing, identity choice, request
// collection, replies, the script environment) is package node's.
//
// The command's behaviour is written down as testscript files in
// testdata/script (run by TestScripts, with remaphore and remaphore-audit
// registered in-process).
//
// [Main] runs one invocation and returns its exit code; cmd/remaphore only
// calls it. Errors print as "remaphore: error: …", optionally followed by
// "remaphore: hint: …", on stderr; stdout carries only data that scripts
// parse (reply records, a script's own output, the example config).
//
// With -json, stdout carries one JSON object per line and nothing else
// (json.go; the reference is docs/json.md): -r an "answer" per responder
// and a closing "summary", a receiver a "message" per accepted message,
// -s the "sent" message's id and sequence. A receiver's script then writes
// its stdout to stderr, since its bytes could break or forge the objects.
// Every control character is escaped, and output or a payload that is not
// UTF-8 is given as base64, so each line holds exactly the bytes sent.
//
// # Exit codes
//
//	0  received a matching message / all responders answered with exit code 0 / sent and stored
//	1  timeout with nothing received (for -r: some responder did not answer;
//	   for -n: the barrier incomplete, the count and the missing on stderr)
//	2  usage or configuration error
//	3  NATS or JetStream error
//	4  the script failed in -o, -u or -n mode; for -r, every responder answered
//	   and at least one answer carries a non-zero exit code
//	128+N  stopped by signal N (130 for SIGINT, 143 for SIGTERM)
//
// # Barriers and splay
//
// -n N (or all, narrowed by -from) makes a receiver a barrier: it counts
// accepted messages by distinct sender (node.Barrier), runs the script
// once with the completing message's environment plus REMAPHORE_COUNT and
// REMAPHORE_SENDERS, and exits like -o. -splay D waits a random time in
// [0, D) after the accepting message or the completed barrier. Both are
// receive options; -t bounds the whole run, splay included. The user's
// manual is docs/coordination.md.
//
// Without -t a receiver waits forever, -s gives up after 10s and -r after
// a minute: a requester waits for every expected responder, and one that
// is down must not keep a cron job or CI step waiting forever.
package cli
