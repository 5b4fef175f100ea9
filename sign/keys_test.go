package sign

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"filippo.io/edwards25519"
	"github.com/mr-tron/base58"
	"github.com/nats-io/nkeys"
)

// fixedSeed is the seed of every deterministic test key: bytes 0..31.
func fixedSeed() []byte {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i)
	}
	return seed
}

// seedN is a second, different deterministic seed (bytes n, n+1, ...).
func seedN(n byte) []byte {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = n + byte(i)
	}
	return seed
}

// keyFromSeed builds a PrivateKey from a raw seed through the public API
// (the base58 configuration form), so tests never depend on internals.
func keyFromSeed(t testing.TB, seed []byte) PrivateKey {
	t.Helper()
	k, err := ParsePrivateKey(base58.Encode(ed25519.NewKeyFromSeed(seed)))
	if err != nil {
		t.Fatalf("ParsePrivateKey(base58 of seed %x): %v", seed, err)
	}
	return k
}

// nkeysPair builds the nkeys KeyPair of seed with the given prefix,
// independently of this package.
func nkeysPair(t testing.TB, prefix nkeys.PrefixByte, seed []byte) nkeys.KeyPair {
	t.Helper()
	kp, err := nkeys.FromRawSeed(prefix, seed)
	if err != nil {
		t.Fatalf("nkeys.FromRawSeed: %v", err)
	}
	return kp
}

func nkeysStrings(t testing.TB, kp nkeys.KeyPair) (public, seed string) {
	t.Helper()
	pub, err := kp.PublicKey()
	if err != nil {
		t.Fatalf("nkeys PublicKey: %v", err)
	}
	s, err := kp.Seed()
	if err != nil {
		t.Fatalf("nkeys Seed: %v", err)
	}
	return pub, string(s)
}

func TestParsePrivateKey_Base58AndNKeyAreTheSameKey(t *testing.T) {
	seed := fixedSeed()
	std := ed25519.NewKeyFromSeed(seed)
	b58priv := base58.Encode(std)
	b58pub := base58.Encode(std.Public().(ed25519.PublicKey))
	nkPub, nkSeed := nkeysStrings(t, nkeysPair(t, nkeys.PrefixByteUser, seed))
	if !strings.HasPrefix(nkPub, "U") || !strings.HasPrefix(nkSeed, "SU") {
		t.Fatalf("nkeys user forms %q %q lack the U/SU prefixes", nkPub, nkSeed)
	}

	fromB58, err := ParsePrivateKey(b58priv)
	if err != nil {
		t.Fatalf("ParsePrivateKey(base58): %v", err)
	}
	fromNK, err := ParsePrivateKey(nkSeed)
	if err != nil {
		t.Fatalf("ParsePrivateKey(SU…): %v", err)
	}
	// Forms written by this package parse back to the same key too.
	fromOwnNK, err := ParsePrivateKey(fromB58.NKeySeed())
	if err != nil {
		t.Fatalf("ParsePrivateKey(NKeySeed()): %v", err)
	}
	fromOwnB58, err := ParsePrivateKey(fromNK.Base58())
	if err != nil {
		t.Fatalf("ParsePrivateKey(Base58()): %v", err)
	}

	for name, k := range map[string]PrivateKey{"base58": fromB58, "nkeys": fromNK, "own nkeys": fromOwnNK, "own base58": fromOwnB58} {
		if k.IsZero() {
			t.Errorf("%s: parsed key is zero", name)
		}
		if got := k.Base58(); got != b58priv {
			t.Errorf("%s: Base58() = %s, want %s", name, got, b58priv)
		}
		if got := k.NKeySeed(); got != nkSeed {
			t.Errorf("%s: NKeySeed() = %s, want %s (as nkeys writes it)", name, got, nkSeed)
		}
		if got := k.Public().String(); got != b58pub {
			t.Errorf("%s: Public() = %s, want %s", name, got, b58pub)
		}
		if got := k.Public().NKey(); got != nkPub {
			t.Errorf("%s: Public().NKey() = %s, want %s (as nkeys writes it)", name, got, nkPub)
		}
		kp, err := k.KeyPair()
		if err != nil {
			t.Fatalf("%s: KeyPair: %v", name, err)
		}
		if p, s := nkeysStrings(t, kp); p != nkPub || s != nkSeed {
			t.Errorf("%s: KeyPair() is %s/%s, want %s/%s", name, p, s, nkPub, nkSeed)
		}
	}
}

