package config

import (
	"testing"
)

func TestParseValues(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{"credentials: /a b/c # comment", "/a b/c"},
		{"credentials: /a#b", "/a#b"},
		{"credentials:/x", "/x"},
		{"credentials: \t/x\t", "/x"},
		{"credentials: a:b", "a:b"},
	} {
		c := mustParse(t, "server: nats://n:4222\ndestination: a.b\n"+tc.line+"\n")
		if c.Credentials != tc.want {
			t.Errorf("%q: Credentials = %q, want %q", tc.line, c.Credentials, tc.want)
		}
		roundTrip(t, c)
	}
	for _, s := range []string{
		"nats://n:4222", "nats://n", "tls://10.0.0.1:4222", "ws://n:8080", "wss://n/path", "n:4222",
		"[::1]:4222", "nats://[::1]:4222", "nats://user:pw@n:4222", "NATS://n:4222",
	} {
		c := mustParse(t, "credentials: c\ndestination: a.b\nserver: "+s+"\n")
		if c.Servers[0] != s {
			t.Errorf("server %q parsed as %q", s, c.Servers[0])
		}
	}
}
