package config

import (
	"errors"
	"fmt"
	"testing"
)

func mustParse(t *testing.T, text string) *Config {
	t.Helper()
	c, err := Parse("test.conf", []byte(text))
	if err != nil {
		t.Fatalf("Parse: %v (hint: %s)\n%s", err, hintOf(err), text)
	}
	return c
}

func hintOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Hint
	}
	return ""
}

func TestLookup(t *testing.T) {
	a, b, x := testKey(t, 1), testKey(t, 2), testKey(t, 3)
	c := mustParse(t, fmt.Sprintf(`server: nats://n:4222
credentials: c
destination: a.b
[ Identities ]
%s %s [ping]
[ Peers ]
a.c %s [deploy]
`, a.Public(), a.Base58(), b.Public()))
	if id, ok := c.Identity(a.Public()); !ok || id.Key.Base58() != a.Base58() || !id.Verbs.Allows("ping") {
		t.Fatal("Identity(a)")
	}
	if _, ok := c.Identity(x.Public()); ok {
		t.Fatal("Identity(x) found")
	}
	if p, ok := c.Peer(b.Public()); !ok || p.Dest != "a.c" || !p.Verbs.Allows("deploy") {
		t.Fatal("Peer(b)")
	}
	if _, ok := c.Peer(a.Public()); ok {
		t.Fatal("Peer(a) found")
	}
}