func TestParsePublicKey_Base58AndNKeyAreTheSameKey(t *testing.T) {
	seed := fixedSeed()
	std := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	nkPub, _ := nkeysStrings(t, nkeysPair(t, nkeys.PrefixByteUser, seed))

	fromB58, err := ParsePublicKey(base58.Encode(std))
	if err != nil {
		t.Fatalf("ParsePublicKey(base58): %v", err)
	}
	fromNK, err := ParsePublicKey(nkPub)
	if err != nil {
		t.Fatalf("ParsePublicKey(U…): %v", err)
	}
	if fromB58 != fromNK {
		t.Fatalf("base58 form gives %x, nkeys form gives %x", fromB58[:], fromNK[:])
	}
	if !bytes.Equal(fromB58[:], std) {
		t.Fatalf("parsed %x, want %x", fromB58[:], []byte(std))
	}
	if fromB58.IsZero() || !(PublicKey{}).IsZero() {
		t.Fatalf("IsZero wrong")
	}
	// Own forms round trip.
	for _, s := range []string{fromB58.String(), fromB58.NKey()} {
		k, err := ParsePublicKey(s)
		if err != nil || k != fromB58 {
			t.Errorf("ParsePublicKey(%s) = %x, %v; want %x", s, k[:], err, fromB58[:])
		}
	}
}

func TestParsePrivateKey_MismatchedPublicHalf(t *testing.T) {
	priv := ed25519.NewKeyFromSeed(fixedSeed())
	other := ed25519.NewKeyFromSeed(seedN(100)).Public().(ed25519.PublicKey)
	bad := append(append([]byte{}, priv.Seed()...), other...)
	_, err := ParsePrivateKey(base58.Encode(bad))
	if !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("seed with another key's public half: err = %v, want ErrKeyMismatch", err)
	}
	// One flipped bit in the public half is a mismatch as well.
	flip := append([]byte{}, priv...)
	flip[63] ^= 1
	if _, err := ParsePrivateKey(base58.Encode(flip)); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("flipped public bit: err = %v, want ErrKeyMismatch", err)
	}
	// The error never shows the key.
	if strings.Contains(err.Error(), base58.Encode(bad)) || strings.Contains(err.Error(), base58.Encode(priv)) {
		t.Fatalf("error %q shows the key", err)
	}
}

func TestParsePublicKey_Bad(t *testing.T) {
	seed := fixedSeed()
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	accountPub, accountSeed := nkeysStrings(t, nkeysPair(t, nkeys.PrefixByteAccount, seed))
	operatorPub, _ := nkeysStrings(t, nkeysPair(t, nkeys.PrefixByteOperator, seed))
	userPub, userSeed := nkeysStrings(t, nkeysPair(t, nkeys.PrefixByteUser, seed))
	if !strings.HasPrefix(accountPub, "A") || !strings.HasPrefix(accountSeed, "SA") {
		t.Fatalf("account forms %q %q", accountPub, accountSeed)
	}
	// A user key with one character changed: its CRC no longer matches.
	repl := byte('A')
	if userPub[10] == 'A' {
		repl = 'B'
	}
	badSum := userPub[:10] + string(repl) + userPub[11:]

	cases := map[string]string{
		"empty":                "",
		"not base58 (0OIl)":    "0OIl0OIl0OIl0OIl0OIl0OIl0OIl0OIl0OIl0OIl0OIl",
		"not base58 (space)":   " " + base58.Encode(pub),
		"trailing newline":     base58.Encode(pub) + "\n",
		"31 bytes":             base58.Encode(pub[:31]),
		"33 bytes":             base58.Encode(append(append([]byte{}, pub...), 1)),
		"64 bytes (a private)": base58.Encode(ed25519.NewKeyFromSeed(seed)),
		"one byte":             base58.Encode([]byte{7}),
		"nkeys account A…":     accountPub,
		"nkeys operator O…":    operatorPub,
		"nkeys user seed SU…":  userSeed,
		"nkeys user bad crc":   badSum,
		"nkeys user lowercase": strings.ToLower(userPub),
	}
	for name, s := range cases {
		t.Run(name, func(t *testing.T) {
			k, err := ParsePublicKey(s)
			if !errors.Is(err, ErrBadKey) {
				t.Fatalf("ParsePublicKey(%q) = %x, %v; want ErrBadKey", s, k[:], err)
			}
			if !k.IsZero() {
				t.Fatalf("a failed parse returned a non-zero key %x", k[:])
			}
		})
	}
}

