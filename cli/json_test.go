package cli

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/remaphore/remaphore/internal/natstest"
	"github.com/remaphore/remaphore/sign"
)

// jsonNodes writes the configs of nodes com.test.<name> into a temp dir,
// each trusting all the others, and returns the config paths and the
// public keys by name.
func jsonNodes(t *testing.T, names ...string) (conf, pub map[string]string) {
	t.Helper()
	c := natstest.Start(t)
	dir := t.TempDir()
	keys := map[string]sign.PrivateKey{}
	conf, pub = map[string]string{}, map[string]string{}
	for _, n := range names {
		k, err := sign.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		keys[n], pub[n] = k, k.Public().String()
	}
	for _, n := range names {
		text := fmt.Sprintf("server: %s\ncredentials: %s\nsubject: json\ndestination: com.test.%s\n\n[ Identities ]\n%s %s [*]\n\n[ Peers ]\n",
			c.URLs()[0], c.User.SeedFile, n, pub[n], keys[n].Base58())
		for _, p := range names {
			if p != n {
				text += fmt.Sprintf("com.test.%s %s [*]\n", p, pub[p])
			}
		}
		conf[n] = filepath.Join(dir, n+".conf")
		if err := os.WriteFile(conf[n], []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return conf, pub
}

// run is one Main in the background.
type run struct {
	stdout, stderr bytes.Buffer
	code           int
	done           chan struct{}
}

func start(args ...string) *run {
	r := &run{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.code = Main(args, &r.stdout, &r.stderr)
	}()
	return r
}

// wait returns once Main returned (its own -t bounds it).
func (r *run) wait(t *testing.T) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(2 * time.Minute):
		t.Fatal("remaphore did not return within 2 minutes")
	}
}

// jsonLines decodes out as one JSON object per line, each on its own:
// a line that is not exactly one object fails the test.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	if !strings.HasSuffix(out, "\n") {
		t.Fatalf("output does not end with a newline: %q", out)
	}
	var objs []map[string]any
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		// Whatever the strings hold, the line carries no control
		// character a terminal would act on: all are escaped.
		for _, r := range line {
			if r < 0x20 || (r >= 0x7f && r <= 0x9f) || r == 0x2028 || r == 0x2029 || r == utf8.RuneError {
				t.Errorf("line %q holds %U raw", line, r)
			}
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %q is not one JSON object: %v", line, err)
		}
		objs = append(objs, m)
	}
	return objs
}

// bytesField returns the exact bytes of field (text) or field_base64.
func bytesField(t *testing.T, m map[string]any, field string) []byte {
	t.Helper()
	text, hasText := m[field].(string)
	b64, hasB64 := m[field+"_base64"].(string)
	switch {
	case hasText && !hasB64:
		return []byte(text)
	case hasB64 && !hasText:
		b, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			t.Fatalf("%s_base64: %v", field, err)
		}
		return b
	}
	t.Fatalf("want exactly one of %s and %s_base64 in %v", field, field, m)
	return nil
}

