package ingest

import (
	"hash/fnv"
	"testing"
)

// The shard of a message is fnv32a of its Nats-Msg-Id, as hash/fnv
// computes it.
func TestFNV32aMatchesHashFNV(t *testing.T) {
	for _, s := range []string{"", "a", "0123456789abcdef", "3f9a6c1be2d0478a9c5e1f2b3d4c5a6b7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b", "\x00\xff\x80"} {
		h := fnv.New32a()
		h.Write([]byte(s))
		if got, want := fnv32a(s), h.Sum32(); got != want {
			t.Errorf("fnv32a(%q) = %#x, hash/fnv says %#x", s, got, want)
		}
	}
}