func TestParsePrivateKey_Bad(t *testing.T) {
	seed := fixedSeed()
	priv := ed25519.NewKeyFromSeed(seed)
	accountPub, accountSeed := nkeysStrings(t, nkeysPair(t, nkeys.PrefixByteAccount, seed))
	_, operatorSeed := nkeysStrings(t, nkeysPair(t, nkeys.PrefixByteOperator, seed))
	userPub, userSeed := nkeysStrings(t, nkeysPair(t, nkeys.PrefixByteUser, seed))
	// Change one character of the seed body: the CRC no longer matches.
	c := userSeed[10]
	repl := byte('A')
	if c == 'A' {
		repl = 'B'
	}
	badSum := userSeed[:10] + string(repl) + userSeed[11:]

	cases := map[string]string{
		"empty":                   "",
		"not base58 (0OIl)":       "0OIl" + base58.Encode(priv),
		"trailing newline":        base58.Encode(priv) + "\n",
		"32 bytes (seed only)":    base58.Encode(priv.Seed()),
		"63 bytes":                base58.Encode(priv[:63]),
		"65 bytes":                base58.Encode(append(append([]byte{}, priv...), 0)),
		"public key":              base58.Encode(priv.Public().(ed25519.PublicKey)),
		"nkeys account seed SA…":  accountSeed,
		"nkeys operator seed SO":  operatorSeed,
		"nkeys account public A":  accountPub,
		"nkeys user public U…":    userPub,
		"nkeys user seed bad crc": badSum,
		"nkeys user seed short":   userSeed[:57],
		"nkeys user seed lower":   strings.ToLower(userSeed),
	}
	for name, s := range cases {
		t.Run(name, func(t *testing.T) {
			k, err := ParsePrivateKey(s)
			if !errors.Is(err, ErrBadKey) {
				t.Fatalf("ParsePrivateKey(%q) = %v, %v; want ErrBadKey", s, k, err)
			}
			if !k.IsZero() {
				t.Fatalf("a failed parse returned a non-zero key")
			}
			if s != "" && strings.Contains(err.Error(), s) {
				t.Fatalf("error %q repeats the private key text", err)
			}
		})
	}
}

func TestPrivateKey_FormatRedacts(t *testing.T) {
	seed := fixedSeed()
	k := keyFromSeed(t, seed)
	std := ed25519.NewKeyFromSeed(seed)
	secrets := map[string]string{
		"Base58":        k.Base58(),
		"NKeySeed":      k.NKeySeed(),
		"seed hex":      hex.EncodeToString(seed),
		"seed HEX":      strings.ToUpper(hex.EncodeToString(seed)),
		"seed bytes":    strings.Trim(fmt.Sprint(seed[1:]), "[]"),
		"seed raw":      string(seed[1:]),
		"seed base58":   base58.Encode(seed),
		"private hex":   hex.EncodeToString(std),
		"private bytes": strings.Trim(fmt.Sprint([]byte(std)[1:]), "[]"),
	}
	type exported struct{ Key PrivateKey }
	type unexported struct{ key PrivateKey }
	values := map[string]any{
		"value":                k,
		"pointer":              &k,
		"exported field":       exported{k},
		"unexported field":     unexported{k},
		"pointer to unexp":     &unexported{k},
		"slice":                []PrivateKey{k},
		"map":                  map[string]PrivateKey{"k": k},
		"nested unexported ×2": struct{ u unexported }{unexported{k}},
	}
	verbs := []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T"}

	check := func(what, out string) {
		t.Helper()
		for name, secret := range secrets {
			if strings.Contains(out, secret) {
				t.Errorf("%s shows the %s: %q", what, name, out)
			}
		}
	}
	check("String()", k.String())
	check("GoString()", k.GoString())
	check("fmt.Sprint", fmt.Sprint(k))
	check("fmt.Sprintln", fmt.Sprintln(k, &k))
	for vname, v := range values {
		for _, verb := range verbs {
			check(fmt.Sprintf("%s %s", verb, vname), fmt.Sprintf(verb, v))
		}
	}
	if !strings.Contains(k.String(), "redacted") || !strings.Contains(k.String(), k.Public().String()) {
		t.Errorf("String() = %q: want the public key and \"redacted\"", k.String())
	}
	if k.GoString() != k.String() {
		t.Errorf("GoString() = %q, String() = %q", k.GoString(), k.String())
	}
}

