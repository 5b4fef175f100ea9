package ingest

import (
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/remaphore/remaphore/audit"
	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/sign"
)

// maxChannels bounds the checkers one shard keeps (one per channel seen).
// Beyond it an arbitrary one is dropped with its replay memory; the
// stream's duplicate window still refuses a re-published copy.
const maxChannels = 256

// checkerPool decides on messages with the policy package, on several CPUs
// at once. policy.Checker keeps a replay cache and is not safe for
// concurrent use, so messages are split into shards by their Nats-Msg-Id:
// copies of one message (same id) always meet the same shard's cache, in
// stream order, and each shard has its own checkers and its own goroutine.
// A copy under another header id is refused as id-mismatch before the
// replay check matters. Batches queue up at each shard, so a shard that
// finishes its part of one batch starts on the next at once.
type checkerPool struct {
	root   string
	prefix string // root + "."
	// mu makes each batch's submit, and each reload, one step: a batch
	// is judged wholly by the peers before a reload or wholly by those
	// after it.
	mu     sync.Mutex
	shards []*shard
}

type shard struct {
	// rules are the shard's own copy: a reload reaches them through
	// jobs, in order with the batches.
	rules    policy.Rules
	checkers map[string]*policy.Checker
	jobs     chan shardJob
}

// shardJob is one shard's part of a batch, or a reload (peers set).
type shardJob struct {
	items  []*item
	done   *sync.WaitGroup
	reload *reload
}

type reload struct {
	peers     []policy.Peer
	verifiers policy.Verifiers
}

// item is one message to decide on, and the decision.
type item struct {
	subject string
	in      policy.Input
	seq     uint64
	entry   audit.Entry
}

// newCheckerPool starts the shards; close stops them.
func newCheckerPool(root string, peers []policy.Peer, skew time.Duration, shards int) (*checkerPool, error) {
	p := &checkerPool{root: root, prefix: root + "."}
	rules := policy.Rules{Audit: true, Root: root, Peers: peers, AllowSkew: skew, Verifiers: policy.NewVerifiers(peers)}
	// Validate the rules once, up front.
	if _, err := policy.NewChecker(rules); err != nil {
		return nil, err
	}
	for range max(shards, 1) {
		sh := &shard{rules: rules, checkers: map[string]*policy.Checker{}, jobs: make(chan shardJob, 8)}
		p.shards = append(p.shards, sh)
		go func() {
			for j := range sh.jobs {
				if r := j.reload; r != nil {
					sh.rules.Peers, sh.rules.Verifiers = r.peers, r.verifiers
					for _, c := range sh.checkers {
						c.SetPeers(r.peers, r.verifiers)
					}
				}
				for _, it := range j.items {
					p.decideOne(sh, it)
				}
				j.done.Done()
			}
		}()
	}
	return p, nil
}

// reload makes every shard judge by peers from its next batch on,
// keeping its checkers' replay caches; it returns once every shard has
// applied it.
func (p *checkerPool) reload(peers []policy.Peer) {
	r := &reload{peers: peers, verifiers: policy.NewVerifiers(peers)}
	wg := &sync.WaitGroup{}
	p.mu.Lock()
	for _, sh := range p.shards {
		wg.Add(1)
		sh.jobs <- shardJob{reload: r, done: wg}
	}
	p.mu.Unlock()
	wg.Wait()
}

func (p *checkerPool) close() {
	for _, sh := range p.shards {
		close(sh.jobs)
	}
}

// submit queues items at their shards; each item's entry is filled in
// once the returned group is done. Items of one shard are decided in
// order, across batches too.
func (p *checkerPool) submit(items []*item) *sync.WaitGroup {
	per := make([][]*item, len(p.shards))
	for _, it := range items {
		i := 0
		if len(p.shards) > 1 {
			i = int(fnv32a(it.in.HeaderID) % uint32(len(p.shards)))
		}
		per[i] = append(per[i], it)
	}
	wg := &sync.WaitGroup{}
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, list := range per {
		if len(list) > 0 {
			wg.Add(1)
			p.shards[i].jobs <- shardJob{items: list, done: wg}
		}
	}
	return wg
}

