package sign

import (
	"crypto/ed25519"

	"fmt"
	"io"
	"strings"

	"filippo.io/edwards25519"
	"github.com/mr-tron/base58"
	"github.com/nats-io/nkeys"
)

// PublicKey is a 32-byte ed25519 public key. Its String form is base58, as in
// the configuration file and REMAPHORE_SENDER.
type PublicKey [ed25519.PublicKeySize]byte

// String returns the base58 form of the key.
func (k PublicKey) String() string { return base58.Encode(k[:]) }

// NKey returns the nkeys user form of the key ("U…").
func (k PublicKey) NKey() string {
	b, err := nkeys.Encode(nkeys.PrefixByteUser, k[:])
	if err != nil { // only for a bad prefix, which is a constant here
		panic(err)
	}
	return string(b)
}

// IsZero reports whether k is the zero key (no key).
func (k PublicKey) IsZero() bool { return k == PublicKey{} }

// ParsePublicKey reads a public key in base58 (32 bytes) or nkeys user form.
func ParsePublicKey(s string) (PublicKey, error) {
	var k PublicKey
	if s == "" {
		return k, fmt.Errorf("%w: empty public key", ErrBadKey)
	}
	if len(s) == 56 && s[0] == 'U' && nkeys.IsValidPublicUserKey(s) {
		raw, err := nkeys.Decode(nkeys.PrefixByteUser, []byte(s))
		if err != nil {
			return k, fmt.Errorf("%w: public key %s: %v", ErrBadKey, abbrev(s), err)
		}
		if err := checkPoint(raw, s); err != nil {
			return k, err
		}
		copy(k[:], raw)
		return k, nil
	}
	raw, err := base58.Decode(s)
	if err != nil {
		return k, fmt.Errorf("%w: public key %s is not base58 (nor an nkeys U… key)", ErrBadKey, abbrev(s))
	}
	if len(raw) != len(k) {
		return k, fmt.Errorf("%w: public key %s decodes to %d bytes, want %d", ErrBadKey, abbrev(s), len(raw), len(k))
	}
	// Only the canonical spelling is a key: a text that decodes to 32
	// bytes but encodes back differently (leading zeros, a decoder that
	// tolerates more) would name a key the operator never wrote.
	if base58.Encode(raw) != s {
		return k, fmt.Errorf("%w: public key %s is not the base58 form of 32 bytes (an extra or missing character?)", ErrBadKey, abbrev(s))
	}
	if err := checkPoint(raw, s); err != nil {
		return k, err
	}
	copy(k[:], raw)
	return k, nil
}

// checkPoint refuses 32 bytes that are not an ed25519 public key (a point
// on the curve): no signature can ever verify against them. A 43-character
// key pasted with one more character often decodes to 32 bytes, a
// canonical 44-character text; about half of those are not points, and
// are caught here instead of becoming a peer no message can come from.
func checkPoint(raw []byte, s string) error {
	p, err := new(edwards25519.Point).SetBytes(raw)
	if err != nil {
		return fmt.Errorf("%w: public key %s is not an ed25519 public key (a mistyped or mangled key?)", ErrBadKey, abbrev(s))
	}
	// A point of small order (one of the 8 torsion points, in any of the
	// encodings SetBytes accepts, the all-zero key among them) is no key:
	// crypto/ed25519.Verify's check [S]B = R + [k]A then hardly depends
	// on A, and anyone can make a signature that verifies "as" it, for
	// every message (A the identity) or one try in 2, 4 or 8. [8]A is the
	// identity exactly for those points.
	if new(edwards25519.Point).MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) == 1 {
		return fmt.Errorf("%w: public key %s is not a usable public key: a small-order point anyone can forge signatures for", ErrBadKey, abbrev(s))
	}
	return nil
}

// PrivateKey is an ed25519 private key with its public key.
// Its String form never shows the key; use [PrivateKey.Base58] or
// [PrivateKey.NKeySeed] to write it out on purpose.
type PrivateKey struct {
	pub PublicKey
	// priv returns the key. It is a func rather than the key itself because
	// fmt reads unexported fields by reflection without calling String (%d,
	// or a PrivateKey in an unexported struct field), and a func is the one
	// kind it prints as an address at every depth and with every verb.
	priv func() ed25519.PrivateKey
}

// Public returns the public half.
func (k PrivateKey) Public() PublicKey { return k.pub }

// IsZero reports whether k holds no key.
func (k PrivateKey) IsZero() bool { return k.priv == nil }

// String redacts the key, so that a private key printed by mistake (a log
// line, a %v) never shows.
func (k PrivateKey) String() string { return "PrivateKey(" + k.pub.String() + ", redacted)" }

