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
//
// # Freshness and late joiners
//
// A message is fresh when |stream's stored time − sent time| ≤ allow_skew.
// That alone refuses replays: captured bytes published again get a new
// stored time, so once allow_skew has passed they are stale; within it, a
// re-publish with the same Nats-Msg-Id is dropped by the stream's duplicate
// window (at least 2*allow_skew + 1m), and one with another id, or none,
// is refused as id-mismatch. So each signed message is stored at most once
// with a time that passes, and a receiver, which reads each stored
// sequence once, sees it at most once; the replay cache adds a second
// guard for as long as the message could pass.
//
// On top of that, a live receiver refuses a message sent longer ago than
// the duplicate window plus allow_skew by its own clock (Rules.MaxDelay),
// so that a misbehaving server cannot present old messages as new. The
// bound is judged when the message reached the receiver (Input.Received):
// the time it then waited in the receiver's queue, behind the script of
// the message before it, is the receiver's own, not the server's. A late
// joiner (-since D) asks for exactly such messages: every one stored in the
// D before it started. Rules.Since extends the local-clock bound to that
// backlog, and only to it: a message whose sent time lies between
// Since − allow_skew and Started + allow_skew passes it, and its id is kept
// (in a set apart from the time-pruned replay cache, at most ReplayCap ids)
// for the Checker's life, since it would pass the bound for that long.
// Messages sent after the start are held to MaxDelay as before. What the
// backlog lets through is thus what the operator asked for (messages sent
// within -since), each at most once; replays are still refused by the
// stored-time rule, the duplicate window and both caches. Two runs whose
// -since windows overlap both act on a message stored in the overlap: that
// is the meaning of -since, not a replay.
package policy
