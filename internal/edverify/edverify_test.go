package edverify

import (
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/binary"
	"math/big"
	mrand "math/rand"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// l is the order of the prime subgroup.
// l = 2^252 + 27742317777372353535851937790883648493
var l = func() *big.Int {
	c, _ := new(big.Int).SetString("27742317777372353535851937790883648493", 10)
	return c.Add(c, new(big.Int).Lsh(big.NewInt(1), 252))
}()

func leBytes(x *big.Int) []byte {
	be := x.FillBytes(make([]byte, 32))
	for i, j := 0, 31; i < j; i, j = i+1, j-1 {
		be[i], be[j] = be[j], be[i]
	}
	return be
}

func leInt(b []byte) *big.Int {
	be := make([]byte, len(b))
	for i := range b {
		be[len(b)-1-i] = b[i]
	}
	return new(big.Int).SetBytes(be)
}

func TestCurveConstant(t *testing.T) {
	// The base point satisfies -x² + y² = 1 + d·x²·y² with our d.
	X, Y, Z, _ := edwards25519.NewGeneratorPoint().ExtendedCoordinates()
	var zi, x, y, x2, y2, lhs, rhs, d field.Element
	zi.Invert(Z)
	x.Multiply(X, &zi)
	y.Multiply(Y, &zi)
	x2.Square(&x)
	y2.Square(&y)
	lhs.Subtract(&y2, &x2)
	var half field.Element
	half.Invert(new(field.Element).Add(new(field.Element).One(), new(field.Element).One()))
	d.Multiply(&d2, &half)
	rhs.Multiply(&x2, &y2)
	rhs.Multiply(&rhs, &d)
	rhs.Add(&rhs, new(field.Element).One())
	if lhs.Equal(&rhs) != 1 {
		t.Fatal("2d is wrong: the base point is not on the curve")
	}
}

func TestDigits(t *testing.T) {
	r := mrand.New(mrand.NewSource(1))
	lm1 := new(big.Int).Sub(l, big.NewInt(1))
	cases := []*big.Int{big.NewInt(0), big.NewInt(1), lm1, new(big.Int).Lsh(big.NewInt(1), 252)}
	for range 2000 {
		cases = append(cases, new(big.Int).Rand(r, l))
	}
	// All ones below 2^253: the largest carry chain.
	cases = append(cases, new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 253), big.NewInt(1)))
	for _, w := range []uint{4, 5, 6, 7, 8} {
		out := make([]int16, windows(w))
		for _, s := range cases {
			if !digits(leBytes(s), w, out) {
				t.Fatalf("w=%d s=%v: carry left over", w, s)
			}
			sum := new(big.Int)
			for i := len(out) - 1; i >= 0; i-- {
				if d := int(out[i]); d > 1<<(w-1) || d < -(1<<(w-1)) {
					t.Fatalf("w=%d digit %d out of range", w, d)
				}
				sum.Lsh(sum, w)
				sum.Add(sum, big.NewInt(int64(out[i])))
			}
			if sum.Cmp(s) != 0 {
				t.Fatalf("w=%d: digits of %v sum to %v", w, s, sum)
			}
		}
	}
}

// torsion returns the eight points of order dividing 8.
func torsion(t testing.TB) []*edwards25519.Point {
	// [l]P for a point P outside the prime-order subgroup is a torsion
	// point; the eight multiples of one of order 8 are all of them.
	enc := make([]byte, 32)
	for y := byte(2); ; y++ {
		enc[0] = y
		P, err := new(edwards25519.Point).SetBytes(enc)
		if err != nil {
			continue
		}
		lm1, _ := edwards25519.NewScalar().SetCanonicalBytes(leBytes(new(big.Int).Sub(l, big.NewInt(1))))
		T := new(edwards25519.Point).ScalarMult(lm1, P)
		T.Add(T, P)
		four := new(edwards25519.Point).Double(T)
		four.Double(four)
		if four.Equal(edwards25519.NewIdentityPoint()) == 1 {
			continue // order < 8
		}
		pts := []*edwards25519.Point{edwards25519.NewIdentityPoint()}
		for i := 1; i < 8; i++ {
			pts = append(pts, new(edwards25519.Point).Add(pts[i-1], T))
		}
		return pts
	}
}

type sample struct {
	pub       [32]byte
	msg, sig  []byte
	name      string
	wantValid bool // only checked when set by construction
}

