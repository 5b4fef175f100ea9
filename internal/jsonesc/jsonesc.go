// Package jsonesc completes encoding/json's output for terminals: the
// commands' JSON lines (remaphore -json, remaphore-audit -json) carry
// strings from the network.
package jsonesc

import (
	"bytes"
	"fmt"
)

// C1 escapes DEL and the C1 controls (U+0080 to U+009F), which
// encoding/json leaves raw: some terminals act on them (U+009B is CSI), so
// whoever wrote a string (a responder, any publisher) could rewrite what
// a person watching the output sees. The line stays valid JSON with the
// same strings: outside strings the encoding is ASCII, so every such byte
// sequence is inside one.
func C1(b []byte) []byte {
	if !bytes.ContainsFunc(b, func(r rune) bool { return r >= 0x7f && r <= 0x9f }) {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == 0x7f:
			out = append(out, `\u007f`...)
		case c == 0xc2 && i+1 < len(b) && b[i+1] >= 0x80 && b[i+1] <= 0x9f:
			out = fmt.Appendf(out, `\u%04x`, b[i+1])
			i++
		default:
			out = append(out, c)
		}
	}
	return out
}
