package config

import (
	"fmt"
	"strings"
	"testing"
)

func TestParseNKeyForms(t *testing.T) {
	a, b := testKey(t, 1), testKey(t, 2)
	base := mustParse(t, fmt.Sprintf(`server: nats://n:4222
credentials: c
destination: com.example.a
default_identity: %s
[ Identities ]
%s %s [ping]
[ Peers ]
com.example.b %s [ping]
`, a.Public(), a.Public(), a.Base58(), b.Public()))
	if !strings.HasPrefix(a.Public().NKey(), "U") || !strings.HasPrefix(a.NKeySeed(), "SU") {
		t.Fatalf("unexpected nkeys forms %s…", a.Public().NKey()[:2])
	}
	nk := mustParse(t, fmt.Sprintf(`server: nats://n:4222
credentials: c
destination: com.example.a
default_identity: %s
[ Identities ]
%s %s [ping]
[ Peers ]
com.example.b %s [ping]
`, a.Public().NKey(), a.Public().NKey(), a.NKeySeed(), b.Public().NKey()))
	if d := diffConfig(base, nk); d != "" {
		t.Fatalf("nkeys forms differ from base58 forms:\n%s", d)
	}
	// Mixed: base58 public key with an nkeys seed.
	mixed := mustParse(t, fmt.Sprintf(`server: nats://n:4222
credentials: c
destination: com.example.a
[ Identities ]
%s %s [ping]
`, a.Public(), a.NKeySeed()))
	if mixed.Identities[0].Key.Base58() != a.Base58() {
		t.Fatal("mixed forms: wrong key")
	}
	// Format writes base58.
	out := string(nk.Format())
	if strings.Contains(out, a.NKeySeed()) || !strings.Contains(out, a.Base58()) {
		t.Fatalf("Format should write base58 keys:\n%s", out)
	}
}