// signWith signs msg as the point A claims, with secret scalar a and
// nonce scalar r, allowing A and R to carry torsion: R = [r]B + TR,
// S = r + k·a (mod l). A = [a]B + TA.
func signWith(a, r *edwards25519.Scalar, TA, TR *edwards25519.Point, msg []byte) (pub [32]byte, sig []byte) {
	A := new(edwards25519.Point).ScalarBaseMult(a)
	A.Add(A, TA)
	R := new(edwards25519.Point).ScalarBaseMult(r)
	R.Add(R, TR)
	copy(pub[:], A.Bytes())
	h := sha512.New()
	h.Write(R.Bytes())
	h.Write(pub[:])
	h.Write(msg)
	k, _ := edwards25519.NewScalar().SetUniformBytes(h.Sum(nil))
	S := edwards25519.NewScalar().MultiplyAdd(k, a, r)
	return pub, append(R.Bytes(), S.Bytes()...)
}

func randScalar(r *rand.Rand) *edwards25519.Scalar {
	b := make([]byte, 64)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	s, _ := edwards25519.NewScalar().SetUniformBytes(b)
	return s
}

// samples builds the comparison set: valid signatures, corruptions, and
// the edge cases where Ed25519 implementations are known to disagree.
func samples(t testing.TB, n int) []sample {
	r := rand.New(rand.NewPCG(7, 11))
	tor := torsion(t)
	var out []sample
	msg := func() []byte {
		m := make([]byte, r.IntN(200))
		for i := range m {
			m[i] = byte(r.Uint32())
		}
		return m
	}
	for i := range n {
		seed := make([]byte, 32)
		binary.LittleEndian.PutUint64(seed, uint64(i))
		priv := ed25519.NewKeyFromSeed(seed)
		var pub [32]byte
		copy(pub[:], priv[32:])
		m := msg()
		sig := ed25519.Sign(priv, m)
		out = append(out, sample{pub, m, sig, "valid", true})
		// One flipped bit anywhere in the signature or the message.
		bad := append([]byte(nil), sig...)
		bad[r.IntN(64)] ^= 1 << r.IntN(8)
		out = append(out, sample{pub, m, bad, "flipped sig bit", false})
		if len(m) > 0 {
			m2 := append([]byte(nil), m...)
			m2[r.IntN(len(m2))] ^= 1 << r.IntN(8)
			out = append(out, sample{pub, m2, sig, "flipped msg bit", false})
		}
		// S + l: the same point equation, but a non-canonical S.
		S := leInt(sig[32:])
		S.Add(S, l)
		if S.BitLen() <= 256 {
			hi := append(append([]byte(nil), sig[:32]...), leBytes(S)...)
			out = append(out, sample{pub, m, hi, "S+l", false})
		}
		// Torsion on R, on A, on both; small-order keys and nonces.
		a, rr := randScalar(r), randScalar(r)
		ta, tr := tor[r.IntN(8)], tor[r.IntN(8)]
		p, s := signWith(a, rr, ta, tr, m)
		out = append(out, sample{pub: p, msg: m, sig: s, name: "torsion"})
		zero := edwards25519.NewScalar()
		p, s = signWith(zero, zero, tor[r.IntN(8)], tor[r.IntN(8)], m)
		out = append(out, sample{pub: p, msg: m, sig: s, name: "small order A and R"})
		p, s = signWith(zero, rr, tor[r.IntN(8)], tor[0], m)
		out = append(out, sample{pub: p, msg: m, sig: s, name: "small order A"})
		// A signature by the wrong key.
		out = append(out, sample{out[len(out)-3].pub, m, sig, "other key", false})
	}
	// Non-canonical encodings of small y (y + p) for A and R.
	for y := 0; y < 19; y++ {
		for _, sign := range []byte{0, 0x80} {
			enc := make([]byte, 32)
			enc[0] = byte(237 + y) // 2^255 - 19 + y, low byte
			for i := 1; i < 31; i++ {
				enc[i] = 0xff
			}
			enc[31] = 0x7f | sign
			var pub [32]byte
			copy(pub[:], enc)
			m := msg()
			sig := append(append([]byte(nil), enc...), make([]byte, 32)...)
			out = append(out, sample{pub: pub, msg: m, sig: sig, name: "non-canonical A and R"})
			for _, T := range tor {
				var tp [32]byte
				copy(tp[:], T.Bytes())
				out = append(out, sample{pub: tp, msg: m, sig: sig, name: "non-canonical R, small-order A"})
				out = append(out, sample{pub: pub, msg: m, sig: append(T.Bytes(), make([]byte, 32)...), name: "non-canonical A"})
			}
		}
	}
	return out
}

