package sign

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// fixedTime is the sent time of every deterministic test message.
var fixedTime = time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)

// fixedNonce is bytes 0xa0..0xaf.
func fixedNonce() [NonceSize]byte {
	var n [NonceSize]byte
	for i := range n {
		n[i] = 0xa0 + byte(i)
	}
	return n
}

func testMsg() *Message {
	return &Message{
		Kind:    KindMsg,
		Root:    "remaphore",
		Channel: "ops",
		Dest:    "com.crypto.*",
		Verb:    "ping",
		UUID:    "6f1c2a9e-3b7d-4c55-9f0e-1d2c3b4a5f60",
		Sent:    fixedTime,
		Request: true,
		Nonce:   fixedNonce(),
		Payload: []byte("hello"),
	}
}

func testReply() *Message {
	m := testMsg()
	m.Kind = KindReply
	m.Request = false
	m.Payload = []byte("line one\nline two\n")
	m.RequestID = sha256.Sum256([]byte("request"))
	m.ResponderDest = "com.crypto.host.us"
	m.ExitCode = -1
	return m
}

func mustSeal(t testing.TB, m *Message, k PrivateKey) *Envelope {
	t.Helper()
	e, err := Seal(m, k)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	return e
}

// sameMessage reports the first field in which a and b differ, or "".
func sameMessage(a, b *Message) string {
	switch {
	case a.Kind != b.Kind:
		return fmt.Sprintf("Kind %v != %v", a.Kind, b.Kind)
	case a.Root != b.Root:
		return fmt.Sprintf("Root %q != %q", a.Root, b.Root)
	case a.Channel != b.Channel:
		return fmt.Sprintf("Channel %q != %q", a.Channel, b.Channel)
	case a.Sender != b.Sender:
		return fmt.Sprintf("Sender %s != %s", a.Sender, b.Sender)
	case a.Dest != b.Dest:
		return fmt.Sprintf("Dest %q != %q", a.Dest, b.Dest)
	case a.Verb != b.Verb:
		return fmt.Sprintf("Verb %q != %q", a.Verb, b.Verb)
	case a.UUID != b.UUID:
		return fmt.Sprintf("UUID %q != %q", a.UUID, b.UUID)
	case !a.Sent.Equal(b.Sent) || a.Sent.UnixNano() != b.Sent.UnixNano():
		return fmt.Sprintf("Sent %v != %v", a.Sent, b.Sent)
	case a.Request != b.Request:
		return fmt.Sprintf("Request %v != %v", a.Request, b.Request)
	case a.Nonce != b.Nonce:
		return fmt.Sprintf("Nonce %x != %x", a.Nonce, b.Nonce)
	case !bytes.Equal(a.Payload, b.Payload):
		return fmt.Sprintf("Payload %q != %q", a.Payload, b.Payload)
	case a.RequestID != b.RequestID:
		return fmt.Sprintf("RequestID %x != %x", a.RequestID, b.RequestID)
	case a.ResponderDest != b.ResponderDest:
		return fmt.Sprintf("ResponderDest %q != %q", a.ResponderDest, b.ResponderDest)
	case a.ExitCode != b.ExitCode:
		return fmt.Sprintf("ExitCode %d != %d", a.ExitCode, b.ExitCode)
	case a.Script != b.Script:
		return fmt.Sprintf("Script %v != %v", a.Script, b.Script)
	case !a.Accepted.Equal(b.Accepted) || !a.Finished.Equal(b.Finished):
		return fmt.Sprintf("Accepted/Finished %v/%v != %v/%v", a.Accepted, a.Finished, b.Accepted, b.Finished)
	}
	return ""
}

// wire is an encoder written from the format in doc.go, independent of
// Marshal, so tests can build bodies Marshal refuses to write.
type wire struct {
	tag, root, channel string
	sender             [32]byte
	dest, verb, uuid   string
	sent               uint64
	request            byte
	nonce              [NonceSize]byte
	payloadLen         *uint32 // overrides len(payload) when set
	payload            []byte
	reply              bool
	requestID          [IDSize]byte
	responderDest      string
	exitCode           uint32
	trailing           []byte
}

// field is one field's place in the signed bytes, named as Decode names it.
type field struct {
	name       string
	start, end int
}

