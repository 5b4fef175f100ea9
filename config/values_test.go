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

func TestParse_MaxBytes(t *testing.T) {
	for in, want := range map[string]int64{
		"":            DefaultMaxBytes,
		"1GiB":        1 << 30,
		"512MiB":      512 << 20,
		"8388608":     8 << 20,
		"2TiB":        2 << 40,
		"10485760B":   10 << 20,
		"1048576 KiB": 1 << 30,
	} {
		text := head
		if in != "" {
			text += "max_bytes: " + in + "\n"
		}
		c, err := Parse("x.conf", []byte(text))
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if c.MaxBytes != want {
			t.Fatalf("%q: %d, want %d", in, c.MaxBytes, want)
		}
		// Format writes it back so that it parses to the same.
		again, err := Parse("x.conf", c.Format())
		if err != nil || again.MaxBytes != want {
			t.Fatalf("%q: Format gave %q: %v", in, c.Format(), err)
		}
	}
	if got := FormatSize(512 << 20); got != "512MiB" {
		t.Fatalf("FormatSize = %q", got)
	}
}