func TestMatchesStdlib(t *testing.T) {
	// Each sample brings new keys, so this is slow under -race; set
	// EDVERIFY_SAMPLES for a longer run (the fuzz test goes further).
	n := 600
	if testing.Short() {
		n = 100
	}
	if v, err := strconv.Atoi(os.Getenv("EDVERIFY_SAMPLES")); err == nil && v > 0 {
		n = v
	}
	var agreeTrue, agreeFalse int
	keys := map[[32]byte]*Key{}
	for _, s := range samples(t, n) {
		k, ok := keys[s.pub]
		if !ok {
			k = NewKey(s.pub)
			keys[s.pub] = k
		}
		want := ed25519.Verify(s.pub[:], s.msg, s.sig)
		got := k.Verify(s.msg, s.sig)
		if got != want {
			t.Fatalf("%s: edverify says %v, crypto/ed25519 says %v\npub %x\nmsg %x\nsig %x", s.name, got, want, s.pub, s.msg, s.sig)
		}
		if s.name == "valid" && !got {
			t.Fatalf("valid signature refused: pub %x", s.pub)
		}
		if got {
			agreeTrue++
		} else {
			agreeFalse++
		}
	}
	t.Logf("agreed on %d accepted and %d refused signatures", agreeTrue, agreeFalse)
	if agreeTrue == 0 || agreeFalse == 0 {
		t.Fatal("the comparison set does not exercise both answers")
	}
}

func TestBadInput(t *testing.T) {
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	var pub [32]byte
	copy(pub[:], priv[32:])
	k := NewKey(pub)
	sig := ed25519.Sign(priv, []byte("m"))
	for _, s := range [][]byte{nil, sig[:63], append(sig, 0)} {
		if k.Verify([]byte("m"), s) {
			t.Fatalf("signature of %d bytes accepted", len(s))
		}
	}
	// A key that is no curve point refuses everything.
	var notPoint [32]byte
	notPoint[0] = 2 // y = 2 has no x on the curve
	if _, err := new(edwards25519.Point).SetBytes(notPoint[:]); err == nil {
		t.Fatal("test key is a point after all")
	}
	if NewKey(notPoint).Verify([]byte("m"), sig) {
		t.Fatal("invalid key accepted a signature")
	}
}

// FuzzVerify builds a signature from the fuzzer's bytes, mutates it the
// ways that matter (torsion on A or R, S + l, flipped bits) and demands
// the same answer as crypto/ed25519.
func FuzzVerify(f *testing.F) {
	if _, err := os.Stat(filepath.Join("testdata", "fuzz", "FuzzVerify")); err != nil {
		f.Fatalf("seed corpus missing: %v", err)
	}
	tor := torsion(f)
	f.Fuzz(func(t *testing.T, seed, msg []byte, op uint8, flip uint16) {
		if op&64 != 0 && len(seed) >= 96 {
			// Raw bytes as key and signature: random points, non-points,
			// non-canonical encodings.
			var pub [32]byte
			copy(pub[:], seed[:32])
			sig := seed[32:96]
			want := ed25519.Verify(pub[:], msg, sig)
			if got := NewKey(pub).Verify(msg, sig); got != want {
				t.Fatalf("raw: edverify says %v, crypto/ed25519 says %v\npub %x\nmsg %x\nsig %x", got, want, pub, msg, sig)
			}
			return
		}
		if len(seed) < 64 {
			h := sha512.Sum512(seed)
			seed = append(h[:], seed...)
		}
		a, _ := edwards25519.NewScalar().SetUniformBytes(seed[:64])
		var r *edwards25519.Scalar
		if len(seed) >= 128 {
			r, _ = edwards25519.NewScalar().SetUniformBytes(seed[64:128])
		} else {
			r = edwards25519.NewScalar().Add(a, a)
		}
		ta, tr := tor[0], tor[0]
		if op&1 != 0 {
			ta = tor[op>>4&7]
		}
		if op&2 != 0 {
			tr = tor[flip>>13&7]
		}
		pub, sig := signWith(a, r, ta, tr, msg)
		if op&4 != 0 {
			S := leInt(sig[32:])
			S.Add(S, l)
			copy(sig[32:], leBytes(S))
		}
		if op&8 != 0 {
			sig[flip/8%64] ^= 1 << (flip % 8)
		}
		if op&128 != 0 && len(msg) > 0 {
			msg[int(flip)%len(msg)] ^= 1
		}
		want := ed25519.Verify(pub[:], msg, sig)
		if got := NewKey(pub).Verify(msg, sig); got != want {
			t.Fatalf("edverify says %v, crypto/ed25519 says %v\npub %x\nmsg %x\nsig %x", got, want, pub, msg, sig)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	msg := make([]byte, 300)
	sig := ed25519.Sign(priv, msg)
	pub := priv.Public().(ed25519.PublicKey)
	b.Run("crypto-ed25519", func(b *testing.B) {
		for b.Loop() {
			if !ed25519.Verify(pub, msg, sig) {
				b.Fatal("refused")
			}
		}
	})
	b.Run("edverify", func(b *testing.B) {
		k := NewKey([32]byte(pub))
		for b.Loop() {
			if !k.Verify(msg, sig) {
				b.Fatal("refused")
			}
		}
	})
	b.Run("newkey", func(b *testing.B) {
		base()
		for b.Loop() {
			NewKey([32]byte(pub))
		}
	})
}