func wireOf(m *Message) wire {
	w := wire{
		tag: tagMsg, root: m.Root, channel: m.Channel, sender: m.Sender,
		dest: m.Dest, verb: m.Verb, uuid: m.UUID, sent: uint64(m.Sent.UnixNano()),
		nonce: m.Nonce, payload: m.Payload,
	}
	if m.Request {
		w.request = 1
	}
	if m.Kind == KindReply {
		w.tag = tagReply
		w.reply = true
		w.requestID = m.RequestID
		w.responderDest = m.ResponderDest
		w.exitCode = uint32(m.ExitCode)
	}
	return w
}

func (w wire) encode() ([]byte, []field) {
	var b []byte
	var fs []field
	put := func(name string, v []byte) {
		fs = append(fs, field{name, len(b), len(b) + len(v)})
		b = append(b, v...)
	}
	str8 := func(name, s string) {
		put(name+" length", []byte{byte(len(s))})
		put(name, []byte(s))
	}
	str8("tag", w.tag)
	str8("subject root", w.root)
	str8("channel", w.channel)
	put("sender", w.sender[:])
	str8("destination", w.dest)
	str8("verb", w.verb)
	str8("uuid", w.uuid)
	put("sent time", binary.BigEndian.AppendUint64(nil, w.sent))
	put("request flag", []byte{w.request})
	put("nonce", w.nonce[:])
	pl := uint32(len(w.payload))
	if w.payloadLen != nil {
		pl = *w.payloadLen
	}
	put("payload length", binary.BigEndian.AppendUint32(nil, pl))
	put("payload", w.payload)
	if w.reply {
		put("request id", w.requestID[:])
		str8("responder destination", w.responderDest)
		put("exit code", binary.BigEndian.AppendUint32(nil, w.exitCode))
	}
	b = append(b, w.trailing...)
	return b, fs
}

// body signs the encoded bytes with k and returns signed||signature.
func (w wire) body(k PrivateKey) []byte {
	signed, _ := w.encode()
	return append(signed, k.Sign(signed)...)
}

func TestMarshal_MatchesSpecEncoder(t *testing.T) {
	k := keyFromSeed(t, fixedSeed())
	for _, m := range []*Message{testMsg(), testReply()} {
		m.Sender = k.Public()
		got, err := m.Marshal()
		if err != nil {
			t.Fatalf("%v: Marshal: %v", m.Kind, err)
		}
		want, _ := wireOf(m).encode()
		if !bytes.Equal(got, want) {
			t.Fatalf("%v: Marshal\n %x\nspec encoder\n %x", m.Kind, got, want)
		}
	}
}

func TestSealOpen_RoundTrip(t *testing.T) {
	k := keyFromSeed(t, fixedSeed())
	empty := testMsg()
	empty.Payload = nil
	negTime := testMsg()
	negTime.Sent = time.Unix(0, -1)
	maxed := testMsg()
	maxed.Root = strings.Repeat("r", MaxRoot)
	maxed.Channel = strings.Repeat("c", MaxChannel)
	maxed.Dest = strings.Repeat("d", MaxDest)
	maxed.Verb = strings.Repeat("v", MaxVerb)
	maxed.UUID = strings.Repeat("u", MaxUUID)
	maxed.Payload = bytes.Repeat([]byte{0xff}, MaxPayload)
	maxedReply := testReply()
	maxedReply.ResponderDest = strings.Repeat("x", MaxDest)
	maxedReply.ExitCode = -2147483648
	zeroReply := testReply()
	zeroReply.RequestID = [IDSize]byte{}
	zeroReply.ResponderDest = ""
	zeroReply.ExitCode = 0
	zeroReply.Payload = nil

	for name, m := range map[string]*Message{
		"msg": testMsg(), "reply": testReply(), "empty payload": empty,
		"negative time": negTime, "every field at its limit": maxed,
		"reply at its limits": maxedReply, "reply with zero fields": zeroReply,
	} {
		t.Run(name, func(t *testing.T) {
			e := mustSeal(t, m, k)
			if e.Sender != k.Public() || m.Sender != k.Public() {
				t.Fatalf("Seal did not set the sender")
			}
			if diff := sameMessage(&e.Message, m); diff != "" {
				t.Fatalf("sealed envelope differs from the message: %s", diff)
			}
			if err := e.Verify(); err != nil {
				t.Fatalf("Verify of a fresh seal: %v", err)
			}
			body := e.Body()
			if len(body) != len(e.Signed)+ed25519.SignatureSize || len(body) > MaxBody {
				t.Fatalf("body is %d bytes, signed %d", len(body), len(e.Signed))
			}
			o, err := Open(body)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if diff := sameMessage(&o.Message, m); diff != "" {
				t.Fatalf("opened envelope differs: %s", diff)
			}
			if o.Kind != m.Kind {
				t.Fatalf("kind %v, want %v", o.Kind, m.Kind)
			}
			if !bytes.Equal(o.Signed, e.Signed) || o.Signature != e.Signature || o.ID != e.ID {
				t.Fatalf("opened Signed/Signature/ID differ from the sealed ones")
			}
		})
	}
}

