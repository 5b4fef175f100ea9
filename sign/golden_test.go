package sign

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors.json and the FuzzDecode seed corpus from the inputs in golden_test.go")

const vectorsFile = "testdata/vectors.json"

// vector is one golden vector: the inputs of a message, and the body and id
// Seal must produce from them.
type vector struct {
	Name          string `json:"name"`
	Seed          string `json:"seed"`   // hex of the 32-byte ed25519 seed
	Sender        string `json:"sender"` // base58 public key of Seed
	Kind          string `json:"kind"`   // "msg" or "reply"
	Root          string `json:"root"`
	Channel       string `json:"channel"`
	Dest          string `json:"dest"`
	Verb          string `json:"verb"`
	UUID          string `json:"uuid"`
	Sent          string `json:"sent"` // RFC 3339 with nanoseconds
	Request       bool   `json:"request"`
	Nonce         string `json:"nonce"` // hex
	Payload       string `json:"payload"`
	RequestID     string `json:"request_id,omitempty"` // hex, reply only
	ResponderDest string `json:"responder_dest,omitempty"`
	ExitCode      int32  `json:"exit_code,omitempty"`
	Script        bool   `json:"script,omitempty"`   // receipt only
	Accepted      string `json:"accepted,omitempty"` // receipt only, RFC 3339
	Finished      string `json:"finished,omitempty"` // receipt only, RFC 3339

	Body string `json:"body"` // hex of signed bytes and signature
	ID   string `json:"id"`
}

type vectorFile struct {
	Comment string   `json:"comment"`
	Vectors []vector `json:"vectors"`
}

// goldenInputs are the inputs of the golden vectors. Body and ID are filled
// in by -update; RequestID of the reply is the id of the request vector.
func goldenInputs() []vector {
	seed := hex.EncodeToString(fixedSeed())
	sent := "2026-01-02T03:04:05.000000006Z"
	nonce := fixedNonce()
	n := hex.EncodeToString(nonce[:])
	return []vector{
		{
			Name: "plain message", Seed: seed, Kind: "msg",
			Root: "remaphore", Channel: "ops", Dest: "com.crypto.host.us", Verb: "ping",
			UUID: "3f2b8c1e-9d4a-4e6b-8f0c-7a5d2e1b9c30", Sent: sent, Nonce: n,
			Payload: "hello",
		},
		{
			Name: "request with awkward payload", Seed: seed, Kind: "msg",
			Root: "remaphore", Channel: "", Dest: "com.crypto.**", Verb: "deploy",
			UUID: "a7e4d2c9-1b3f-4a8e-9c6d-5f0e2b7a4c18", Sent: sent, Request: true, Nonce: n,
			Payload: "line 1\nline \"2\"\r\n\ttab, comma, 'single'\nünïcödé → 日本語 🚀\x00nul\\backslash\n",
		},
		{
			Name: "reply with exit code -1", Seed: seed, Kind: "reply",
			Root: "remaphore", Channel: "", Dest: "com.crypto.**", Verb: "deploy",
			UUID: "a7e4d2c9-1b3f-4a8e-9c6d-5f0e2b7a4c18", Sent: sent, Nonce: n,
			Payload:       "deploying v1.2.3\nerror: disk full\n  at step 3/5\n",
			RequestID:     "", // the id of the request vector
			ResponderDest: "com.crypto.host.us", ExitCode: -1,
		},
		{
			Name: "empty payload", Seed: seed, Kind: "msg",
			Root: "r", Channel: "c", Dest: "*", Verb: "ping",
			UUID: "", Sent: sent, Nonce: n, Payload: "",
		},
		{
			Name: "receipt of the plain message, exit code 3", Seed: seed, Kind: "receipt",
			Root: "remaphore", Channel: "ops", Dest: "com.crypto.host.eu", Verb: "ping",
			UUID: "3f2b8c1e-9d4a-4e6b-8f0c-7a5d2e1b9c30", Sent: sent, Nonce: n,
			RequestID:     "", // the id of the plain message vector
			ResponderDest: "com.crypto.host.us", ExitCode: 3, Script: true,
			Accepted: "2026-01-02T03:04:04.5Z", Finished: "2026-01-02T03:04:05.000000006Z",
		},
	}
}