func TestPrivateKey_SignMatchesNKeys(t *testing.T) {
	for _, seed := range [][]byte{fixedSeed(), seedN(0x80), make([]byte, 32)} {
		k := keyFromSeed(t, seed)
		kp := nkeysPair(t, nkeys.PrefixByteUser, seed)
		for _, n := range []int{0, 1, 64, 1000} {
			data := bytes.Repeat([]byte{0xa5, 0x5a, 0x01}, n)[:n]
			got := k.Sign(data)
			want, err := kp.Sign(data)
			if err != nil {
				t.Fatalf("nkeys Sign: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("seed %x, %d bytes: Sign = %x, nkeys KeyPair.Sign = %x", seed, n, got, want)
			}
			if err := kp.Verify(data, got); err != nil {
				t.Fatalf("nkeys Verify of our signature: %v", err)
			}
			if !Verify(k.Public(), data, got) {
				t.Fatalf("Verify of our own signature failed")
			}
			// The signature by the key nkeys hands back verifies too.
			own, err := k.KeyPair()
			if err != nil {
				t.Fatal(err)
			}
			if s, _ := own.Sign(data); !bytes.Equal(s, got) {
				t.Fatalf("KeyPair().Sign differs from Sign")
			}
		}
	}
}

func TestVerify_Rejects(t *testing.T) {
	k := keyFromSeed(t, fixedSeed())
	other := keyFromSeed(t, seedN(1))
	data := []byte("remaphore")
	sig := k.Sign(data)
	if !Verify(k.Public(), data, sig) {
		t.Fatal("valid signature refused")
	}
	for name, c := range map[string]struct {
		pub  PublicKey
		data []byte
		sig  []byte
	}{
		"other key":  {other.Public(), data, sig},
		"other data": {k.Public(), []byte("remaphorE"), sig},
		"short sig":  {k.Public(), data, sig[:63]},
		"long sig":   {k.Public(), data, append(append([]byte{}, sig...), 0)},
		"nil sig":    {k.Public(), data, nil},
		"zero key":   {PublicKey{}, data, sig},
	} {
		if Verify(c.pub, c.data, c.sig) {
			t.Errorf("%s: Verify accepted", name)
		}
	}
}

// countingReader hands out fixed bytes and counts how many were read.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestGenerateKey_DeterministicReader(t *testing.T) {
	seed := fixedSeed()
	r1 := &countingReader{r: bytes.NewReader(seed)}
	k1, err := GenerateKey(r1)
	if err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}
	k2, err := GenerateKey(bytes.NewReader(seed))
	if err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}
	if k1.Base58() != k2.Base58() {
		t.Fatalf("same reader bytes gave two keys")
	}
	// The key generated from seed bytes is the key of that seed.
	want := keyFromSeed(t, seed)
	if k1.Base58() != want.Base58() || k1.Public() != want.Public() {
		t.Fatalf("GenerateKey(seed reader) = %s, want the key of the seed %s", k1.Public(), want.Public())
	}
	if r1.n != ed25519.SeedSize {
		t.Fatalf("GenerateKey read %d bytes, want %d", r1.n, ed25519.SeedSize)
	}
	if _, nkSeed := nkeysStrings(t, nkeysPair(t, nkeys.PrefixByteUser, seed)); k1.NKeySeed() != nkSeed {
		t.Fatalf("NKeySeed %s, nkeys %s", k1.NKeySeed(), nkSeed)
	}

	if _, err := GenerateKey(bytes.NewReader(seed[:31])); err == nil {
		t.Fatal("GenerateKey with a 31-byte reader succeeded")
	}

	// A nil reader uses crypto/rand: two keys differ.
	a, err := GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.Public() == b.Public() || a.IsZero() {
		t.Fatalf("GenerateKey(nil) twice gave %s and %s", a.Public(), b.Public())
	}
}

func TestPrivateKey_Zero(t *testing.T) {
	var k PrivateKey
	if !k.IsZero() || !k.Public().IsZero() {
		t.Fatal("zero PrivateKey is not IsZero")
	}
	if k.Base58() != "" {
		t.Fatalf("zero key Base58() = %q", k.Base58())
	}
	if !strings.Contains(k.String(), "redacted") {
		t.Fatalf("zero key String() = %q", k.String())
	}
}

// torsionPoints returns the canonical encodings of the 8 points of small
// order: the multiples of a point of order 8 (libsodium's list).
func torsionPoints(t *testing.T) [][]byte {
	t.Helper()
	b, _ := hex.DecodeString("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")
	g, err := new(edwards25519.Point).SetBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	id := edwards25519.NewIdentityPoint()
	four := new(edwards25519.Point).Add(g, g)
	four.Add(four, four)
	if new(edwards25519.Point).MultByCofactor(g).Equal(id) != 1 || four.Equal(id) == 1 {
		t.Fatal("the generator is not of order 8")
	}
	var out [][]byte
	p := edwards25519.NewIdentityPoint()
	for range 8 {
		out = append(out, p.Bytes())
		p = new(edwards25519.Point).Add(p, g)
	}
	return out
}