func TestOpen_RefusesEveryFlippedByte(t *testing.T) {
	k := keyFromSeed(t, fixedSeed())
	for _, m := range []*Message{testMsg(), testReply()} {
		m.Payload = []byte("x")
		body := mustSeal(t, m, k).Body()
		for i := range body {
			for _, mask := range []byte{0x01, 0x80, 0xff} {
				b := append([]byte{}, body...)
				b[i] ^= mask
				e, err := Open(b)
				if err == nil {
					t.Fatalf("%v: byte %d ^ %#x: Open accepted a changed body (%+v)", m.Kind, i, mask, e.Message)
				}
				if e != nil {
					t.Fatalf("%v: byte %d: Open returned an envelope with error %v", m.Kind, i, err)
				}
				if _, derr := Decode(b); derr == nil && !errors.Is(err, ErrBadSignature) {
					t.Fatalf("%v: byte %d: decodes but Open error is %v, want ErrBadSignature", m.Kind, i, err)
				}
				if !errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
					t.Fatalf("%v: byte %d: error %v matches no sentinel", m.Kind, i, err)
				}
			}
		}
	}
}

func TestOpen_SenderMustBeTheSigner(t *testing.T) {
	a := keyFromSeed(t, fixedSeed())
	b := keyFromSeed(t, seedN(100))
	for _, m := range []*Message{testMsg(), testReply()} {
		e := mustSeal(t, m, a)
		// Same fields, sender B, still A's signature.
		w := wireOf(&e.Message)
		w.sender = b.Public()
		signed, _ := w.encode()
		forged := append(signed, e.Signature[:]...)
		d, err := Decode(forged)
		if err != nil {
			t.Fatalf("Decode of the forged body: %v", err)
		}
		if d.Sender != b.Public() {
			t.Fatalf("forged sender not decoded")
		}
		if _, err := Open(forged); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("%v signed by A with sender B: Open err = %v, want ErrBadSignature", m.Kind, err)
		}
		// And the other way: sender A, signed by B.
		w.sender = a.Public()
		forged = w.body(b)
		if _, err := Open(forged); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("%v sender A signed by B: Open err = %v, want ErrBadSignature", m.Kind, err)
		}
		// A signature replaced by another valid signature of other bytes.
		om := testMsg()
		om.Verb = "other"
		other := mustSeal(t, om, a)
		mixed := append(append([]byte{}, e.Signed...), other.Signature[:]...)
		if _, err := Open(mixed); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("%v with another message's signature: Open err = %v", m.Kind, err)
		}
	}
}

