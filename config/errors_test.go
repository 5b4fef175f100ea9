package config

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"github.com/mr-tron/base58"
	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/sign"
)

const head = "server: nats://n:4222\ncredentials: c\ndestination: com.example.a\n" // lines 1-3

func TestParseErrors(t *testing.T) {
	a, b := testKey(t, 1), testKey(t, 2)
	rawA, _ := base58.Decode(a.Base58())
	// seed of a followed by the public key of b: a private key whose
	// public half does not belong to its seed.
	bPub := b.Public()
	badHalf := base58.Encode(append(append([]byte{}, rawA[:ed25519.SeedSize]...), bPub[:]...))
	r := strings.NewReplacer(
		"{A}", a.Public().String(), "{a}", a.Base58(), "{AU}", a.Public().NKey(), "{aS}", a.NKeySeed(),
		"{B}", b.Public().String(), "{b}", b.Base58(), "{ab}", badHalf,
	)
	for _, tc := range []struct {
		name string
		text string
		line int
		msg  []string // substrings of Error()
		hint string   // substring of Hint
		is   error    // also matched with errors.Is, besides ErrInvalid
	}{
		// keys
		{"unknown key", head + "colour: red\n", 4,
			[]string{`unknown key "colour"`, "known keys: server, credentials, subject"}, "remove the line", nil},
		{"near miss dash", head + "allow-skew: 5s\n", 4, []string{`unknown key "allow-skew"`}, "did you mean allow_skew?", nil},
		{"near miss plural", "servers: nats://n:4222\n", 1, []string{`unknown key "servers"`}, "did you mean server?", nil},
		{"near miss typo", head + "destinaton: a.b\n", 4, []string{"unknown key"}, "did you mean destination?", nil},
		{"no key", head + ": x\n", 4, []string{"no key before ':'"}, "key: value", nil},
		{"duplicate key", head + "subject: a\nsubject: b\n", 5, []string{"subject given twice (first on line 4)"}, "keep one", nil},
		{"duplicate destination", head + "destination: com.example.b\n", 4, []string{"destination given twice (first on line 3)"}, "only server may be repeated", nil},
		{"empty value", "server: nats://n:4222\ncredentials:\n", 2, []string{"credentials has no value"}, "credentials: /etc/remaphore/remaphore.creds", nil},
		{"comment as value", "server: nats://n:4222\ncredentials: # none\n", 2, []string{"credentials has no value"}, "credentials:", nil},
		{"key after identities", head + "[ Identities ]\n{A} {a} [ping]\nsubject: x\n", 6,
			[]string{"key subject inside [ Identities ]", "before the first section"}, "move the subject: line above the first section", nil},
		{"key after peers", head + "[ Peers ]\nALLOW_SKEW : 5s\n", 5, []string{"key allow_skew inside [ Peers ]"}, "above the first section", nil},
		{"identity line in top section", head + "{A} {a} [ping]\n", 4, []string{"expected key: value"}, "identity lines go under [ Identities ]", nil},
		{"word in top section", head + "remaphore\n", 4, []string{"expected key: value"}, "write key: value", nil},
		{"unknown section", head + "[ Friends ]\n", 4, []string{`unknown section "[ Friends ]"`}, "[ Identities ] and [ Peers ]", nil},
		{"unclosed section", head + "[ Peers\n", 4, []string{"no closing ]"}, "[ Peers ]", nil},
		{"control character", head + "subject: a\x00b\n", 4, []string{"control character U+0000"}, "remove the control character", nil},
		{"invalid utf-8", head + "subject: a\xffb\n", 4, []string{"not valid UTF-8"}, "UTF-8", nil},

		// keys and key pairs
		{"public key length", head + "[ Identities ]\n3v96V3Egjiu {a} [ping]\n", 5,
			[]string{"identity public key", "invalid key", "decodes to", "want 32"}, "publickey privatekey [verbs]", sign.ErrBadKey},
		{"public key not base58", head + "[ Peers ]\ncom.example.b 0OIl0OIl [ping]\n", 5,
			[]string{"peer com.example.b: public key", "not base58"}, "destination publickey [verbs]", sign.ErrBadKey},
		{"private key not base58", head + "[ Identities ]\n{A} 0OIl0OIl [ping]\n", 5,
			[]string{"identity {A}: private key", "not base58"}, "publickey privatekey [verbs]", sign.ErrBadKey},
		{"private key length", head + "[ Identities ]\n{A} {B} [ping]\n", 5,
			[]string{"identity {A}: private key", "decodes to 32 bytes, want 64"}, "publickey privatekey", sign.ErrBadKey},
		{"private key of another public key", head + "[ Identities ]\n{A} {b} [ping]\n", 5,
			[]string{"identity {A}", "does not belong to this public key", "private key of {B}"}, "generated with this public key", sign.ErrKeyMismatch},
		{"private key with a foreign public half", head + "[ Identities ]\n{A} {ab} [ping]\n", 5,
			[]string{"identity {A}", "public half does not belong to its seed"}, "publickey privatekey", sign.ErrKeyMismatch},
		{"nkeys seed of another key", head + "[ Identities ]\n{AU} " + b.NKeySeed() + " [ping]\n", 5,
			[]string{"identity {A}", "does not belong"}, "generated with this public key", sign.ErrKeyMismatch},
		{"keys swapped", head + "[ Identities ]\n{a} {A} [ping]\n", 5,
			[]string{"the first key is a private key", "publickey privatekey"}, "publickey privatekey [verbs]", sign.ErrBadKey},
		{"nkeys seed swapped", head + "[ Identities ]\n{aS} {AU} [ping]\n", 5,
			[]string{"the first key is a private key"}, "publickey privatekey", sign.ErrBadKey},
		{"identity line short", head + "[ Identities ]\n{A}\n", 5,
			[]string{"identity line needs a public key, a private key and a verb list"}, "publickey privatekey [verbs]", nil},
		{"peer with private key", head + "[ Peers ]\ncom.example.b {b} [ping]\n", 5,
			[]string{`peer "com.example.b": the key is a private key`}, "public key only", nil},
		{"identity line under peers", head + "[ Peers ]\n{A} {a} [ping]\n", 5,
			[]string{"it looks like an identity line"}, "under [ Identities ]", nil},
		{"swapped peer line", head + "[ Peers ]\n{B} com.example.b [ping]\n", 5,
			[]string{"peer line starts with a public key"}, "destination publickey [verbs]", nil},
		{"private key first under peers", head + "[ Peers ]\n{a} {A} [ping]\n", 5,
			[]string{"peer line starts with a private key"}, "[ Identities ]", nil},
		{"peer line short", head + "[ Peers ]\ncom.example.b\n", 5,
			[]string{"peer line needs a destination, a public key and a verb list"}, "destination publickey [verbs]", nil},
		{"default_identity bad key", head + "default_identity: xyz\n", 4,
			[]string{"default_identity", "invalid key"}, "public key", sign.ErrBadKey},
		{"default_identity private key", head + "default_identity: {a}\n", 4,
			[]string{"line holds a private key out of place"}, "belongs only in [ Identities ]", nil},
		{"default_identity long word", head + "default_identity: " + strings.Repeat("x", 57) + "\n", 4,
			[]string{"default_identity", "too long for a public key (is it a private key?)"}, "public key", sign.ErrBadKey},
		{"destination private key", "server: nats://n:4222\ncredentials: c\ndestination: {a} 00\n", 3,
			[]string{"line holds a private key out of place"}, "belongs only in [ Identities ]", nil},
		{"destination seed", "server: nats://n:4222\ncredentials: c\ndestination:{aS}\n", 3,
			[]string{"line holds a private key out of place"}, "remaphore -C", nil},
		{"seed as verb", head + "[ Identities ]\n{A} {a} [ping,{aS}]\n", 5,
			[]string{"line holds a private key out of place"}, "belongs only in [ Identities ]", nil},
		{"private key after peer", head + "[ Peers ]\ncom.example.b {B} [ping] {a}\n", 5,
			[]string{"line holds a private key out of place"}, "belongs only in [ Identities ]", nil},

		// durations and numbers
		{"duration without unit", head + "allow_skew: 5\n", 4, []string{"allow_skew", `"5" is not a duration`}, "like 5s, 1m30s", nil},
		{"duration words", head + "retention: one day\n", 4, []string{"retention", "not a duration"}, "like 5s, 1m30s", nil},
		{"zero duration", head + "allow_skew: 0s\n", 4, []string{"allow_skew must be greater than zero"}, "5s, 1m30s", nil},
		{"negative duration", head + "retention: -1h\n", 4, []string{"retention must be greater than zero"}, "5s, 1m30s", nil},
		{"replicas high", head + "replicas: 6\n", 4, []string{"replicas must be 1 to 5 (got 6)"}, "3 for a cluster", nil},
		{"replicas zero", head + "replicas: 0\n", 4, []string{"replicas must be 1 to 5 (got 0)"}, "1 to 5", nil},
		{"replicas word", head + "replicas: three\n", 4, []string{`replicas: "three" is not a whole number`}, "1 to 5", nil},
		{"max_consumers zero", head + "max_consumers: 0\n", 4, []string{"max_consumers must be at least 1 (got 0)"}, "at least 1", nil},
		{"heartbeat too long", head + "heartbeat: 31s\n", 4, []string{`heartbeat must be 1s to 30s (got "31s")`}, "costs the server less", nil},
		{"heartbeat too short", head + "heartbeat: 500ms\n", 4, []string{`heartbeat must be 1s to 30s (got "500ms")`}, "lost consumer sooner", nil},
		{"heartbeat zero", head + "heartbeat: 0s\n", 4, []string{"heartbeat must be greater than zero"}, "5s, 1m30s", nil},
		{"heartbeat no unit", head + "heartbeat: 30\n", 4, []string{`heartbeat: "30" is not a duration`}, "like 5s, 1m30s", nil},
		{"audit_refused_max_bytes too small", head + "audit_refused_max_bytes: 1000\n", 4, []string{`audit_refused_max_bytes must be at least 1MiB (got "1000")`}, "256MiB", nil},
		{"audit_metrics without port", head + "audit_metrics: 9464\n", 4, []string{`audit_metrics "9464": not HOST:PORT`}, "127.0.0.1:9464", nil},
		{"audit_metrics bad port", head + "audit_metrics: localhost:http\n", 4, []string{`port "http" is not a number`}, "HOST:PORT", nil},

		// verbs
		{"empty verbs", head + "[ Identities ]\n{A} {a} []\n", 5, []string{"identity {A}: empty verb list"}, "[ping]", nil},
		{"blank verbs", head + "[ Peers ]\ncom.example.b {B} [  ]\n", 5, []string{"peer com.example.b: empty verb list"}, "[*]", nil},
		{"missing verbs", head + "[ Identities ]\n{A} {a}\n", 5, []string{"identity {A}: no verb list"}, "[ping] for one verb", nil},
		{"missing peer verbs", head + "[ Peers ]\ncom.example.b {B} # all\n", 5, []string{"peer com.example.b: no verb list"}, "[*] for every verb", nil},
		{"verbs without brackets", head + "[ Peers ]\ncom.example.b {B} ping\n", 5, []string{"in brackets"}, "[ping]", nil},
		{"two verb lists", head + "[ Peers ]\ncom.example.b {B} [ping] [deploy]\n", 5, []string{"more than one verb list"}, "[ping, deploy]", nil},
		{"text after verbs", head + "[ Peers ]\ncom.example.b {B} [ping] x\n", 5, []string{"in brackets"}, "[ping]", nil},
		{"empty verb in list", head + "[ Peers ]\ncom.example.b {B} [ping,,deploy]\n", 5, []string{"empty verb"}, "[ping]", policy.ErrBadVerb},
		{"space in verb", head + "[ Peers ]\ncom.example.b {B} [pi ng]\n", 5, []string{"invalid verb", `"pi ng"`}, "[ping]", policy.ErrBadVerb},

		// duplicates and references
		{"duplicate peer", head + "[ Peers ]\ncom.example.b {B} [ping]\ncom.example.c {B} [deploy]\n", 6,
			[]string{"duplicate peer public key {B} (first on line 5)"}, "listed once", nil},
		{"duplicate peer nkeys form", head + "[ Peers ]\ncom.example.b {A} [ping]\n\ncom.example.c {AU} [ping]\n", 7,
			[]string{"duplicate peer public key {A} (first on line 5)"}, "listed once", nil},
		{"duplicate identity", head + "[ Identities ]\n{A} {a} [ping]\n[ Peers ]\n[ identities ]\n{AU} {aS} [deploy]\n", 8,
			[]string{"duplicate identity {A} (first on line 5)"}, "one line per identity", nil},
		{"default_identity unknown", "server: nats://n:4222\ndefault_identity: {B}\ncredentials: c\ndestination: a.b\n[ Identities ]\n{A} {a} [ping]\n", 2,
			[]string{"default_identity {B} is not one of the [ Identities ]"}, "public key of one of the [ Identities ]", nil},
		{"default_identity without identities", head + "default_identity: {A}\n", 4,
			[]string{"default_identity {A} is not one of the [ Identities ]"}, "[ Identities ]", nil},

		// destinations
		{"destination empty segment", "server: nats://n:4222\ncredentials: c\ndestination: com..a\n", 3,
			[]string{"destination", "empty segment"}, "com.example.host1", policy.ErrBadName},
		{"destination wildcard", "server: nats://n:4222\ncredentials: c\ndestination: com.*.a\n", 3,
			[]string{"destination", "wildcard"}, "reverse dotted", policy.ErrBadName},
		{"peer destination pattern", head + "[ Peers ]\ncom.ex*.b {B} [ping]\n", 5,
			[]string{"peer destination", "wildcard"}, "as configured on the peer", policy.ErrBadName},
		{"peer destination comma", head + "[ Peers ]\ncom,b {B} [ping]\n", 5,
			[]string{"peer destination", "','"}, "com.example.host2", policy.ErrBadName},

		// required keys
		{"missing credentials", "server: nats://n:4222\ndestination: a.b\n", 0,
			[]string{"no credentials", "required"}, "credentials: /etc/remaphore/remaphore.creds", nil},
		{"missing destination", "server: nats://n:4222\ncredentials: c\n", 0,
			[]string{"no destination", "required"}, "destination: com.example.host1", nil},
		{"missing server", "credentials: c\ndestination: a.b\n", 0,
			[]string{"no server", "at least one"}, "server: nats://127.0.0.1:4222", nil},
		{"empty file", "", 0, []string{"no server"}, "server:", nil},

		// servers
		{"server scheme", "server: http://n:4222\n", 1, []string{`scheme "http" is not nats, tls, ws or wss`}, "nats://natsserver:4222", nil},
		{"server bare host", "server: natsserver\n", 1, []string{"neither a URL", "nor host:port"}, "host:port", nil},
		{"server no host", "server: nats://:4222\n", 1, []string{"has no host"}, "nats://", nil},
		{"server port zero", "server: n:0\n", 1, []string{`port "0"`}, "host:port", nil},
		{"server port big", "server: nats://n:70000\n", 1, []string{`port "70000"`}, "host:port", nil},
		{"server empty port", "server: nats://n:\n", 1, []string{"empty port"}, "nats://", nil},
		{"server list", "server: nats://a:4222,nats://b:4222\n", 1, []string{"one server per line"}, "one URL per server: line", nil},
		{"server path", "server: nats://n:4222/x\n", 1, []string{"has no path"}, "nats://", nil},
		{"server password hidden", "server: http://user:secret@n:4222\n", 1, []string{"xxxxx", "scheme"}, "nats://", nil},

		// subject and stream
		{"subject star", head + "subject: remaphore.*\n", 4, []string{`subject "remaphore.*" holds a wildcard`}, "no *, >, spaces or empty tokens", nil},
		{"subject gt", head + "subject: a.>\n", 4, []string{"holds a wildcard"}, "plain NATS subject", nil},
		{"subject space", head + "subject: a b\n", 4, []string{"holds a space"}, "plain NATS subject", nil},
		{"subject empty token", head + "subject: a..b\n", 4, []string{"empty token"}, "plain NATS subject", nil},
		{"subject leading dot", head + "subject: .a\n", 4, []string{"empty token"}, "plain NATS subject", nil},
		{"subject too long", head + "subject: " + strings.Repeat("a", 129) + "\n", 4, []string{"129 bytes, limit 128"}, "plain NATS subject", nil},
		{"stream dot", head + "stream: A.B\n", 4, []string{`stream name "A.B" holds one of`}, "REMAPHORE", nil},

		// TLS
		{"tls_cert alone", head + "tls_ca: ca\ntls_cert: c.pem\n", 5, []string{"tls_cert without tls_key"}, "add tls_key:", nil},
		{"tls_key alone", head + "tls_key: k.pem\n", 4, []string{"tls_key without tls_cert"}, "add tls_cert:", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := r.Replace(tc.text)
			c, err := Parse("test.conf", []byte(text))
			if err == nil {
				t.Fatalf("parsed, want error:\n%s\n%+v", text, c)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(err, ErrInvalid) = false: %v", err)
			}
			if errors.Is(err, ErrNotFound) || errors.Is(err, ErrPermissions) {
				t.Errorf("error matches the wrong sentinel: %v", err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("errors.Is(err, %v) = false: %v", tc.is, err)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("not an *Error: %T %v", err, err)
			}
			if e.File != "test.conf" || e.Line != tc.line {
				t.Errorf("at %s:%d, want test.conf:%d: %v", e.File, e.Line, tc.line, err)
			}
			prefix := fmt.Sprintf("test.conf:%d: ", tc.line)
			if tc.line == 0 {
				prefix = "test.conf: "
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, prefix) {
				t.Errorf("message %q does not start with %q", msg, prefix)
			}
			for _, want := range tc.msg {
				if want = r.Replace(want); !strings.Contains(msg, want) {
					t.Errorf("message %q lacks %q", msg, want)
				}
			}
			if !strings.Contains(e.Hint, r.Replace(tc.hint)) || e.Hint == "" {
				t.Errorf("hint %q lacks %q", e.Hint, tc.hint)
			}
			if strings.Contains(e.Hint, "\n") || strings.Contains(msg, "\n") {
				t.Errorf("message or hint spans lines: %q / %q", msg, e.Hint)
			}
			for _, k := range []sign.PrivateKey{a, b} {
				for _, secret := range []string{k.Base58(), k.NKeySeed(), k.Base58()[:8], k.NKeySeed()[:8], badHalf[:8]} {
					if strings.Contains(msg, secret) || strings.Contains(e.Hint, secret) {
						t.Errorf("error shows a private key: %q / %q", msg, e.Hint)
					}
				}
			}
			if strings.Contains(msg, "secret") {
				t.Errorf("error shows a server password: %q", msg)
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	for _, tc := range []struct {
		e    Error
		want string
	}{
		{Error{File: "f", Line: 3, Msg: "m"}, "f:3: m"},
		{Error{File: "f", Msg: "m"}, "f: m"},
		{Error{Line: 3, Msg: "m"}, "line 3: m"},
		{Error{Msg: "m", Hint: "h"}, "m"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.e, got, tc.want)
		}
		if !errors.Is(&tc.e, ErrInvalid) {
			t.Errorf("%+v does not match ErrInvalid", tc.e)
		}
	}
	e := &Error{kind: ErrNotFound, err: fs.ErrNotExist}
	if errors.Is(e, ErrInvalid) || !errors.Is(e, ErrNotFound) || !errors.Is(e, fs.ErrNotExist) {
		t.Error("kind and cause matching")
	}
}

// Parse without a name: errors say "line N".
func TestParseErrorNoName(t *testing.T) {
	_, err := Parse("", []byte("colour: red\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "line 1: unknown key") {
		t.Fatalf("%v", err)
	}
	_, err = Parse("", []byte("server: n:1\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "no credentials") {
		t.Fatalf("%v", err)
	}
}

func TestParseTooLarge(t *testing.T) {
	_, err := Parse("big.conf", []byte(strings.Repeat("# x\n", MaxFileSize/4+1)))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("%v", err)
	}
}
