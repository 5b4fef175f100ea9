package sign

import (
	"bytes"
	"crypto/ed25519"
	"testing"
)

// The envelope benchmarks sit next to bare ed25519 over a byte slice as
// long as the envelope's signed bytes, so
//
//	go test -bench . -benchmem ./sign/
//
// shows what the envelope costs on top of the signature itself.

var benchSizes = []struct {
	name string
	n    int
}{
	{"64B", 64},
	{"4KiB", 4096},
}

// benchEnvelope seals a message with an n-byte payload.
func benchEnvelope(b *testing.B, n int) (*Message, PrivateKey, *Envelope) {
	b.Helper()
	k := keyFromSeed(b, fixedSeed())
	m := testMsg()
	m.Payload = bytes.Repeat([]byte{'p'}, n)
	e := mustSeal(b, m, k)
	return m, k, e
}

func BenchmarkSeal(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			m, k, _ := benchEnvelope(b, s.n)
			b.ReportAllocs()
			for b.Loop() {
				mm := *m
				mm.Nonce = [NonceSize]byte{} // draw a nonce, as the CLI does
				if _, err := Seal(&mm, k); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkBareEd25519Sign(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			_, _, e := benchEnvelope(b, s.n)
			priv := ed25519.NewKeyFromSeed(fixedSeed())
			data := append([]byte{}, e.Signed...)
			b.ReportAllocs()
			for b.Loop() {
				_ = ed25519.Sign(priv, data)
			}
		})
	}
}

func BenchmarkOpen(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			_, _, e := benchEnvelope(b, s.n)
			body := e.Body()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Open(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkBareEd25519Verify(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			_, _, e := benchEnvelope(b, s.n)
			priv := ed25519.NewKeyFromSeed(fixedSeed())
			pub := priv.Public().(ed25519.PublicKey)
			data := append([]byte{}, e.Signed...)
			sig := ed25519.Sign(priv, data)
			b.ReportAllocs()
			for b.Loop() {
				if !ed25519.Verify(pub, data, sig) {
					b.Fatal("verify failed")
				}
			}
		})
	}
}

// BenchmarkDecode is Decode alone: what the auditor and receivers pay
// per message besides the signature check.
func BenchmarkDecode(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			_, _, e := benchEnvelope(b, s.n)
			body := e.Body()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decode(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