func TestDecode_Refuses(t *testing.T) {
	k := keyFromSeed(t, fixedSeed())
	msg := testMsg()
	msg.Sender = k.Public()
	reply := testReply()
	reply.Sender = k.Public()
	u32 := func(v uint32) *uint32 { return &v }

	cases := []struct {
		name string
		w    wire
		want error
	}{
		{"unknown tag v2", func() wire { w := wireOf(msg); w.tag = "remaphore/v2/msg"; return w }(), ErrMalformed},
		{"unknown tag case", func() wire { w := wireOf(msg); w.tag = "Remaphore/v1/msg"; return w }(), ErrMalformed},
		{"tag with a NUL", func() wire { w := wireOf(msg); w.tag = tagMsg + "\x00"; return w }(), ErrMalformed},
		{"empty tag", func() wire { w := wireOf(msg); w.tag = ""; return w }(), ErrMalformed},
		{"tag prefix", func() wire { w := wireOf(msg); w.tag = "remaphore/v1/"; return w }(), ErrMalformed},
		{"tag too long", func() wire { w := wireOf(msg); w.tag = strings.Repeat("t", 33); return w }(), nil},
		{"trailing byte msg", func() wire { w := wireOf(msg); w.trailing = []byte{0}; return w }(), ErrMalformed},
		{"trailing bytes reply", func() wire { w := wireOf(reply); w.trailing = []byte("xyz"); return w }(), ErrMalformed},
		{"request flag 2", func() wire { w := wireOf(msg); w.request = 2; return w }(), ErrMalformed},
		{"request flag 255", func() wire { w := wireOf(msg); w.request = 255; return w }(), ErrMalformed},
		{"root over limit", func() wire { w := wireOf(msg); w.root = strings.Repeat("r", MaxRoot+1); return w }(), ErrTooLarge},
		{"channel over limit", func() wire { w := wireOf(msg); w.channel = strings.Repeat("c", MaxChannel+1); return w }(), ErrTooLarge},
		{"verb over limit", func() wire { w := wireOf(msg); w.verb = strings.Repeat("v", MaxVerb+1); return w }(), ErrTooLarge},
		{"uuid over limit", func() wire { w := wireOf(msg); w.uuid = strings.Repeat("u", MaxUUID+1); return w }(), ErrTooLarge},
		{"payload over limit", func() wire { w := wireOf(msg); w.payload = make([]byte, MaxPayload+1); return w }(), ErrTooLarge},
		{"payload length over limit, no bytes", func() wire { w := wireOf(msg); w.payloadLen = u32(MaxPayload + 1); return w }(), ErrTooLarge},
		{"payload length 0xffffffff", func() wire { w := wireOf(msg); w.payloadLen = u32(0xffffffff); return w }(), ErrTooLarge},
		{"payload length one short", func() wire { w := wireOf(msg); w.payloadLen = u32(uint32(len(msg.Payload)) - 1); return w }(), ErrMalformed},
		{"payload length one long", func() wire { w := wireOf(msg); w.payloadLen = u32(uint32(len(msg.Payload)) + 1); return w }(), ErrMalformed},
		{"reply fields after a msg tag", func() wire { w := wireOf(reply); w.tag = tagMsg; return w }(), ErrMalformed},
		{"msg fields after a reply tag", func() wire { w := wireOf(msg); w.tag = tagReply; return w }(), ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := c.w.body(k)
			e, err := Decode(body)
			if err == nil {
				t.Fatalf("Decode accepted: %+v", e.Message)
			}
			if e != nil {
				t.Fatalf("Decode returned an envelope and %v", err)
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("err = %v matches neither ErrMalformed nor ErrTooLarge", err)
			}
			if _, oerr := Open(body); oerr == nil || oerr.Error() != err.Error() {
				t.Fatalf("Open err = %v, Decode err = %v", oerr, err)
			}
		})
	}
}

func TestDecode_AcceptsFieldsAtTheirLimit(t *testing.T) {
	k := keyFromSeed(t, fixedSeed())
	w := wireOf(testReply())
	w.sender = k.Public()
	w.root = strings.Repeat("r", MaxRoot)
	w.channel = strings.Repeat("c", MaxChannel)
	w.dest = strings.Repeat("d", MaxDest)
	w.verb = strings.Repeat("v", MaxVerb)
	w.uuid = strings.Repeat("u", MaxUUID)
	w.payload = make([]byte, MaxPayload)
	w.responderDest = strings.Repeat("x", MaxDest)
	body := w.body(k)
	if len(body) > MaxBody {
		t.Fatalf("a body with every field at its limit is %d bytes, over MaxBody %d", len(body), MaxBody)
	}
	if _, err := Open(body); err != nil {
		t.Fatalf("Open of a body with every field at its limit: %v", err)
	}
}

