package policy

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/remaphore/remaphore/sign"
)

// Reason says why a message was refused; ReasonAccepted when it was not.
type Reason int

const (
	ReasonAccepted Reason = iota
	// Security rejections: someone sent something they should not have.
	ReasonMalformed      // not a v1 envelope, or over a limit
	ReasonBadSignature   // signature does not verify
	ReasonIDMismatch     // Nats-Msg-Id header differs from the computed id
	ReasonWrongChannel   // signed for another subject root or channel
	ReasonWrongKind      // a reply where a message was expected, or the other way round
	ReasonUnknownSender  // key not in [ Peers ]
	ReasonVerbNotAllowed // peer may not use this verb
	ReasonStale          // sent time outside allow_skew
	ReasonReplay         // id seen before
	ReasonWrongRequest   // reply bound to another request
	ReasonBadVerb        // verb breaks the rules for verbs sent (leading '-', control characters)
	ReasonNULByte        // payload or uuid holds a NUL byte, which no script argument or variable can carry
	ReasonWrongResponder // a receipt names a receiver other than its signer's [ Peers ] destination (the auditor's check)
	// Filters: an authentic message that is simply not for this receiver.
	ReasonDestMismatch // destination pattern does not match this node
	ReasonFilterUUID   // -u
	ReasonFilterVerb   // -v
	ReasonFilterSender // -p
)

var reasonNames = [...]string{
	ReasonAccepted:       "accepted",
	ReasonMalformed:      "malformed",
	ReasonBadSignature:   "bad-signature",
	ReasonIDMismatch:     "id-mismatch",
	ReasonWrongChannel:   "wrong-channel",
	ReasonWrongKind:      "wrong-kind",
	ReasonUnknownSender:  "unknown-sender",
	ReasonVerbNotAllowed: "verb-not-allowed",
	ReasonStale:          "stale",
	ReasonReplay:         "replay",
	ReasonWrongRequest:   "wrong-request",
	ReasonBadVerb:        "bad-verb",
	ReasonNULByte:        "nul-byte",
	ReasonWrongResponder: "wrong-responder",
	ReasonDestMismatch:   "destination-mismatch",
	ReasonFilterUUID:     "uuid-filter",
	ReasonFilterVerb:     "verb-filter",
	ReasonFilterSender:   "sender-filter",
}

// String returns the reason's stable name, as logs and the audit show it.
func (r Reason) String() string {
	if r >= 0 && int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", int(r))
}

// ParseReason is the inverse of String.
func ParseReason(s string) (Reason, bool) {
	for i, n := range reasonNames {
		if n == s {
			return Reason(i), true
		}
	}
	return 0, false
}

// IsFilter reports whether r is a receiver filter rather than a security
// rejection: the message was authentic and allowed, just not wanted here.
func (r Reason) IsFilter() bool { return r >= ReasonDestMismatch }

// Rules configure a Checker.
type Rules struct {
	Root    string // subject root the receiver listens on
	Channel string // channel (-S)
	Kind    sign.Kind
	Peers   []Peer
	// AllowSkew is the largest |now − sent time| accepted.
	AllowSkew time.Duration

	// Destination is this node's name, matched against the message's
	// pattern unless AnyDestination (-d) is set.
	Destination    string
	AnyDestination bool

	// Filters; zero values match everything.
	UUID   string         // -u
	Verbs  *Verbs         // -v; nil = any verb
	Sender sign.PublicKey // -p

	// Audit checks messages and replies alike (Kind is ignored) for the
	// auditor: every security rule applies, the receiver filters do not
	// (destination, -u, -v, -p), and replies are not bound to a request.
	Audit bool

	// RequestID binds replies to one request (Kind == KindReply).
	RequestID [sign.IDSize]byte

	// MaxDelay, when set, bounds how long after its sent time a message
	// may be delivered by the local clock, on top of the freshness check
	// against the stream's time. It keeps a misbehaving server from
	// delivering old captured messages as if they were new.
	MaxDelay time.Duration
	// Since, when set, is the start of a late joiner's backlog (-since,
	// by the local clock), which ends at Started (Now() when the Checker
	// is made). A message sent within the backlog (± AllowSkew) passes
	// the MaxDelay bound and is remembered for the Checker's life. See the
	// package doc, "Freshness and late joiners".
	Since, Started time.Time

	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// ReplayCap bounds the replay cache (DefaultReplayCap when 0).
	ReplayCap int

	// Verifiers, when set, holds the signature verifier of each peer key,
	// shared by every Checker made with these rules: checkers on several
	// goroutines (the auditor's) then share one set of precomputed tables.
	// A Checker makes its own when it is nil.
	Verifiers Verifiers
}

