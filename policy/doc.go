// Package policy decides whether a remaphore message is acted on.
//
// It holds the rules every receiver, responder and the auditor share:
// destination patterns ([ParsePattern]), peers and the verbs they may use
// ([Peer], [Verbs]), the identity a sender signs with ([ChooseIdentity]),
// and one [Checker.Check] that verifies an envelope and says accept, or
// which rule refused it ([Reason]). The package does no I/O; its clock is
// injectable, so every rule is tested without a server.
//
// # Destinations
//
// A node's destination is a name in reverse dotted form, tld.domain.host…
// A pattern has the same segments, where a segment may hold one '*' (any
// run of characters inside that segment: "*", "us*", "*-1", "a*z") and the
// last segment may be "**", which matches one or more further segments.
// A pattern that breaks these rules is refused when it is parsed, never
// taken as a silent non-match.
//
// # Order of checks
//
// Check runs the security rules first (sender, signature, id, channel, verb,
// freshness, replay) and the receiver's own filters last (destination, -u,
// -v, -p). A message is added to the replay cache only once its signature
// is known to be good, so forged bytes cannot poison the cache for the real
// message.
package policy