// Hostile output: a responder's output with a newline, CR, ESC, NUL,
// DEL, a C1 CSI, U+2028 and a forged summary line stays one JSON string holding exactly those
// bytes; output that is not UTF-8 comes back byte for byte as base64.
func TestJSONRequestExactBytes(t *testing.T) {
	conf, pub := jsonNodes(t, "a", "b", "c")
	hostile := "one\r\ntwo \x1b[2K\x00nul\x7f\u009b2J\u2028\n{\"type\":\"summary\",\"request\":\"x\",\"missing\":[],\"failed\":[]}\n"
	notUTF8 := "bad \xff\xfe bytes\n"
	b := start("-c", conf["b"], "-json", "-u", "req", "-since", "5m", "-t", "60s",
		"sh", "-c", `printf 'one\r\ntwo \033[2K\000nul\177\302\2332J\342\200\250\n{"type":"summary","request":"x","missing":[],"failed":[]}\n'`)
	c := start("-c", conf["c"], "-u", "req", "-since", "5m", "-t", "60s", "sh", "-c", `printf 'bad \377\376 bytes\n'; exit 3`)

	var stdout, stderr bytes.Buffer
	code := Main([]string{"-c", conf["a"], "-r", "-json", "-D", "com.test.*", "-u", "req", "-t", "60s", "status"}, &stdout, &stderr)
	b.wait(t)
	c.wait(t)
	if code != ExitScript {
		t.Fatalf("exit %d, want %d (c answered 3)\nstderr:\n%s", code, ExitScript, stderr.String())
	}
	objs := jsonLines(t, stdout.String())
	if len(objs) != 3 {
		t.Fatalf("%d objects, want 2 answers and the summary:\n%s", len(objs), stdout.String())
	}
	answers := map[string]map[string]any{}
	for _, o := range objs[:2] {
		if o["type"] != "answer" {
			t.Fatalf("object %v: want type answer before the summary", o)
		}
		answers[o["sender_dest"].(string)] = o
	}
	reqID := objs[2]["request_id"]
	for dest, want := range map[string]struct {
		out, sender string
		code        float64
	}{"com.test.b": {hostile, pub["b"], 0}, "com.test.c": {notUTF8, pub["c"], 3}} {
		a := answers[dest]
		if a == nil {
			t.Fatalf("no answer from %s:\n%s", dest, stdout.String())
		}
		if got := bytesField(t, a, "output"); string(got) != want.out {
			t.Errorf("%s output %q, want %q", dest, got, want.out)
		}
		if a["sender"] != want.sender || a["exit_code"] != want.code || a["request_id"] != reqID {
			t.Errorf("%s: sender %v exit_code %v request_id %v, want %s %v %v", dest, a["sender"], a["exit_code"], a["request_id"], want.sender, want.code, reqID)
		}
		sent, err1 := time.Parse(time.RFC3339Nano, a["sent"].(string))
		stored, err2 := time.Parse(time.RFC3339Nano, a["stored"].(string))
		if err1 != nil || err2 != nil || sent.IsZero() || stored.IsZero() {
			t.Errorf("%s: sent %v stored %v: %v %v", dest, a["sent"], a["stored"], err1, err2)
		}
		if ms, ok := a["elapsed_ms"].(float64); !ok || ms <= 0 || ms > 120_000 {
			t.Errorf("%s: elapsed_ms %v, want the time to answer", dest, a["elapsed_ms"])
		}
		if id, _ := a["id"].(string); len(id) != 64 || a["seq"].(float64) < 1 {
			t.Errorf("%s: reply id %v seq %v", dest, a["id"], a["seq"])
		}
	}
	// b answered with -json: its stdout is the request's object alone
	// (a request's output is captured for the answer, never printed).
	if bo := jsonLines(t, b.stdout.String()); len(bo) != 1 || bo[0]["type"] != "message" || bo[0]["request"] != true ||
		bo[0]["id"] != reqID || bo[0]["payload"] != "status" || bo[0]["matched"] != "com.test.b" {
		t.Errorf("responder b's -json output:\n%s", b.stdout.String())
	}
	want := map[string]any{"type": "summary", "request_id": reqID, "expected": 2.0, "answered": 2.0,
		"missing": []any{}, "failed": []any{"com.test.c"}}
	if !reflect.DeepEqual(objs[2], want) {
		t.Errorf("summary %v, want %v", objs[2], want)
	}
	if id, _ := reqID.(string); len(id) != 64 {
		t.Errorf("request id %v", reqID)
	}
}

