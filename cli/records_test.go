package cli

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// Records as ../DESIGN.md "Request and response" writes them, byte for
// byte: a plain line, or the whole record framed when the output holds a
// newline or a control character other than tab; escaped on a terminal.
func TestRecordWriter(t *testing.T) {
	cases := []struct {
		name     string
		output   string
		framed   bool
		plain    string // the record's output as written to a pipe
		terminal string // as written to a terminal
	}{
		{"plain", "all good\n", false, "all good", "all good"},
		{"tab", "a\tb", false, "a\tb", "a\tb"},
		{"empty", "", false, "", ""},
		{"unicode", "état ✓", false, "état ✓", "état ✓"},
		{"two-lines", "a\nb\n", true, "a\nb", "a\nb"},
		{"forged-record", "ok\rcom.crypto.forged,0,all good\x1b[2K", true,
			"ok\rcom.crypto.forged,0,all good\x1b[2K", `ok\x0dcom.crypto.forged,0,all good\x1b[2K`},
		{"nul", "a\x00b", true, "a\x00b", `a\x00b`},
		{"del", "a\x7fb", true, "a\x7fb", `a\x7fb`},
		{"c1-csi", "a\u009b2Kb", true, "a\u009b2Kb", `a\u009b2Kb`},
		{"line-separator", "a\u2028b\u2029c", true, "a\u2028b\u2029c", `a\u2028b\u2029c`},
		{"not-utf8", "a\x9b2Kb", true, "a\x9b2Kb", `a\x9b2Kb`},
		{"bell-and-newline", "\a\nx", true, "\a\nx", "\\x07\nx"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, terminal := range []bool{false, true} {
				var buf bytes.Buffer
				w := newRecordWriter(&buf, terminal)
				if len(w.sep) != 16 || strings.Trim(w.sep, "0123456789abcdef") != "" {
					t.Fatalf("separator %q: want 16 hex digits", w.sep)
				}
				if err := w.write("com.test.r1", 3, []byte(tc.output)); err != nil {
					t.Fatal(err)
				}
				out := tc.plain
				if terminal {
					out = tc.terminal
				}
				want := "com.test.r1,3," + out + "\n"
				if tc.framed {
					want = "--> " + w.sep + "\n" + want + "--< " + w.sep + "\n"
				}
				if got := buf.String(); got != want {
					t.Errorf("terminal=%v: wrote %q, want %q", terminal, got, want)
				}
			}
		})
	}
	// One separator per request, a fresh one for the next.
	var buf bytes.Buffer
	w := newRecordWriter(&buf, false)
	w.write("a.b", 0, []byte("x\ny"))
	w.write("c.d", 0, []byte("x\ry"))
	if strings.Count(buf.String(), w.sep) != 4 {
		t.Errorf("two framed records do not share the separator %s:\n%s", w.sep, buf.String())
	}
	if newRecordWriter(&buf, false).sep == w.sep {
		t.Error("two requests got the same separator")
	}
}

// Only a terminal is a terminal: pipes and files are written raw.
func TestIsTerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for name, out := range map[string]any{"pipe": w, "file": f, "buffer": &bytes.Buffer{}} {
		if isTerminal(out.(interface{ Write([]byte) (int, error) })) {
			t.Errorf("%s taken for a terminal", name)
		}
	}
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		defer tty.Close()
		if !isTerminal(tty) {
			t.Error("/dev/tty not taken for a terminal")
		}
	}
}
