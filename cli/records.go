package cli

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// recordWriter prints reply records, "destination,exit-code,output", as
// ../DESIGN.md "Request and response" fixes them. A record whose output
// holds a newline or any other character that lets bytes pose as another
// record (CR, ESC and the other C0 codes, DEL, C1, U+2028/U+2029, or bytes
// that are not UTF-8, which an 8-bit terminal reads as C1) is framed by
// "--> SEP" and "--< SEP": a parser reads between the frame lines, and the
// random SEP cannot be guessed by a responder. One SEP per request; each
// record is written with one Write, so records never interleave. On a
// terminal the control characters are shown escaped, so a responder cannot
// move the cursor or erase a line to hide or fake a record.
type recordWriter struct {
	w        io.Writer
	sep      string
	terminal bool
}

func newRecordWriter(w io.Writer, terminal bool) *recordWriter {
	b := make([]byte, 8)
	rand.Read(b) // never fails (crypto/rand panics rather than return short)
	return &recordWriter{w: w, sep: hex.EncodeToString(b), terminal: terminal}
}

func (rw *recordWriter) write(dest string, code int, output []byte) error {
	raw := strings.TrimSuffix(string(output), "\n")
	out := raw
	if rw.terminal {
		out = escapeControls(raw)
	}
	rec := dest + "," + strconv.Itoa(code) + "," + out + "\n"
	// Framing is decided on the raw bytes, so a record reads the same
	// whether or not stdout is a terminal.
	if needsFrame(raw) {
		rec = "--> " + rw.sep + "\n" + rec + "--< " + rw.sep + "\n"
	}
	_, err := io.WriteString(rw.w, rec)
	return err
}

// needsFrame reports whether out (trailing newline already trimmed) must
// be framed: it holds a newline, a control character other than tab, a
// line or paragraph separator, or bytes that are not UTF-8.
func needsFrame(out string) bool {
	for i := 0; i < len(out); {
		r, size := utf8.DecodeRuneInString(out[i:])
		if r == utf8.RuneError && size <= 1 {
			return true
		}
		if r != '\t' && isControl(r) {
			return true
		}
		i += size
	}
	return false
}

// isControl: C0 (newline included), DEL, C1, U+2028 and U+2029.
func isControl(r rune) bool {
	return r < 0x20 || (r >= 0x7f && r <= 0x9f) || r == 0x2028 || r == 0x2029
}

// escapeControls writes every control character but newline and tab, and
// every byte that is not UTF-8, as an escape: \x1b, \x9b for a stray byte,
// \u0085 for a C1 or separator character.
func escapeControls(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n' || r == '\t' || !isControl(r):
			b.WriteString(s[i : i+size])
		case r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
		i += size
	}
	return b.String()
}