// fnv32a is hash/fnv's 32-bit FNV-1a of s, without its allocations.
func fnv32a(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// decide fills in each item's entry and returns when all are done.
func (p *checkerPool) decide(items []*item) { p.submit(items).Wait() }

// Subject shapes.
const (
	subjOther = iota
	subjMsg
	subjReply
	subjReceipt // <root>.receipt.<message id>
)

// parseSubject splits <root>.msg.<channel> and <root>.reply.<id>; prefix
// is "<root>.".
func parseSubject(prefix, subject string) (shape int, token string) {
	rest, ok := strings.CutPrefix(subject, prefix)
	if !ok {
		return subjOther, ""
	}
	if ch, ok := strings.CutPrefix(rest, "msg."); ok && ch != "" {
		return subjMsg, ch
	}
	if id, ok := strings.CutPrefix(rest, "reply."); ok && id != "" {
		return subjReply, id
	}
	if id, ok := strings.CutPrefix(rest, "receipt."); ok && id != "" {
		return subjReceipt, id
	}
	return subjOther, ""
}

func (p *checkerPool) decideOne(sh *shard, it *item) {
	shape, token := parseSubject(p.prefix, it.subject)
	// A message's channel is its subject's: a body signed for another
	// channel is refused as wrong-channel. A reply's subject holds the
	// request id instead, so its checker is the one of the channel it was
	// signed for, and the id is compared below.
	channel := token
	if shape != subjMsg {
		channel = ""
		if env, err := sign.Decode(it.in.Body); err == nil {
			channel = env.Channel
		}
	}
	v := sh.checker(p, channel).Check(it.in)
	reason, detail := v.Reason, v.Detail
	if v.Accepted() {
		switch {
		case shape == subjMsg && v.Env.Kind != sign.KindMsg:
			reason, detail = policy.ReasonWrongKind, fmt.Sprintf("a %s on message subject %s", v.Env.Kind, it.subject)
		case shape == subjReply && v.Env.Kind != sign.KindReply:
			reason, detail = policy.ReasonWrongKind, fmt.Sprintf("a %s on reply subject %s", v.Env.Kind, it.subject)
		case shape == subjReply && hex.EncodeToString(v.Env.RequestID[:]) != token:
			reason, detail = policy.ReasonWrongRequest, fmt.Sprintf("a reply to request %x… stored on the reply subject of %.16s…", v.Env.RequestID[:8], token)
		case shape == subjReceipt:
			reason, detail = checkReceipt(v, it.subject, token)
		case shape == subjOther:
			reason, detail = policy.ReasonWrongChannel, fmt.Sprintf("subject %s is neither %s.msg.<channel>, %s.reply.<id> nor %s.receipt.<id>", it.subject, p.root, p.root, p.root)
		}
	}
	it.entry = audit.Entry{Seq: it.seq, Stored: it.in.Stored, Subject: it.subject, HeaderID: it.in.HeaderID,
		Body: it.in.Body, Reason: reason, Detail: detail, Env: v.Env}
	if !v.Peer.Key.IsZero() {
		it.entry.SenderDest = v.Peer.Dest
	}
	// A refused message keeps a few KiB: hash it and let the rest of its
	// body go here, on the shards, rather than in the single writer.
	it.entry.Bound()
}

func (sh *shard) checker(p *checkerPool, channel string) *policy.Checker {
	if c, ok := sh.checkers[channel]; ok {
		return c
	}
	if len(sh.checkers) >= maxChannels {
		for k := range sh.checkers {
			delete(sh.checkers, k)
			break
		}
	}
	r := sh.rules
	r.Channel = channel
	c, err := policy.NewChecker(r)
	if err != nil { // the rules were validated in newCheckerPool
		panic(err)
	}
	sh.checkers[channel] = c
	return c
}