// Verifiers maps a peer key to its signature verifier.
type Verifiers map[sign.PublicKey]*sign.Verifier

// NewVerifiers returns a verifier for each peer's key.
func NewVerifiers(peers []Peer) Verifiers {
	vs := make(Verifiers, len(peers))
	for _, p := range peers {
		vs[p.Key] = sign.NewVerifier(p.Key)
	}
	return vs
}

// Input is one message as it came off the wire.
type Input struct {
	Body []byte
	// HeaderID is the Nats-Msg-Id header; empty when the message had none.
	HeaderID string
	// Stored is the stream's timestamp of the message. When set, freshness
	// is judged against it instead of the clock (late joiners, the auditor
	// reading a backlog).
	Stored time.Time
	// Received is when the receiver took the message from the server, by
	// its clock (Rules.Now's). When set, the MaxDelay bound is judged at
	// that time, not when Check runs: a message that waited in the
	// receiver's own queue (behind a long script) was not delayed by the
	// server, which is what the bound is about.
	Received time.Time
}

// Verdict is the result of Check.
type Verdict struct {
	Reason Reason
	Detail string         // human-readable detail for logs
	Env    *sign.Envelope // nil when the body did not decode
	Peer   Peer           // the sending peer, when known
}

// Accepted reports whether the message is to be acted on.
func (v Verdict) Accepted() bool { return v.Reason == ReasonAccepted }

// Error makes a refusal printable as "reason: detail".
func (v Verdict) Error() string {
	if v.Detail == "" {
		return v.Reason.String()
	}
	return v.Reason.String() + ": " + v.Detail
}

// Checker applies Rules to messages. It keeps the replay cache, so one
// Checker serves one receiver for its lifetime. It is not safe for
// concurrent use.
type Checker struct {
	rules  Rules
	peers  map[sign.PublicKey]Peer
	verify Verifiers
	dest   Pattern
	replay *replayCache
	// backlog holds the ids accepted from the -since backlog: they pass
	// the local-clock bound for as long as the Checker lives, so they are
	// remembered as long (at most ReplayCap of them).
	backlog map[[sign.IDSize]byte]struct{}
	// unknown holds the refusal detail of the keys last refused as
	// unknown senders (at most maxUnknownDetails): a flood comes from a
	// few keys, and formatting a key in base58 with fmt.Sprintf for each
	// of its messages was a tenth of the auditor's CPU per message. A
	// flood with a new key in every message only misses, and the map is
	// emptied whenever it is full, so it stays small.
	unknown map[sign.PublicKey]string
}

// maxUnknownDetails bounds Checker.unknown.
const maxUnknownDetails = 32

