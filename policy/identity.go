package policy

import (
	"fmt"

	"github.com/remaphore/remaphore/sign"
)

// Identity is a local key this node may sign with, and the verbs it may send.
type Identity struct {
	Key   sign.PrivateKey
	Verbs Verbs
}

// Peer is a remote node allowed to send to this one: its destination name,
// its public key, and the verbs it may use.
type Peer struct {
	Dest  string
	Key   sign.PublicKey
	Verbs Verbs
}

// ChooseIdentity picks the key a message with verb is signed with:
// explicit (-p) if given, which must allow verb; else def
// (default_identity) if it allows verb; else the first identity that does.
func ChooseIdentity(ids []Identity, def, explicit sign.PublicKey, verb string) (Identity, error) {
	if !explicit.IsZero() {
		for _, id := range ids {
			if id.Key.Public() == explicit {
				if !id.Verbs.Allows(verb) {
					return Identity{}, fmt.Errorf("%w: identity %s may send %s, not %q", ErrNoIdentity, explicit, id.Verbs, verb)
				}
				return id, nil
			}
		}
		return Identity{}, fmt.Errorf("%w: %s is not one of the [ Identities ] in the config", ErrNoIdentity, explicit)
	}
	if !def.IsZero() {
		for _, id := range ids {
			if id.Key.Public() == def && id.Verbs.Allows(verb) {
				return id, nil
			}
		}
	}
	for _, id := range ids {
		if id.Verbs.Allows(verb) {
			return id, nil
		}
	}
	if len(ids) == 0 {
		return Identity{}, fmt.Errorf("%w: the config has no [ Identities ] to sign with", ErrNoIdentity)
	}
	// What to do about it depends on the command line (was -v given?):
	// the caller's hint says it.
	return Identity{}, fmt.Errorf("%w: no identity in the config may send verb %q", ErrNoIdentity, verb)
}