func TestDecode_TruncatedAtEachField(t *testing.T) {
	k := keyFromSeed(t, fixedSeed())
	for _, m := range []*Message{testMsg(), testReply()} {
		// Long enough strings that most cuts pass the minimum size check
		// and reach the field-by-field parser.
		m.Root = strings.Repeat("r", 100)
		m.Sender = k.Public()
		w := wireOf(m)
		signed, fields := w.encode()
		sig := k.Sign(signed)
		if !bytes.Equal(signed, mustSeal(t, m, k).Signed) {
			t.Fatalf("spec encoder and Seal disagree")
		}
		for cut := 0; cut < len(signed); cut++ {
			body := append(append([]byte{}, signed[:cut]...), sig...)
			_, err := Decode(body)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("%v cut at %d: err = %v, want ErrMalformed", m.Kind, cut, err)
			}
			if len(body) < fixedMsg+ed25519.SignatureSize {
				continue
			}
			// The error names the field the cut falls in.
			var in string
			for _, f := range fields {
				if f.start <= cut && cut < f.end {
					in = f.name
					break
				}
			}
			if want := "truncated at " + in + " "; !strings.Contains(err.Error(), want) {
				t.Fatalf("%v cut at %d: err = %q, want it to say %q", m.Kind, cut, err, want)
			}
		}
		// The body cut anywhere, signature included, is refused too.
		body := append(append([]byte{}, signed...), sig...)
		for cut := 0; cut < len(body); cut++ {
			if _, err := Open(body[:cut]); err == nil {
				t.Fatalf("%v: Open accepted the body cut at %d", m.Kind, cut)
			}
		}
	}
}

func TestDecode_SizeCheckedFirst(t *testing.T) {
	for _, n := range []int{MaxBody + 1, MaxBody + 4096, 2 * MaxBody} {
		_, err := Decode(make([]byte, n))
		if !errors.Is(err, ErrTooLarge) || errors.Is(err, ErrMalformed) {
			t.Fatalf("%d zero bytes: err = %v, want ErrTooLarge only", n, err)
		}
		if _, err := Open(make([]byte, n)); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("Open of %d zero bytes: err = %v, want ErrTooLarge", n, err)
		}
	}
	// At MaxBody exactly, the size is fine and the bytes are not a v1 envelope.
	if _, err := Decode(make([]byte, MaxBody)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("%d zero bytes: err = %v, want ErrMalformed", MaxBody, err)
	}
	// A valid envelope with a big payload grown past MaxBody by trailing
	// bytes is refused for its size, not its trailing bytes.
	k := keyFromSeed(t, fixedSeed())
	w := wireOf(testMsg())
	w.payload = make([]byte, MaxPayload)
	w.trailing = make([]byte, MaxBody)
	if _, err := Decode(w.body(k)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized body: err = %v, want ErrTooLarge", err)
	}
	for _, n := range []int{0, 1, 64, fixedMsg + ed25519.SignatureSize - 1} {
		if _, err := Decode(make([]byte, n)); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%d bytes: err = %v, want ErrMalformed", n, err)
		}
	}
	if _, err := Decode(nil); !errors.Is(err, ErrMalformed) {
		t.Fatalf("nil body: err = %v, want ErrMalformed", err)
	}
}

func TestMarshal_Limits(t *testing.T) {
	over := map[string]func(m *Message){
		"root":                  func(m *Message) { m.Root = strings.Repeat("r", MaxRoot+1) },
		"channel":               func(m *Message) { m.Channel = strings.Repeat("c", MaxChannel+1) },
		"destination":           func(m *Message) { m.Dest = strings.Repeat("d", MaxDest+1) },
		"verb":                  func(m *Message) { m.Verb = strings.Repeat("v", MaxVerb+1) },
		"uuid":                  func(m *Message) { m.UUID = strings.Repeat("u", MaxUUID+1) },
		"payload":               func(m *Message) { m.Payload = make([]byte, MaxPayload+1) },
		"responder destination": func(m *Message) { m.ResponderDest = strings.Repeat("x", MaxDest+1) },
	}
	k := keyFromSeed(t, fixedSeed())
	for name, set := range over {
		m := testReply()
		set(m)
		if _, err := m.Marshal(); !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s one over its limit: Marshal err = %v, want ErrTooLarge", name, err)
		}
		if _, err := Seal(m, k); !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s one over its limit: Seal err = %v, want ErrTooLarge", name, err)
		}
		if name == "responder destination" {
			continue
		}
		m = testMsg()
		set(m)
		if _, err := m.Marshal(); !errors.Is(err, ErrTooLarge) {
			t.Errorf("msg %s one over its limit: Marshal err = %v, want ErrTooLarge", name, err)
		}
	}

	for name, m := range map[string]*Message{
		"kind 0":                 {Kind: 0, Sent: fixedTime},
		"kind 3":                 {Kind: 3, Sent: fixedTime},
		"msg with exit code":     func() *Message { m := testMsg(); m.ExitCode = 1; return m }(),
		"msg with request id":    func() *Message { m := testMsg(); m.RequestID[0] = 1; return m }(),
		"msg with responder dst": func() *Message { m := testMsg(); m.ResponderDest = "x"; return m }(),
	} {
		if _, err := m.Marshal(); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Marshal err = %v, want ErrMalformed", name, err)
		}
		if _, err := Seal(m, k); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Seal err = %v, want ErrMalformed", name, err)
		}
	}

	m := testMsg()
	m.Sent = time.Time{}
	if _, err := Seal(m, k); !errors.Is(err, ErrMalformed) {
		t.Errorf("no sent time: Seal err = %v, want ErrMalformed", err)
	}
	if _, err := Seal(testMsg(), PrivateKey{}); !errors.Is(err, ErrBadKey) {
		t.Errorf("zero key: Seal err = %v, want ErrBadKey", err)
	}
}

