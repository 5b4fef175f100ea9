package policy

import (
	"errors"
	"testing"

	"github.com/remaphore/remaphore/sign"
)

func TestChooseIdentity(t *testing.T) {
	a, b, c := key(t, 1), key(t, 2), key(t, 3)
	ping, _ := ParseVerbList("ping")
	deploy, _ := ParseVerbList("deploy, status")
	ids := []Identity{{Key: a, Verbs: ping}, {Key: b, Verbs: deploy}, {Key: c, Verbs: AllVerbs()}}
	var none sign.PublicKey
	tests := []struct {
		name          string
		def, explicit sign.PublicKey
		verb          string
		want          sign.PublicKey
		err           bool
	}{
		{"default allows", a.Public(), none, "ping", a.Public(), false},
		{"default does not allow: first that does", a.Public(), none, "deploy", b.Public(), false},
		{"no default: first that allows", none, none, "status", b.Public(), false},
		{"wildcard identity", a.Public(), none, "reboot", c.Public(), false},
		{"explicit", a.Public(), c.Public(), "ping", c.Public(), false},
		{"explicit not allowed", none, a.Public(), "deploy", none, true},
		{"explicit unknown", none, key(t, 4).Public(), "ping", none, true},
	}
	for _, tt := range tests {
		id, err := ChooseIdentity(ids, tt.def, tt.explicit, tt.verb)
		if tt.err {
			if !errors.Is(err, ErrNoIdentity) {
				t.Errorf("%s: err = %v", tt.name, err)
			}
			continue
		}
		if err != nil || id.Key.Public() != tt.want {
			t.Errorf("%s: got %v, %v", tt.name, id.Key.Public(), err)
		}
	}
	if _, err := ChooseIdentity(ids[:2], none, none, "reboot"); !errors.Is(err, ErrNoIdentity) {
		t.Errorf("no identity for verb: %v", err)
	}
	if _, err := ChooseIdentity(nil, none, none, "ping"); !errors.Is(err, ErrNoIdentity) {
		t.Errorf("no identities: %v", err)
	}
}