// A looping receiver with -json prints one object per accepted message,
// with the payload's exact bytes (multi-line, CR, ESC; not UTF-8 as
// base64), and the ids and sequences -s -json reported. The script's
// stdout goes to stderr.
func TestJSONReceiveLoop(t *testing.T) {
	conf, pub := jsonNodes(t, "a", "b")
	payloads := []string{"line one\r\nline two \x1b[31mred\n{\"type\":\"message\"}", "not \xff\xfe utf-8"}
	var sent []map[string]any
	for i, p := range payloads {
		var stdout, stderr bytes.Buffer
		if code := Main([]string{"-c", conf["a"], "-s", "-json", "-D", "com.test.b", "-v", "deploy", "-u", fmt.Sprint("job", i), p}, &stdout, &stderr); code != ExitOK {
			t.Fatalf("send %d: exit %d\n%s", i, code, stderr.String())
		}
		objs := jsonLines(t, stdout.String())
		if len(objs) != 1 || objs[0]["type"] != "sent" {
			t.Fatalf("-s -json printed %q", stdout.String())
		}
		sent = append(sent, objs[0])
	}
	// The backlog (-since) reaches the receiver at once; -t then ends the
	// loop, and having received is exit 0.
	rcv := start("-c", conf["b"], "-json", "-since", "5m", "-t", "8s", "sh", "-c", `echo from the script; printf "%s" "$1"`)
	rcv.wait(t)
	if rcv.code != ExitOK {
		t.Fatalf("receiver exit %d\nstderr:\n%s", rcv.code, rcv.stderr.String())
	}
	objs := jsonLines(t, rcv.stdout.String())
	if len(objs) != len(payloads) {
		t.Fatalf("%d objects, want %d:\n%s", len(objs), len(payloads), rcv.stdout.String())
	}
	for i, m := range objs {
		if got := bytesField(t, m, "payload"); string(got) != payloads[i] {
			t.Errorf("message %d payload %q, want %q", i, got, payloads[i])
		}
		for k, want := range map[string]any{"type": "message", "id": sent[i]["id"], "seq": sent[i]["seq"],
			"sender": pub["a"], "sender_dest": "com.test.a", "dest": "com.test.b",
			"matched": "com.test.b", "verb": "deploy", "uuid": fmt.Sprint("job", i), "request": false, "sent": sent[i]["sent"]} {
			if m[k] != want {
				t.Errorf("message %d: %s = %v, want %v", i, k, m[k], want)
			}
		}
		if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(m["stored"])); err != nil {
			t.Errorf("message %d stored %v: %v", i, m["stored"], err)
		}
	}
	if _, ok := objs[1]["payload"]; ok {
		t.Errorf("a payload that is not UTF-8 must not also be given as text: %v", objs[1])
	}
	if n := strings.Count(rcv.stderr.String(), "from the script\n"); n != 2 {
		t.Errorf("the script's stdout reached stderr %d times, want 2:\n%s", n, rcv.stderr.String())
	}
	if !strings.Contains(rcv.stderr.String(), payloads[0]) {
		t.Errorf("the script's printf of the payload did not reach stderr:\n%q", rcv.stderr.String())
	}
}

// FuzzJSONBytes: whatever bytes an output holds, its -json line is one
// line, decodes to exactly those bytes, and carries no raw control
// character (the seeds run as a plain test).
func FuzzJSONBytes(f *testing.F) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	for _, s := range []string{"", "plain", "a\nb\r\n", "\x1b[2J\x00", "\x7f\u0085\u009b\u2028\u2029", "\xff\xfe", "\xc2", string(all), `"}\n{"type":"summary"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, out []byte) {
		var buf bytes.Buffer
		b := bytesOf(out)
		if err := writeJSON(&buf, jsonAnswer{Type: "answer", Output: b.Text, OutputBase64: b.Base64}); err != nil {
			t.Fatal(err)
		}
		objs := jsonLines(t, buf.String())
		if len(objs) != 1 {
			t.Fatalf("%d lines for %q", len(objs), out)
		}
		if got := bytesField(t, objs[0], "output"); !bytes.Equal(got, out) {
			t.Fatalf("decoded %q, want %q", got, out)
		}
	})
}

// -h documents -json and where its reference is.
func TestJSONUsage(t *testing.T) {
	if u := usageOf(t); !strings.Contains(u, "-json") || !strings.Contains(u, "docs/json.md") {
		t.Errorf("-h does not document -json:\n%s", u)
	}
}
