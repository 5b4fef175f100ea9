// Package node is remaphore's protocol for one host (a node): it signs and
// sends messages, asks requests and collects their answers, and waits for
// messages, runs a script for each and answers requests. The remaphore
// command (package cli) is flags, hints and output around it, and the load
// tool (integration/loadtest) drives the same code.
//
// Everything starts from a [config.Config], usually from [config.Load]:
// the NATS servers and credentials, the subject, this node's destination,
// its [ Identities ] (keys it signs with) and its [ Peers ] (keys it
// trusts).
//
// # Send
//
// [Seal] builds and signs a [Message] with the identity [ChooseIdentity]
// picks for its verb; [Dial] connects; [Send] stores the envelope and
// returns once the stream has acknowledged it (remaphore -s):
//
//	conn, err := node.Dial(ctx, cfg, false, logger)
//	env, err := node.Seal(cfg, node.Message{Dest: "com.example.*", Verb: "deploy", Payload: []byte("v42")}, false)
//	seq, err := node.Send(ctx, conn, cfg, env)
//
// # Wait
//
// [StartReceiver] creates a live consumer on a channel and returns once
// every message stored from then on will reach [Receiver.Next], which
// returns the next message that passes the policy checks (signature,
// trusted sender and verb, freshness, no replay, this node's destination)
// and the receiver's filters (UUID, verbs, sender). Refusals are logged,
// rate-limited ([RefusalLog]). [Receiver.Handle] runs a script for an
// accepted message with its payload on stdin and the REMAPHORE_*
// environment ([ScriptCall]) and, for a request, signs the script's exit
// code and output with [ReplyIdentity] and stores it ([Receiver.Reply]).
//
// # Barriers and splay
//
// A [Barrier] (remaphore -n) counts accepted messages by distinct sender
// until N of its candidates ([BarrierCandidates]: the peers that may send
// the verb, narrowed by a sender and a destination pattern) have sent
// one; [Receiver.HandleBarrier] then runs the script once ([Barrier.Call]).
// [Splay] picks the random delay a receiver waits before acting.
//
// # Request
//
// [Responders] lists the peers a request to a pattern waits for (never
// this node's own identities). [Request] listens for replies, stores the
// request (sealed with request set to true), and collects the first valid
// answer of each expected responder until all have answered or the
// context ends. Its [Outcome] lists the answers, the responders that did
// not answer (Missing) and those that answered with a non-zero exit code
// (Failed): remaphore -r exits 1 when one is missing, 4 when one failed.
package node
