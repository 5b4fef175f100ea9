package sign

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// fuzzCorpusDir is FuzzDecode's seed corpus; go test runs every file in it
// as a test case, and FuzzDecode refuses to run without it.
const fuzzCorpusDir = "testdata/fuzz/FuzzDecode"

// minFuzzSeeds is the fewest corpus files FuzzDecode accepts.
const minFuzzSeeds = 5

func FuzzDecode(f *testing.F) {
	ents, err := os.ReadDir(fuzzCorpusDir)
	if err != nil {
		f.Fatalf("FuzzDecode seed corpus: %v (a missing corpus makes this fuzz test a no-op; regenerate with go test ./sign/ -run TestGoldenVectors -update)", err)
	}
	files := 0
	for _, e := range ents {
		if e.Type().IsRegular() {
			files++
		}
	}
	if files < minFuzzSeeds {
		f.Fatalf("FuzzDecode seed corpus %s holds %d files, want at least %d", fuzzCorpusDir, files, minFuzzSeeds)
	}

	f.Fuzz(func(t *testing.T, body []byte) {
		in := append([]byte{}, body...)
		e, err := Decode(in)
		if err != nil {
			if e != nil {
				t.Fatalf("Decode returned an envelope and an error %v", err)
			}
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Decode error %v is neither ErrMalformed nor ErrTooLarge", err)
			}
			if o, oerr := Open(body); oerr == nil || o != nil {
				t.Fatalf("Decode failed (%v) but Open gave %v, %v", err, o, oerr)
			}
			return
		}

		// Decode then encode gives back the input.
		if got := e.Body(); !bytes.Equal(got, body) {
			t.Fatalf("Body() differs from the decoded input:\n got %x\nwant %x", got, body)
		}
		signed, err := e.Message.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a decoded message: %v", err)
		}
		if !bytes.Equal(signed, e.Signed) {
			t.Fatalf("Marshal of the decoded message differs from Signed:\n got %x\nwant %x", signed, e.Signed)
		}
		if len(e.Signed)+ed25519.SignatureSize != len(body) || !bytes.Equal(e.Signature[:], body[len(e.Signed):]) {
			t.Fatalf("Signed/Signature do not split the body")
		}
		if sum := sha256.Sum256(e.Signed); e.ID != fmt.Sprintf("%x", sum) {
			t.Fatalf("ID %s is not the hex SHA-256 of Signed", e.ID)
		}
		if e.Kind != KindMsg && e.Kind != KindReply && e.Kind != KindReceipt {
			t.Fatalf("decoded kind %v", e.Kind)
		}

		// The envelope does not alias its input.
		for i := range in {
			in[i] ^= 0xff
		}
		if !bytes.Equal(e.Body(), body) {
			t.Fatalf("changing the input changed the envelope")
		}

		// Open succeeds exactly when the signature verifies.
		valid := ed25519.Verify(e.Sender[:], e.Signed, e.Signature[:])
		o, err := Open(body)
		if valid != (err == nil) {
			t.Fatalf("ed25519.Verify = %v but Open error = %v", valid, err)
		}
		if !valid {
			if !errors.Is(err, ErrBadSignature) || o != nil {
				t.Fatalf("bad signature: Open gave %v, %v; want nil, ErrBadSignature", o, err)
			}
			return
		}
		if diff := sameMessage(&o.Message, &e.Message); diff != "" || o.ID != e.ID {
			t.Fatalf("Open and Decode disagree: %s", diff)
		}
	})
}

// writeFuzzSeeds writes FuzzDecode's seed corpus from the golden bodies
// (plain message, request, reply, empty payload, receipt, in that order): the bodies
// themselves, truncations, near misses and garbage.
func writeFuzzSeeds(t *testing.T, golden [][]byte) {
	t.Helper()
	if len(golden) != 5 {
		t.Fatalf("writeFuzzSeeds wants the 5 golden bodies, got %d", len(golden))
	}
	plain, request, reply, empty, receipt := golden[0], golden[1], golden[2], golden[3], golden[4]
	decode := func(b []byte) *Envelope {
		e, err := Decode(b)
		if err != nil {
			t.Fatalf("golden body does not decode: %v", err)
		}
		return e
	}
	req := decode(request)
	rep := decode(reply)

	// A message whose fields are fine but whose request flag is 2, and a
	// reply with one trailing byte, both with their old signatures.
	flag2 := wireOf(&req.Message)
	flag2.request = 2
	flag2Signed, _ := flag2.encode()
	trailing := wireOf(&rep.Message)
	trailing.trailing = []byte{0}
	trailingSigned, _ := trailing.encode()
	hugeLen := wireOf(&decode(plain).Message)
	hugeLen.payloadLen = new(uint32)
	*hugeLen.payloadLen = 0xffffffff
	hugeLenSigned, _ := hugeLen.encode()

	garbage := make([]byte, 0, 256)
	for h := sha256.Sum256([]byte("remaphore fuzz garbage")); len(garbage) < 240; h = sha256.Sum256(h[:]) {
		garbage = append(garbage, h[:]...)
	}

	seeds := map[string][]byte{
		"golden-plain":           plain,
		"golden-request":         request,
		"golden-reply":           reply,
		"golden-empty-payload":   empty,
		"truncated-signed-half":  append(append([]byte{}, req.Signed[:len(req.Signed)/2]...), req.Signature[:]...),
		"truncated-signature":    reply[:len(reply)-1],
		"truncated-below-min":    plain[:fixedMsg+ed25519.SignatureSize-1],
		"reply-trailing-byte":    append(trailingSigned, rep.Signature[:]...),
		"request-flag-2":         append(flag2Signed, req.Signature[:]...),
		"payload-length-max-u32": append(hugeLenSigned, req.Signature[:]...),
		"garbage-hash-chain":     garbage,
		"garbage-zeros":          make([]byte, fixedMsg+ed25519.SignatureSize),
		"tag-only":               append([]byte{byte(len(tagMsg))}, tagMsg...),
		"golden-receipt":         receipt,
	}
	// A receipt whose script flag is 2, and one claiming an exit code with
	// no script, both with the receipt's old signature.
	for name, edit := range receiptEdits {
		seeds[name] = edit(receipt)
	}
	if err := os.MkdirAll(fuzzCorpusDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range seeds {
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(filepath.Join(fuzzCorpusDir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