// GoString redacts the key as String does.
func (k PrivateKey) GoString() string { return k.String() }

// Base58 returns the configuration form: base58 of seed followed by public key.
func (k PrivateKey) Base58() string {
	if k.priv == nil {
		return ""
	}
	return base58.Encode(k.priv())
}

// NKeySeed returns the nkeys user seed form ("SU…").
func (k PrivateKey) NKeySeed() string {
	b, err := nkeys.EncodeSeed(nkeys.PrefixByteUser, k.priv().Seed())
	if err != nil {
		panic(err)
	}
	return string(b)
}

// KeyPair returns the key as an nkeys KeyPair (for NATS user authentication
// with the same key, for example).
func (k PrivateKey) KeyPair() (nkeys.KeyPair, error) {
	return nkeys.FromRawSeed(nkeys.PrefixByteUser, k.priv().Seed())
}

// Sign signs data with ed25519.
func (k PrivateKey) Sign(data []byte) []byte { return ed25519.Sign(k.priv(), data) }

// ParsePrivateKey reads a private key in base58 (64 bytes: seed then public
// key) or nkeys user seed form ("SU…"). For the base58 form the public half
// must be the one the seed derives.
func ParsePrivateKey(s string) (PrivateKey, error) {
	if s == "" {
		return PrivateKey{}, fmt.Errorf("%w: empty private key", ErrBadKey)
	}
	if strings.HasPrefix(s, "SU") && len(s) == 58 {
		prefix, raw, err := nkeys.DecodeSeed([]byte(s))
		if err == nil && prefix == nkeys.PrefixByteUser {
			return fromSeed(raw)
		}
	}
	raw, err := base58.Decode(s)
	if err != nil {
		return PrivateKey{}, fmt.Errorf("%w: private key is not base58 (nor an nkeys SU… seed)", ErrBadKey)
	}
	if len(raw) != ed25519.PrivateKeySize {
		return PrivateKey{}, fmt.Errorf("%w: private key decodes to %d bytes, want %d (seed and public key)", ErrBadKey, len(raw), ed25519.PrivateKeySize)
	}
	if base58.Encode(raw) != s { // the canonical spelling only, as for public keys
		return PrivateKey{}, fmt.Errorf("%w: private key is not the base58 form of 64 bytes (an extra or missing character?)", ErrBadKey)
	}
	k, err := fromSeed(raw[:ed25519.SeedSize])
	if err != nil {
		return PrivateKey{}, err
	}
	if string(raw[ed25519.SeedSize:]) != string(k.pub[:]) {
		return PrivateKey{}, fmt.Errorf("%w: private key's public half does not belong to its seed", ErrKeyMismatch)
	}
	return k, nil
}

func fromSeed(seed []byte) (PrivateKey, error) {
	if len(seed) != ed25519.SeedSize {
		return PrivateKey{}, fmt.Errorf("%w: seed is %d bytes, want %d", ErrBadKey, len(seed), ed25519.SeedSize)
	}
	// nkeys does the decoding of the user forms; the derivation itself is
	// ed25519's, done once here rather than on every signature.
	priv := ed25519.NewKeyFromSeed(seed)
	var k PrivateKey
	k.priv = func() ed25519.PrivateKey { return priv }
	copy(k.pub[:], priv[ed25519.SeedSize:])
	return k, nil
}

// GenerateKey makes a new key pair through nkeys, reading randomness from
// rand (crypto/rand.Reader when nil).
func GenerateKey(rand io.Reader) (PrivateKey, error) {
	var kp nkeys.KeyPair
	var err error
	if rand == nil {
		kp, err = nkeys.CreateUser()
	} else {
		kp, err = nkeys.CreatePairWithRand(nkeys.PrefixByteUser, rand)
	}
	if err != nil {
		return PrivateKey{}, fmt.Errorf("generate key: %w", err)
	}
	seed, err := kp.Seed()
	if err != nil {
		return PrivateKey{}, fmt.Errorf("generate key: %w", err)
	}
	_, raw, err := nkeys.DecodeSeed(seed)
	if err != nil {
		return PrivateKey{}, fmt.Errorf("generate key: %w", err)
	}
	return fromSeed(raw)
}

// Verify reports whether sig is pub's valid signature of data.
func Verify(pub PublicKey, data, sig []byte) bool {
	return len(sig) == ed25519.SignatureSize && ed25519.Verify(pub[:], data, sig)
}

// abbrev shows the start of a key string in an error, but never of one
// long enough to be a private key pasted in the wrong place.
func abbrev(s string) string {
	switch {
	case len(s) > 56:
		return fmt.Sprintf("(a %d-character string, too long for a public key)", len(s))
	case len(s) > 12:
		return s[:8] + "…"
	}
	return s
}
