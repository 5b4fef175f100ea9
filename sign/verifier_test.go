package sign

import (
	"crypto/rand"
	"errors"
	"runtime"
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

// Past maxTables, keys keep being verified, by crypto/ed25519.
func TestVerifier_TablesBounded(t *testing.T) {
	// Wait for the other tests' verifiers to be collected, so that none
	// frees a slot while this test counts.
	for i := 0; tablesBuilt.Load() != 0; i++ {
		if i == 100 {
			t.Fatalf("%d tables still counted with no verifier alive", tablesBuilt.Load())
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	old := maxTables
	maxTables = 2
	t.Cleanup(func() { maxTables = old })
	var live []*Verifier
	defer func() { runtime.KeepAlive(live) }()
	for i := range 4 {
		key, _ := GenerateKey(rand.Reader)
		v := NewVerifier(key.Public())
		live = append(live, v)
		for j := range warmAfter + 2 {
			data := []byte{byte(i), byte(j)}
			if !v.Verify(data, key.Sign(data)) {
				t.Fatalf("key %d: valid signature refused", i)
			}
			if v.Verify(data, key.Sign(append(data, 1))) {
				t.Fatalf("key %d: signature of other data accepted", i)
			}
		}
		if got := v.fast.Load() != nil; got != (i < 2) {
			t.Fatalf("key %d: tables built = %v", i, got)
		}
	}
}

// The count of tables falls again when their Verifiers are collected.
func TestVerifier_TablesReleased(t *testing.T) {
	before := tablesBuilt.Load()
	func() {
		key, _ := GenerateKey(rand.Reader)
		v := NewVerifier(key.Public())
		for j := range warmAfter + 1 {
			v.Verify([]byte{byte(j)}, key.Sign([]byte{byte(j)}))
		}
		if v.fast.Load() == nil {
			t.Fatal("no tables built")
		}
	}()
	for range 50 {
		runtime.GC()
		if tablesBuilt.Load() <= before {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%d tables counted after the verifier was collected, %d before", tablesBuilt.Load(), before)
}

// Forgeries in a key's name do not count toward its warm-up: a publisher
// who may only forge cannot make a process build tables for a peer.
// The same Verifier warms up on valid signatures.
func TestVerifier_ForgeriesDoNotWarmUp(t *testing.T) {
	key, _ := GenerateKey(rand.Reader)
	forger, _ := GenerateKey(rand.Reader)
	v := NewVerifier(key.Public())
	for i := range 100 * warmAfter {
		data := []byte{byte(i), byte(i >> 8)}
		if v.Verify(data, forger.Sign(data)) {
			t.Fatalf("forgery %d accepted", i)
		}
	}
	if v.fast.Load() != nil || v.uses.Load() != 0 {
		t.Fatalf("after %d forgeries: tables built %v, uses %d; want none", 100*warmAfter, v.fast.Load() != nil, v.uses.Load())
	}
	for i := range warmAfter + 1 {
		data := []byte{byte(i)}
		if !v.Verify(data, key.Sign(data)) {
			t.Fatalf("valid signature %d refused", i)
		}
	}
	if v.fast.Load() == nil {
		t.Fatal("no tables after warmAfter+1 valid signatures")
	}
}
