package policy

import (
	"time"

	"github.com/remaphore/remaphore/sign"
)

// DefaultReplayCap bounds the replay cache. Beyond it the oldest ids are
// forgotten first; a message only needs remembering while it is fresh
// enough to pass the skew check, so the cap matters only when more than
// this many authentic messages arrive within twice allow_skew.
const DefaultReplayCap = 100_000

// replayCache remembers message ids until their sent time is more than the
// skew window in the past, when the freshness check refuses them anyway.
type replayCache struct {
	cap   int
	seen  map[[sign.IDSize]byte]struct{}
	queue []replayEntry // in insertion order; head is queue[head]
	head  int
}

type replayEntry struct {
	id     [sign.IDSize]byte
	expiry time.Time
}

func newReplayCache(capacity int) *replayCache {
	if capacity <= 0 {
		capacity = DefaultReplayCap
	}
	return &replayCache{cap: capacity, seen: make(map[[sign.IDSize]byte]struct{})}
}

// add records id and reports whether it was new. Entries whose expiry is
// before now are dropped first.
func (c *replayCache) add(id [sign.IDSize]byte, expiry, now time.Time) bool {
	c.prune(now)
	if _, dup := c.seen[id]; dup {
		return false
	}
	if len(c.seen) >= c.cap {
		c.evictOldest()
	}
	c.seen[id] = struct{}{}
	c.queue = append(c.queue, replayEntry{id: id, expiry: expiry})
	return true
}

func (c *replayCache) prune(now time.Time) {
	// Expiries are not strictly ordered (sent times vary within the skew),
	// so pruning from the head is conservative: an entry is kept at least
	// until every entry before it has expired. That only delays forgetting.
	for c.head < len(c.queue) && c.queue[c.head].expiry.Before(now) {
		c.evictOldest()
	}
	// Compact once the dead prefix dominates, so the slice does not grow
	// without bound on a long-running receiver.
	if c.head > 1024 && c.head*2 > len(c.queue) {
		c.queue = append(c.queue[:0:0], c.queue[c.head:]...)
		c.head = 0
	}
}

func (c *replayCache) evictOldest() {
	if c.head >= len(c.queue) {
		return
	}
	delete(c.seen, c.queue[c.head].id)
	c.queue[c.head] = replayEntry{}
	c.head++
}

func (c *replayCache) len() int { return len(c.seen) }