func TestDecode_DomainTagSeparatesReplies(t *testing.T) {
	k := keyFromSeed(t, fixedSeed())
	r := mustSeal(t, testReply(), k)
	d, err := Open(r.Body())
	if err != nil {
		t.Fatal(err)
	}
	if d.Kind != KindReply {
		t.Fatalf("a reply body opened as %v", d.Kind)
	}
	// A message with every field the two kinds share has other signed
	// bytes, so the reply's signature never covers it.
	m := r.Message
	m.Kind = KindMsg
	m.RequestID, m.ResponderDest, m.ExitCode = [IDSize]byte{}, "", 0
	signed, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(signed, r.Signed) || bytes.HasPrefix(r.Signed, signed) {
		t.Fatalf("a message's signed bytes are (a prefix of) the reply's")
	}
	if MessageID(signed) == r.ID {
		t.Fatalf("message and reply share an id")
	}
	if _, err := Open(append(signed, r.Signature[:]...)); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("reply signature on the message bytes: err = %v, want ErrBadSignature", err)
	}
	// Swapping the tag in the reply's own bytes leaves reply fields over,
	// which a message refuses as trailing bytes; and the other way round,
	// a message's bytes under a reply tag are too short.
	w := wireOf(&r.Message)
	w.tag = tagMsg
	if _, err := Decode(w.body(k)); err == nil || !strings.Contains(err.Error(), "trailing") {
		t.Fatalf("reply fields under a msg tag: err = %v, want trailing bytes", err)
	}
	w = wireOf(&m)
	w.tag = tagReply
	if _, err := Decode(w.body(k)); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("message fields under a reply tag: err = %v, want truncated", err)
	}
	// The same fields sealed as a message and as a reply never collide.
	sm := mustSeal(t, &m, k)
	if bytes.Equal(sm.Signed, r.Signed) || sm.ID == r.ID || sm.Signature == r.Signature {
		t.Fatalf("message and reply with the same fields collide")
	}
	if d, err := Open(sm.Body()); err != nil || d.Kind != KindMsg {
		t.Fatalf("message opened as %v, %v", d, err)
	}
}

func TestEnvelope_ID(t *testing.T) {
	k := keyFromSeed(t, fixedSeed())
	hexID := regexp.MustCompile(`^[0-9a-f]{64}$`)
	base := mustSeal(t, testMsg(), k)
	sum := sha256.Sum256(base.Signed)
	if base.ID != hex.EncodeToString(sum[:]) || base.ID != MessageID(base.Signed) {
		t.Fatalf("ID %s is not the hex SHA-256 of the signed bytes", base.ID)
	}
	if !hexID.MatchString(base.ID) {
		t.Fatalf("ID %q is not 64 lowercase hex characters", base.ID)
	}
	// The signature is not part of the id.
	if base.ID == MessageID(base.Body()) {
		t.Fatalf("ID covers the signature")
	}
	changes := map[string]func(m *Message){
		"root":    func(m *Message) { m.Root = "remaphore2" },
		"channel": func(m *Message) { m.Channel = "ops2" },
		"no channel": func(m *Message) {
			m.Channel = ""
		},
		// Moving a byte between root and channel changes the id: the
		// length prefixes keep "ab"+"c" apart from "a"+"bc".
		"root/channel boundary": func(m *Message) { m.Root, m.Channel = "remaphoreo", "ps" },
		"nonce":                 func(m *Message) { m.Nonce[15] ^= 1 },
		"sent":                  func(m *Message) { m.Sent = m.Sent.Add(time.Nanosecond) },
		"request":               func(m *Message) { m.Request = !m.Request },
	}
	seen := map[string]string{base.ID: "base"}
	for name, change := range changes {
		m := testMsg()
		change(m)
		e := mustSeal(t, m, k)
		if prev, ok := seen[e.ID]; ok {
			t.Errorf("changing %s gives the id of %s", name, prev)
		}
		seen[e.ID] = name
		d, err := Open(e.Body())
		if err != nil || d.ID != e.ID {
			t.Errorf("%s: Open gives id %v, %v; want %s", name, d, err, e.ID)
		}
	}
}

