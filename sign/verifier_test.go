package sign

import (
	"crypto/rand"
	"errors"
	"sync"
	"testing"
	"time"
)

// A Verifier gives the same answers before and after it warms up, from
// many goroutines at once (run with -race).
func TestVerifier_SameAnswersBeforeAndAfterWarmUp(t *testing.T) {
	key, err := GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := GenerateKey(rand.Reader)
	v := NewVerifier(key.Public())
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 4 * warmAfter {
				data := []byte{byte(g), byte(i), 'x'}
				sig := key.Sign(data)
				if !v.Verify(data, sig) {
					t.Errorf("goroutine %d, use %d: valid signature refused", g, i)
				}
				bad := append([]byte(nil), sig...)
				bad[i%64] ^= 0x10
				if v.Verify(data, bad) {
					t.Errorf("goroutine %d, use %d: corrupted signature accepted", g, i)
				}
				if v.Verify(append(data, 0), sig) {
					t.Errorf("goroutine %d, use %d: signature accepted for other data", g, i)
				}
				if v.Verify(data, other.Sign(data)) {
					t.Errorf("goroutine %d, use %d: another key's signature accepted", g, i)
				}
				if v.Verify(data, sig[:63]) {
					t.Errorf("goroutine %d, use %d: short signature accepted", g, i)
				}
			}
		})
	}
	wg.Wait()
	if v.fast.Load() == nil {
		t.Fatal("the verifier never prepared its tables")
	}
}

func TestEnvelope_VerifyWith(t *testing.T) {
	key, _ := GenerateKey(rand.Reader)
	other, _ := GenerateKey(rand.Reader)
	env, err := Seal(&Message{Kind: KindMsg, Root: "r", Channel: "c", Verb: "ping", Dest: "**", Sent: time.Now()}, key)
	if err != nil {
		t.Fatal(err)
	}
	v := NewVerifier(key.Public())
	for range 2 * warmAfter {
		if err := env.VerifyWith(v); err != nil {
			t.Fatal(err)
		}
	}
	// Another key's verifier (or none) falls back to the sender's key.
	if err := env.VerifyWith(NewVerifier(other.Public())); err != nil {
		t.Fatalf("a mismatched verifier must not decide: %v", err)
	}
	if err := env.VerifyWith(nil); err != nil {
		t.Fatal(err)
	}
	env.Signature[5] ^= 1
	if err := env.VerifyWith(v); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("corrupted signature: got %v, want ErrBadSignature", err)
	}
}