// smallOrderEncodings returns every 32-byte string that decodes to a
// small-order point: the canonical encodings, with the sign bit flipped
// (accepted for x = 0), and y+p for the y below 19 (non-canonical y).
func smallOrderEncodings(t *testing.T) [][]byte {
	t.Helper()
	var out [][]byte
	seen := map[string]bool{}
	add := func(b []byte) {
		if _, err := new(edwards25519.Point).SetBytes(b); err == nil && !seen[string(b)] {
			seen[string(b)] = true
			out = append(out, b)
		}
	}
	for _, c := range torsionPoints(t) {
		add(c)
		flipped := bytes.Clone(c)
		flipped[31] ^= 0x80
		add(flipped)
		y := bytes.Clone(c)
		y[31] &= 0x7f
		if bytes.Equal(y[1:], make([]byte, 31)) && y[0] < 19 {
			// y+p, p = 2^255-19: ed ff … ff 7f plus y in the low byte.
			np := bytes.Repeat([]byte{0xff}, 32)
			np[0], np[31] = 0xed+y[0], 0x7f|(c[31]&0x80)
			add(np)
			np2 := bytes.Clone(np)
			np2[31] ^= 0x80
			add(np2)
		}
	}
	return out
}

// A small-order public key lets anyone forge: crypto/ed25519.Verify
// accepts, for the identity, R = identity and S = 0 on every message,
// and for the all-zero key (order 4) one of the 8 torsion points as R
// with S = 0. ParsePublicKey refuses every encoding of every such point,
// so no config or -p can name one.
func TestParsePublicKey_SmallOrderRefused(t *testing.T) {
	torsion := torsionPoints(t)
	var zero [32]byte
	for i, msg := range []string{"deploy", "ping", "anything at all"} {
		// k = SHA-512(R || A || M) changes with R and with the message's
		// nonce, so a forger tries a few: each hits with chance 1/4.
		forged := false
		for nonce := 0; nonce < 100 && !forged; nonce++ {
			m := fmt.Appendf(nil, "%s nonce=%d", msg, nonce)
			for _, r := range torsion {
				if ed25519.Verify(zero[:], m, append(bytes.Clone(r), make([]byte, 32)...)) {
					forged = true
				}
			}
		}
		if !forged {
			t.Fatalf("message %d: no torsion R forges for the zero key; the attack this test guards against is not what it says", i)
		}
		identity := torsion[0]
		if !Verify(PublicKey(identity), []byte(msg), append(bytes.Clone(identity), make([]byte, 32)...)) {
			t.Fatalf("message %d: R = identity, S = 0 does not verify for the identity key", i)
		}
	}

	encs := smallOrderEncodings(t)
	if len(encs) <= 8 {
		t.Fatalf("only %d encodings decode; want the non-canonical ones too", len(encs))
	}
	for _, b := range encs {
		s := base58.Encode(b)
		k, err := ParsePublicKey(s)
		if err == nil {
			t.Errorf("ParsePublicKey(%x as %s) = %s, want refused", b, s, k)
		} else if !errors.Is(err, ErrBadKey) || !strings.Contains(err.Error(), "not a usable public key: a small-order point anyone can forge signatures for") {
			t.Errorf("ParsePublicKey(%x as %s): %v, want the small-order error", b, s, err)
		}
		// The nkeys form is refused too (nkeys itself may already
		// refuse it, with another message).
		if k, err := ParsePublicKey(nkeyOf(t, b)); !errors.Is(err, ErrBadKey) {
			t.Errorf("ParsePublicKey(%x as nkey) = %s, %v; want refused", b, k, err)
		}
	}
	if _, err := ParsePublicKey("11111111111111111111111111111111"); err == nil || !strings.Contains(err.Error(), "small-order") {
		t.Errorf("the all-zero key: %v, want the small-order error", err)
	}
	// Real keys still parse.
	for i := range 64 {
		pub := keyFromSeed(t, seedN(byte(i))).Public()
		if _, err := ParsePublicKey(pub.String()); err != nil {
			t.Errorf("real key %s: %v", pub, err)
		}
	}
}

func nkeyOf(t *testing.T, raw []byte) string {
	t.Helper()
	b, err := nkeys.Encode(nkeys.PrefixByteUser, raw)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