func TestEnvelope_IDBytes(t *testing.T) {
	k := keyFromSeed(t, fixedSeed())
	e := mustSeal(t, testMsg(), k)
	d, err := Decode(e.Body())
	if err != nil {
		t.Fatal(err)
	}
	for _, env := range []*Envelope{e, d} {
		id, ok := env.IDBytes()
		if !ok || id != sha256.Sum256(env.Signed) {
			t.Fatalf("IDBytes = %x, %v; want the SHA-256 of the signed bytes", id, ok)
		}
		if want, err := ParseID(env.ID); err != nil || id != want {
			t.Fatalf("IDBytes = %x, ParseID = %x, %v", id, want, err)
		}
	}
	// Every id ParseID refuses, IDBytes refuses too.
	upper := strings.ToUpper(e.ID)
	for _, s := range []string{upper, "", e.ID[:63], e.ID + "0", "g" + e.ID[1:], " " + e.ID[1:], "0x" + e.ID[2:], "é" + e.ID[2:],
		e.ID[:10] + "A" + e.ID[11:], e.ID[:63] + "G", e.ID[:63] + ":", e.ID[:63] + "/", e.ID[:63] + "`"} {
		if _, perr := ParseID(s); perr == nil {
			continue
		}
		if id, ok := (&Envelope{ID: s}).IDBytes(); ok || id != [IDSize]byte{} {
			t.Errorf("IDBytes of %q = %x, %v; want the zero id, false", s, id, ok)
		}
	}
	// Each hex digit reads as ParseID reads it.
	for c := range 256 {
		s := strings.Repeat("0", 63) + string(rune(c))
		if c >= 0x80 {
			continue
		}
		want, perr := ParseID(s)
		got, ok := (&Envelope{ID: s}).IDBytes()
		if ok != (perr == nil) || (ok && got != want) {
			t.Errorf("last digit %q: IDBytes = %x, %v; ParseID = %x, %v", rune(c), got, ok, want, perr)
		}
	}
}

func TestParseID(t *testing.T) {
	k := keyFromSeed(t, fixedSeed())
	e := mustSeal(t, testMsg(), k)
	id, err := ParseID(e.ID)
	if err != nil {
		t.Fatalf("ParseID(%s): %v", e.ID, err)
	}
	if id != sha256.Sum256(e.Signed) {
		t.Fatalf("ParseID gives %x, want the SHA-256 of the signed bytes", id)
	}
	if hex.EncodeToString(id[:]) != e.ID {
		t.Fatalf("round trip: %x != %s", id, e.ID)
	}
	upper := strings.ToUpper(e.ID)
	if upper == e.ID {
		t.Fatalf("test id %s has no letters", e.ID)
	}
	oneUpper := []byte(e.ID)
	for i, c := range oneUpper {
		if c >= 'a' && c <= 'f' {
			oneUpper[i] = c - 'a' + 'A'
			break
		}
	}
	for name, s := range map[string]string{
		"upper case":     upper,
		"one upper":      string(oneUpper),
		"empty":          "",
		"short":          e.ID[:63],
		"shorter":        e.ID[:62],
		"long":           e.ID + "0",
		"non-hex":        "g" + e.ID[1:],
		"space":          " " + e.ID[1:],
		"0x prefix":      "0x" + e.ID[2:],
		"multibyte rune": "é" + e.ID[2:],
	} {
		if _, err := ParseID(s); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: ParseID(%q) err = %v, want ErrMalformed", name, s, err)
		}
	}
}

