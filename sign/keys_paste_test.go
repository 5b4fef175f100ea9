package sign

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"filippo.io/edwards25519"
	"github.com/mr-tron/base58"
)

const b58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

// pastedWithExtra returns a public key's base58 text and that text with
// one more character that still decodes to 32 bytes, which are not a
// curve point: the paste mistake that used to parse as another key. (The
// other half of such mistakes decode to a valid point: a different key
// that no parser can tell from a real one; messages signed by the real
// key are then refused as from an unknown sender.)
func pastedWithExtra(t *testing.T) (good, bad string) {
	t.Helper()
	for i := range 1000 {
		seed := make([]byte, ed25519.SeedSize)
		seed[0], seed[1] = byte(i), byte(i>>8)
		pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
		s := base58.Encode(pub)
		for _, c := range b58Alphabet {
			raw, err := base58.Decode(s + string(c))
			if err != nil || len(raw) != 32 {
				continue
			}
			if _, err := new(edwards25519.Point).SetBytes(raw); err != nil {
				return s, s + string(c)
			}
		}
	}
	t.Fatal("no key in 1000 whose text with one extra character decodes to 32 bytes")
	return "", ""
}

func TestParsePublicKey_ExtraCharacterRefused(t *testing.T) {
	good, bad := pastedWithExtra(t)
	if _, err := ParsePublicKey(good); err != nil {
		t.Fatalf("the key itself: %v", err)
	}
	k, err := ParsePublicKey(bad)
	if !errors.Is(err, ErrBadKey) || !k.IsZero() {
		t.Fatalf("ParsePublicKey(key + one character) = %v, %v; want ErrBadKey (it decodes to another 32-byte key)", k, err)
	}
	if want := "is not an ed25519 public key (a mistyped or mangled key?)"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say %q", err, want)
	}
}

func TestParsePrivateKey_ExtraCharacterRefused(t *testing.T) {
	for i := range 1000 {
		seed := make([]byte, ed25519.SeedSize)
		seed[0], seed[1] = byte(i), byte(i>>8)
		s := base58.Encode(ed25519.NewKeyFromSeed(seed))
		for _, c := range b58Alphabet {
			raw, err := base58.Decode(s + string(c))
			if err != nil || len(raw) != ed25519.PrivateKeySize {
				continue
			}
			// The 64 bytes hold a seed and the public key it derives:
			// a changed text breaks that pairing.
			k, err := ParsePrivateKey(s + string(c))
			if !errors.Is(err, ErrBadKey) && !errors.Is(err, ErrKeyMismatch) || !k.IsZero() {
				t.Fatalf("ParsePrivateKey(key + one character) = %v, %v; want ErrBadKey or ErrKeyMismatch", k, err)
			}
			return
		}
	}
	t.Skip("no private key in 1000 whose text with one extra character decodes to 64 bytes")
}

// keyCorpusDir is FuzzParsePublicKey's seed corpus; the fuzz test refuses
// to run without it.
const keyCorpusDir = "testdata/fuzz/FuzzParsePublicKey"

// FuzzParsePublicKey holds ParsePublicKey to one text per key: whatever it
// accepts is exactly the key's base58 or nkeys form.
func FuzzParsePublicKey(f *testing.F) {
	ents, err := os.ReadDir(keyCorpusDir)
	if err != nil || len(ents) < 3 {
		f.Fatalf("FuzzParsePublicKey seed corpus %s: %d files, %v (a missing corpus makes this fuzz test a no-op)", keyCorpusDir, len(ents), err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParsePublicKey(s)
		if err != nil {
			if !errors.Is(err, ErrBadKey) || !k.IsZero() {
				t.Fatalf("ParsePublicKey(%q) = %v, %v", s, k, err)
			}
			return
		}
		if k.String() != s && k.NKey() != s {
			t.Fatalf("ParsePublicKey(%q) accepted a text that is neither %s nor %s", s, k.String(), k.NKey())
		}
	})
}

// TestFuzzParsePublicKeyCorpus writes nothing: it checks that the corpus
// holds the paste mistake, so the fuzz test keeps covering it.
func TestFuzzParsePublicKeyCorpus(t *testing.T) {
	_, bad := pastedWithExtra(t)
	data, err := os.ReadFile(keyCorpusDir + "/extra-character")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("go test fuzz v1\nstring(%q)\n", bad); string(data) != want {
		t.Fatalf("%s/extra-character holds %q, want %q", keyCorpusDir, data, want)
	}
}