// NewChecker validates rules and returns a Checker.
func NewChecker(r Rules) (*Checker, error) {
	if r.Audit {
		r.Kind, r.AnyDestination = 0, true
		r.UUID, r.Verbs, r.Sender = "", nil, sign.PublicKey{}
	} else if r.Kind != sign.KindMsg && r.Kind != sign.KindReply {
		return nil, fmt.Errorf("policy: rules need a kind (msg or reply)")
	}
	if r.AllowSkew <= 0 {
		return nil, fmt.Errorf("policy: allow_skew must be positive")
	}
	if r.Kind == sign.KindMsg && !r.AnyDestination {
		if err := ValidateName(r.Destination); err != nil {
			return nil, err
		}
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	if !r.Since.IsZero() && r.Started.IsZero() {
		r.Started = r.Now()
	}
	c := &Checker{rules: r, peers: make(map[sign.PublicKey]Peer, len(r.Peers)), replay: newReplayCache(r.ReplayCap)}
	for _, p := range r.Peers {
		c.peers[p.Key] = p
	}
	// Without shared Verifiers every signature is checked by
	// crypto/ed25519: a receiver or requester sees few messages per key,
	// and precomputed tables would only be memory a forger can make it
	// spend.
	c.verify = r.Verifiers
	return c, nil
}

// SetPeers replaces the peers a Checker trusts (keys, destinations,
// verbs) and their shared verifiers, and keeps everything else, the
// replay cache above all: the auditor re-reads its config on SIGHUP, and
// a message seen before the reload must still be refused as a replay
// after it.
func (c *Checker) SetPeers(peers []Peer, vs Verifiers) {
	c.rules.Peers, c.rules.Verifiers, c.verify = peers, vs, vs
	c.peers = make(map[sign.PublicKey]Peer, len(peers))
	for _, p := range peers {
		c.peers[p.Key] = p
	}
}

// Check decides whether in is acted on. See the package doc for the order.
func (c *Checker) Check(in Input) Verdict {
	env, err := sign.Decode(in.Body)
	if err != nil {
		return Verdict{Reason: ReasonMalformed, Detail: err.Error()}
	}
	v := Verdict{Env: env}
	refuse := func(r Reason, format string, args ...any) Verdict {
		v.Reason, v.Detail = r, fmt.Sprintf(format, args...)
		return v
	}
	// The sender is looked up before any signature work: an unknown key
	// has nothing to be verified against, and a flood from keys that are
	// not peers must not cost a verification per message.
	peer, ok := c.peers[env.Sender]
	if !ok {
		v.Reason, v.Detail = ReasonUnknownSender, c.unknownDetail(env.Sender)
		return v
	}
	if err := env.VerifyWith(c.verify[env.Sender]); err != nil {
		return refuse(ReasonBadSignature, "signature does not verify for claimed sender %s", env.Sender)
	}
	if in.HeaderID != env.ID {
		if in.HeaderID == "" {
			return refuse(ReasonIDMismatch, "no Nats-Msg-Id header (published outside remaphore, or through core NATS)")
		}
		return refuse(ReasonIDMismatch, "Nats-Msg-Id %.16s… differs from the message's id %.16s…", in.HeaderID, env.ID)
	}
	if env.Root != c.rules.Root || env.Channel != c.rules.Channel {
		return refuse(ReasonWrongChannel, "signed for %s/%s, received on %s/%s", env.Root, env.Channel, c.rules.Root, c.rules.Channel)
	}
	if !c.rules.Audit && env.Kind != c.rules.Kind {
		return refuse(ReasonWrongKind, "a %s where a %s was expected", env.Kind, c.rules.Kind)
	}
	v.Peer = peer
	// A reply's verb repeats its request's; the responder is answering,
	// not sending that verb, so its own verb list does not apply.
	if env.Kind == sign.KindMsg && !peer.Verbs.Allows(env.Verb) {
		return refuse(ReasonVerbNotAllowed, "peer %s (%s) may send %s, not %q", peer.Dest, env.Sender, peer.Verbs, env.Verb)
	}
	ref := in.Stored
	if ref.IsZero() {
		ref = c.rules.Now()
	}
	if d := ref.Sub(env.Sent); d > c.rules.AllowSkew || d < -c.rules.AllowSkew {
		return refuse(ReasonStale, "sent %s, %s from %s; allow_skew is %s", env.Sent.UTC().Format(time.RFC3339Nano), d.Round(time.Millisecond), map[bool]string{true: "the stream's time", false: "local time"}[!in.Stored.IsZero()], c.rules.AllowSkew)
	}
	if !in.Stored.IsZero() && c.rules.MaxDelay > 0 {
		at := in.Received
		if at.IsZero() {
			at = c.rules.Now()
		}
		late := at.Sub(env.Sent)
		if late > c.rules.MaxDelay+c.rules.AllowSkew && !c.inBacklog(env) {
			return refuse(ReasonStale, "sent %s ago by the local clock; at most %s is accepted", late.Round(time.Millisecond), c.rules.MaxDelay+c.rules.AllowSkew)
		}
	}
	if env.Kind == sign.KindReply && !c.rules.Audit && env.RequestID != c.rules.RequestID {
		return refuse(ReasonWrongRequest, "reply to request %x…, not this one", env.RequestID[:8])
	}
	if env.Kind == sign.KindMsg {
		// The verb and payload become a script's arguments, the uuid
		// and payload its environment: refuse what cannot be passed
		// as is, before anything runs.
		if v, err := NormalizeVerb(env.Verb); err != nil || v != env.Verb {
			return refuse(ReasonBadVerb, "verb %q: not a verb a sender may send", env.Verb)
		}
		if bytes.IndexByte(env.Payload, 0) >= 0 {
			return refuse(ReasonNULByte, "the payload holds a NUL byte, which no script argument can carry")
		}
		if strings.IndexByte(env.UUID, 0) >= 0 {
			return refuse(ReasonNULByte, "the uuid holds a NUL byte, which no environment variable can carry")
		}
	}
	id := mustID(env)
	if c.inBacklog(env) {
		if _, seen := c.backlog[id]; seen {
			return refuse(ReasonReplay, "message %.16s… was seen before", env.ID)
		}
		if c.backlog == nil {
			c.backlog = make(map[[sign.IDSize]byte]struct{})
		}
		if len(c.backlog) < c.replay.cap {
			c.backlog[id] = struct{}{}
		}
	}
	// Remember the id until the skew check refuses it anyway.
	if !c.replay.add(id, env.Sent.Add(c.rules.AllowSkew), ref) {
		return refuse(ReasonReplay, "message %.16s… was seen before", env.ID)
	}
	if env.Kind == sign.KindMsg {
		if !c.rules.AnyDestination {
			pat, err := ParsePattern(env.Dest)
			if err != nil {
				return refuse(ReasonDestMismatch, "destination pattern: %v", err)
			}
			if !pat.Match(c.rules.Destination) {
				return refuse(ReasonDestMismatch, "pattern %q does not match %s", env.Dest, c.rules.Destination)
			}
		}
		if c.rules.UUID != "" && env.UUID != c.rules.UUID {
			return refuse(ReasonFilterUUID, "uuid %q", env.UUID)
		}
		if c.rules.Verbs != nil && !c.rules.Verbs.Allows(env.Verb) {
			return refuse(ReasonFilterVerb, "verb %q", env.Verb)
		}
	}
	if !c.rules.Sender.IsZero() && env.Sender != c.rules.Sender {
		return refuse(ReasonFilterSender, "sender %s", env.Sender)
	}
	return v
}

// unknownDetail is the refusal detail of an unknown sender's message,
// from the cache when that key was refused lately.
func (c *Checker) unknownDetail(k sign.PublicKey) string {
	if d, ok := c.unknown[k]; ok {
		return d
	}
	d := unknownSenderDetail(k)
	if c.unknown == nil || len(c.unknown) >= maxUnknownDetails {
		c.unknown = make(map[sign.PublicKey]string, maxUnknownDetails)
	}
	c.unknown[k] = d
	return d
}

// unknownSenderDetail says why a key that is not a peer is refused.
func unknownSenderDetail(k sign.PublicKey) string {
	return "sender " + k.String() + " is not in [ Peers ] (refused before its signature was checked)"
}

// inBacklog reports whether env was sent within the -since backlog.
func (c *Checker) inBacklog(env *sign.Envelope) bool {
	if c.rules.Since.IsZero() {
		return false
	}
	skew := c.rules.AllowSkew
	return !env.Sent.Before(c.rules.Since.Add(-skew)) && !env.Sent.After(c.rules.Started.Add(skew))
}

func mustID(env *sign.Envelope) [sign.IDSize]byte {
	id, ok := env.IDBytes()
	if !ok { // env.ID is computed by sign, always valid
		panic(fmt.Sprintf("policy: envelope with invalid id %q", env.ID))
	}
	return id
}