func TestSeal_Nonce(t *testing.T) {
	k := keyFromSeed(t, fixedSeed())
	zero := func() *Message { m := testMsg(); m.Nonce = [NonceSize]byte{}; return m }
	m1, m2 := zero(), zero()
	e1, e2 := mustSeal(t, m1, k), mustSeal(t, m2, k)
	if e1.Nonce == ([NonceSize]byte{}) || e2.Nonce == ([NonceSize]byte{}) {
		t.Fatalf("Seal left a zero nonce")
	}
	if e1.Nonce == e2.Nonce || e1.ID == e2.ID || bytes.Equal(e1.Body(), e2.Body()) {
		t.Fatalf("two seals with a zero nonce are equal: nonce %x", e1.Nonce)
	}
	// Seal writes the nonce it drew back into the message.
	if m1.Nonce != e1.Nonce {
		t.Fatalf("m.Nonce %x, envelope nonce %x", m1.Nonce, e1.Nonce)
	}
	// A set nonce is used as is: sealing is deterministic.
	f1, f2 := mustSeal(t, testMsg(), k), mustSeal(t, testMsg(), k)
	if f1.Nonce != fixedNonce() {
		t.Fatalf("Seal replaced a set nonce")
	}
	if !bytes.Equal(f1.Body(), f2.Body()) || f1.ID != f2.ID {
		t.Fatalf("two seals of the same message with a set nonce differ")
	}
}

func TestEnvelope_BodyIsTheInput(t *testing.T) {
	k := keyFromSeed(t, fixedSeed())
	for _, m := range []*Message{testMsg(), testReply()} {
		body := mustSeal(t, m, k).Body()
		e, err := Decode(body)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(e.Body(), body) {
			t.Fatalf("%v: Body() differs from the decoded bytes", m.Kind)
		}
		again, err := e.Message.Marshal()
		if err != nil || !bytes.Equal(again, e.Signed) {
			t.Fatalf("%v: Marshal of the decoded message differs from Signed (%v)", m.Kind, err)
		}
		// Body returns a fresh slice each time.
		b := e.Body()
		b[0] ^= 0xff
		if !bytes.Equal(e.Body(), body) {
			t.Fatalf("Body() aliases the envelope")
		}
	}
}

func TestDecode_DoesNotAliasInput(t *testing.T) {
	k := keyFromSeed(t, fixedSeed())
	for _, m := range []*Message{testMsg(), testReply()} {
		body := mustSeal(t, m, k).Body()
		orig := append([]byte{}, body...)
		e, err := Open(body)
		if err != nil {
			t.Fatal(err)
		}
		snapshot := *e
		snapshot.Payload = append([]byte{}, e.Payload...)
		snapshot.Signed = append([]byte{}, e.Signed...)
		for i := range body {
			body[i] ^= 0xff
		}
		if diff := sameMessage(&e.Message, &snapshot.Message); diff != "" {
			t.Fatalf("%v: changing the input changed the envelope: %s", m.Kind, diff)
		}
		if !bytes.Equal(e.Signed, snapshot.Signed) || e.Signature != snapshot.Signature || e.ID != snapshot.ID {
			t.Fatalf("%v: changing the input changed Signed, Signature or ID", m.Kind)
		}
		if !bytes.Equal(e.Body(), orig) {
			t.Fatalf("%v: Body() no longer gives the original bytes", m.Kind)
		}
		if err := e.Verify(); err != nil {
			t.Fatalf("%v: envelope no longer verifies: %v", m.Kind, err)
		}
	}
}

func TestEnvelope_VerifyAfterChange(t *testing.T) {
	k := keyFromSeed(t, fixedSeed())
	e := mustSeal(t, testMsg(), k)
	e.Signature[0] ^= 1
	if err := e.Verify(); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("changed signature: Verify err = %v", err)
	}
	e.Signature[0] ^= 1
	e.Sender = keyFromSeed(t, seedN(9)).Public()
	if err := e.Verify(); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("changed sender: Verify err = %v", err)
	}
}

func TestKind_String(t *testing.T) {
	for k, want := range map[Kind]string{KindMsg: "msg", KindReply: "reply", 0: "kind(0)", 9: "kind(9)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", uint8(k), got, want)
		}
	}
}

func TestErrors_AreDistinct(t *testing.T) {
	all := []error{ErrBadKey, ErrKeyMismatch, ErrTooLarge, ErrMalformed, ErrBadSignature}
	for i, a := range all {
		for j, b := range all {
			if (i == j) != errors.Is(a, b) {
				t.Errorf("errors.Is(%v, %v) = %v", a, b, errors.Is(a, b))
			}
		}
		if a.Error() != strings.ToLower(a.Error()) {
			t.Errorf("error %q is not lower case", a)
		}
	}
}