// message builds the Message of v's inputs and the key of its seed.
func (v vector) message(t *testing.T) (*Message, PrivateKey) {
	t.Helper()
	seed, err := hex.DecodeString(v.Seed)
	if err != nil || len(seed) != 32 {
		t.Fatalf("%s: bad seed %q", v.Name, v.Seed)
	}
	k := keyFromSeed(t, seed)
	sent, err := time.Parse(time.RFC3339Nano, v.Sent)
	if err != nil {
		t.Fatalf("%s: sent: %v", v.Name, err)
	}
	m := &Message{
		Root: v.Root, Channel: v.Channel, Dest: v.Dest, Verb: v.Verb, UUID: v.UUID,
		Sent: sent, Request: v.Request, Payload: []byte(v.Payload),
	}
	switch v.Kind {
	case "msg":
		m.Kind = KindMsg
	case "reply":
		m.Kind = KindReply
		id, err := ParseID(v.RequestID)
		if err != nil {
			t.Fatalf("%s: request_id: %v", v.Name, err)
		}
		m.RequestID = id
		m.ResponderDest = v.ResponderDest
		m.ExitCode = v.ExitCode
	case "receipt":
		m.Kind = KindReceipt
		id, err := ParseID(v.RequestID)
		if err != nil {
			t.Fatalf("%s: request_id: %v", v.Name, err)
		}
		m.RequestID, m.ResponderDest, m.ExitCode, m.Script = id, v.ResponderDest, v.ExitCode, v.Script
		if m.Accepted, err = time.Parse(time.RFC3339Nano, v.Accepted); err != nil {
			t.Fatalf("%s: accepted: %v", v.Name, err)
		}
		if m.Finished, err = time.Parse(time.RFC3339Nano, v.Finished); err != nil {
			t.Fatalf("%s: finished: %v", v.Name, err)
		}
	default:
		t.Fatalf("%s: kind %q", v.Name, v.Kind)
	}
	nonce, err := hex.DecodeString(v.Nonce)
	if err != nil || len(nonce) != NonceSize {
		t.Fatalf("%s: bad nonce %q", v.Name, v.Nonce)
	}
	copy(m.Nonce[:], nonce)
	if m.Nonce == ([NonceSize]byte{}) {
		t.Fatalf("%s: a zero nonce would make Seal draw a random one", v.Name)
	}
	return m, k
}

