package sign

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"
)

// receiptEdits turn a valid receipt body into hostile ones (signature kept):
// the fuzz seed corpus holds them and TestReceipt_Strict checks each.
var receiptEdits = map[string]func(body []byte) []byte{
	"receipt-script-flag-2": func(body []byte) []byte {
		b := bytes.Clone(body)
		b[len(b)-ed25519.SignatureSize-8-8-4-1] = 2
		return b
	},
	"receipt-exit-without-script": func(body []byte) []byte {
		b := bytes.Clone(body)
		b[len(b)-ed25519.SignatureSize-8-8-4-1] = 0 // exit code stays 3
		return b
	},
	"receipt-zero-message-id": func(body []byte) []byte {
		b := bytes.Clone(body)
		n := len(b) - ed25519.SignatureSize - 8 - 8 - 4 - 1
		dl := int(b[n-1-len("com.crypto.host.us")]) // dest length byte
		at := n - 1 - dl - IDSize
		copy(b[at:at+IDSize], make([]byte, IDSize))
		return b
	},
	"receipt-trailing-byte": func(body []byte) []byte {
		n := len(body) - ed25519.SignatureSize
		return append(append(bytes.Clone(body[:n]), 0), body[n:]...)
	},
}

func goldenReceipt(t *testing.T) []byte {
	t.Helper()
	for _, v := range readVectors(t) {
		if v.Kind == "receipt" {
			m, k := v.message(t)
			return mustSeal(t, m, k).Body()
		}
	}
	t.Fatal("no receipt in the golden vectors")
	return nil
}

func TestReceipt_RoundTrip(t *testing.T) {
	body := goldenReceipt(t)
	e, err := Open(body)
	if err != nil {
		t.Fatal(err)
	}
	if e.Kind != KindReceipt || !e.Script || e.ExitCode != 3 || e.ResponderDest != "com.crypto.host.us" {
		t.Fatalf("decoded %+v", e.Message)
	}
	if got := e.Finished.Sub(e.Accepted); got != 500*time.Millisecond+6 {
		t.Fatalf("finished - accepted = %s", got)
	}
	if e.Kind.String() != "receipt" {
		t.Fatalf("kind string %q", e.Kind)
	}
}

func TestReceipt_Strict(t *testing.T) {
	body := goldenReceipt(t)
	want := map[string]string{
		"receipt-script-flag-2":       "script flag 2",
		"receipt-exit-without-script": "exit code 3 and no script",
		"receipt-zero-message-id":     "without the id",
		"receipt-trailing-byte":       "trailing bytes",
	}
	for name, edit := range receiptEdits {
		_, err := Decode(edit(body))
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), want[name]) {
			t.Errorf("%s: Decode error %v, want ErrMalformed saying %q", name, err, want[name])
		}
	}
}

func TestReceipt_MarshalRefuses(t *testing.T) {
	now := time.Now()
	ok := Message{Kind: KindReceipt, Root: "r", Channel: "c", Sent: now, Accepted: now, Finished: now, RequestID: [IDSize]byte{1}}
	if _, err := ok.Marshal(); err != nil {
		t.Fatalf("a receipt without a script: %v", err)
	}
	for name, edit := range map[string]func(m *Message){
		"payload":           func(m *Message) { m.Payload = []byte("x") },
		"request flag":      func(m *Message) { m.Request = true },
		"exit, no script":   func(m *Message) { m.ExitCode = 1 },
		"no accepted time":  func(m *Message) { m.Accepted = time.Time{} },
		"no message id":     func(m *Message) { m.RequestID = [IDSize]byte{} },
		"receipt on a msg":  func(m *Message) { m.Kind, m.RequestID, m.ExitCode = KindMsg, [IDSize]byte{}, 0 },
		"receipt on reply":  func(m *Message) { m.Kind = KindReply },
		"dest over the cap": func(m *Message) { m.ResponderDest = strings.Repeat("a", MaxDest+1) },
	} {
		m := ok
		edit(&m)
		if _, err := m.Marshal(); err == nil {
			t.Errorf("%s: Marshal accepted it", name)
		}
	}
}

// A receipt's bytes never verify as a message or a reply: the domain tag
// differs, so the signature covers different bytes.
func TestReceipt_TagSeparates(t *testing.T) {
	body := goldenReceipt(t)
	for _, tag := range []string{tagMsg, tagReply} {
		b := append([]byte{byte(len(tag))}, tag...)
		b = append(b, body[1+len(tagReceipt):]...)
		if e, err := Open(b); err == nil {
			t.Fatalf("receipt re-tagged as %s opened as a %s", tag, e.Kind)
		}
	}
}
