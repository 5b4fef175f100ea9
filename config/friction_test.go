package config

import (
	"strings"
	"testing"
)

// TestParse_OperatorMistakes checks, with exact text, the errors a new
// operator meets (issue 19.10): a key written without its colon, and a
// password or token in a server URL, which never appears in an error.
func TestParse_OperatorMistakes(t *testing.T) {
	for _, tc := range []struct{ name, text, err, hint string }{
		{"server without colon", "server nats://127.0.0.1:4222\n",
			"x.conf:1: server has no colon after it: a key is written key: value",
			"write server: nats://127.0.0.1:4222 (a colon after the key)"},
		{"server with password without colon", "server nats://alice:S3cretPW@h:4222\n",
			"x.conf:1: server has no colon after it: a key is written key: value",
			"write server: nats://127.0.0.1:4222 (a colon after the key)"},
		{"credentials without colon", head + "CREDENTIALS /etc/remaphore/nats.nk\n",
			"x.conf:4: credentials has no colon after it: a key is written key: value",
			"write credentials: /etc/remaphore/remaphore.creds (a colon after the key)"},
		{"tls_ca without colon", head + "tls_ca ca.pem\n",
			"x.conf:4: tls_ca has no colon after it: a key is written key: value",
			"write tls_ca: VALUE (a colon after the key)"},
		{"password redacted", "server: nats://alice:S3cretPW@h:4222/x\n",
			`x.conf:1: server "nats://alice:xxxxx@h:4222/x": a nats:// or tls:// URL has no path`,
			"write one URL per server: line, like nats://natsserver:4222 (also tls://, ws://, wss://) or host:port"},
		{"token redacted", "server: nats://S3cretTOKEN@h:4222/x\n",
			`x.conf:1: server "nats://xxxxx@h:4222/x": a nats:// or tls:// URL has no path`,
			"write one URL per server: line, like nats://natsserver:4222 (also tls://, ws://, wss://) or host:port"},
		{"max_bytes small", head + "max_bytes: 1MiB\n",
			`x.conf:4: max_bytes must be at least 8MiB (got "1MiB")`,
			"write a size like 1GiB or 512MiB (the stream discards its oldest messages when full)"},
		{"max_bytes unit", head + "max_bytes: 1GB\n",
			`x.conf:4: max_bytes: "1GB" is not a size (a number with KiB, MiB, GiB or TiB)`,
			"write a size like 1GiB or 512MiB (the stream discards its oldest messages when full)"},
		{"max_bytes negative", head + "max_bytes: -1\n",
			`x.conf:4: max_bytes: "-1" is not a size (a number with KiB, MiB, GiB or TiB)`,
			"write a size like 1GiB or 512MiB (the stream discards its oldest messages when full)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("x.conf", []byte(tc.text))
			if err == nil {
				t.Fatal("parsed")
			}
			if err.Error() != tc.err {
				t.Fatalf("error\n %q\nwant\n %q", err, tc.err)
			}
			if hintOf(err) != tc.hint {
				t.Fatalf("hint\n %q\nwant\n %q", hintOf(err), tc.hint)
			}
			if strings.Contains(err.Error()+hintOf(err), "S3cret") {
				t.Fatal("a secret in the error")
			}
		})
	}
}