func writeVectors(t *testing.T) {
	vs := goldenInputs()
	var requestID, firstID string
	for i := range vs {
		v := &vs[i]
		if !utf8.ValidString(v.Payload) {
			t.Fatalf("%s: payload must be valid UTF-8 to survive JSON", v.Name)
		}
		if v.Kind == "reply" {
			v.RequestID = requestID
		}
		if v.Kind == "receipt" {
			v.RequestID = firstID
		}
		m, k := v.message(t)
		e := mustSeal(t, m, k)
		v.Sender = k.Public().String()
		v.Body = hex.EncodeToString(e.Body())
		v.ID = e.ID
		if v.Request {
			requestID = e.ID
		}
		if i == 0 {
			firstID = e.ID
		}
	}
	out, err := json.MarshalIndent(vectorFile{
		Comment: "remaphore wire format v1 golden vectors; regenerate with go test ./sign/ -run TestGoldenVectors -update (only for an intended format change)",
		Vectors: vs,
	}, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vectorsFile, append(out, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	bodies := make([][]byte, len(vs))
	for i, v := range vs {
		bodies[i], _ = hex.DecodeString(v.Body)
	}
	writeFuzzSeeds(t, bodies)
	t.Logf("wrote %s and %s", vectorsFile, fuzzCorpusDir)
}

func readVectors(t *testing.T) []vector {
	t.Helper()
	raw, err := os.ReadFile(vectorsFile)
	if err != nil {
		t.Fatalf("golden vectors: %v (generate with -update)", err)
	}
	var f vectorFile
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", vectorsFile, err)
	}
	return f.Vectors
}

func TestGoldenVectors(t *testing.T) {
	if *update {
		writeVectors(t)
	}
	vs := readVectors(t)
	inputs := goldenInputs()
	if len(vs) != len(inputs) {
		t.Fatalf("%s holds %d vectors, golden_test.go defines %d: run with -update if the inputs changed on purpose", vectorsFile, len(vs), len(inputs))
	}
	for i, v := range vs {
		// The stored inputs are the ones defined here (the reply's request
		// id is derived, so it is compared to the request's stored id).
		in := inputs[i]
		in.Sender, in.Body, in.ID, in.RequestID = v.Sender, v.Body, v.ID, v.RequestID
		if in != v {
			t.Errorf("vector %d (%s): stored inputs differ from goldenInputs(): run with -update if they changed on purpose", i, v.Name)
		}
		t.Run(v.Name, func(t *testing.T) {
			m, k := v.message(t)
			if k.Public().String() != v.Sender {
				t.Fatalf("sender %s, key of the seed is %s", v.Sender, k.Public())
			}
			want, err := hex.DecodeString(v.Body)
			if err != nil {
				t.Fatalf("body: %v", err)
			}

			// Sealing the inputs gives the stored bytes exactly.
			e := mustSeal(t, m, k)
			if got := e.Body(); !bytes.Equal(got, want) {
				t.Fatalf("Seal gives\n %x\nwant\n %x\nthe wire format changed", got, want)
			}
			if e.ID != v.ID {
				t.Fatalf("id %s, want %s", e.ID, v.ID)
			}
			kp, err := k.KeyPair()
			if err != nil {
				t.Fatal(err)
			}
			if s, err := kp.Sign(e.Signed); err != nil || !bytes.Equal(s, want[len(want)-64:]) {
				t.Fatalf("nkeys signature of the signed bytes differs from the stored one (%v)", err)
			}

			// Opening the stored bytes gives the inputs back.
			o, err := Open(want)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if diff := sameMessage(&o.Message, m); diff != "" {
				t.Fatalf("opened fields differ from the inputs: %s", diff)
			}
			if o.Sender.String() != v.Sender || o.ID != v.ID || !bytes.Equal(o.Body(), want) {
				t.Fatalf("opened sender/id/body differ")
			}
			if o.Sent.UTC().Format(time.RFC3339Nano) != v.Sent {
				t.Fatalf("sent %s, want %s", o.Sent.UTC().Format(time.RFC3339Nano), v.Sent)
			}
		})
	}
	// The reply answers the request vector.
	var reqID, replyReqID string
	for _, v := range vs {
		if v.Request {
			reqID = v.ID
		}
		if v.Kind == "reply" {
			replyReqID = v.RequestID
		}
	}
	if reqID == "" || replyReqID != reqID {
		t.Errorf("reply's request_id %q is not the request's id %q", replyReqID, reqID)
	}
	// The receipt is one of the first (plain) message.
	for _, v := range vs {
		if v.Kind == "receipt" && v.RequestID != vs[0].ID {
			t.Errorf("receipt's request_id %q is not the plain message's id %q", v.RequestID, vs[0].ID)
		}
	}
}

func TestGoldenVectors_FileIsCanonical(t *testing.T) {
	// The file is exactly what -update writes from its own content, so a
	// hand edit that leaves a stale body or id is caught by
	// TestGoldenVectors, and one that reformats the file is caught here.
	raw, err := os.ReadFile(vectorsFile)
	if err != nil {
		t.Fatalf("golden vectors: %v", err)
	}
	var f vectorFile
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	out, err := json.MarshalIndent(f, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(append(out, '\n'), raw) {
		t.Fatalf("%s is not in the form -update writes", filepath.ToSlash(vectorsFile))
	}
}
