package audit

import (
	"encoding/binary"
	"testing"

	"github.com/remaphore/remaphore/sign"
)

// A file signed by very many keys gets tables for at most maxVerifiers of
// them; the rest fall back to crypto/ed25519 (a nil Verifier).
func TestVerifiers_Bounded(t *testing.T) {
	vs := &verifiers{m: map[sign.PublicKey]*sign.Verifier{}}
	key := func(i int) sign.PublicKey {
		var k sign.PublicKey
		binary.LittleEndian.PutUint64(k[:], uint64(i))
		return k
	}
	for i := range maxVerifiers + 10 {
		v := vs.get(key(i))
		if (v != nil) != (i < maxVerifiers) {
			t.Fatalf("key %d: verifier %v", i, v)
		}
	}
	if vs.get(key(0)) == nil {
		t.Fatal("a key met early lost its verifier")
	}
	if len(vs.m) != maxVerifiers {
		t.Fatalf("%d verifiers kept", len(vs.m))
	}
}
