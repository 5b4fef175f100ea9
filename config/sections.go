package config

import (
	"strings"

	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/sign"
)

// This file holds the [ Identities ] and [ Peers ] lines: keys and verb lists.

// parsePublic reads a public key. A word too long to be a public key is
// likely a private key in the wrong place: it is not echoed.
func (p *parser) parsePublic(n int, s, what, hint string) (sign.PublicKey, error) {
	if len(s) > 56 {
		return sign.PublicKey{}, p.errf(n, sign.ErrBadKey, hint,
			"%s: %d characters is too long for a public key (is it a private key?)", what, len(s))
	}
	k, err := sign.ParsePublicKey(s)
	if err != nil {
		return k, p.errf(n, err, hint, "%s: %v", what, err)
	}
	return k, nil
}

const verbHint = "write the verbs in brackets after the key: [ping] for one verb, [ping, deploy] for several, [*] for every verb"

// verbs reads the "[a, b]" at the end of an identity or peer line.
func (p *parser) verbs(n int, rest string) (policy.Verbs, error) {
	rest = trim(rest)
	if rest == "" {
		return policy.Verbs{}, p.errf(n, nil, verbHint, "no verb list")
	}
	if rest[0] != '[' || rest[len(rest)-1] != ']' {
		return policy.Verbs{}, p.errf(n, nil, verbHint, "the verb list must be written in brackets, after the key")
	}
	inner := rest[1 : len(rest)-1]
	if strings.ContainsAny(inner, "[]") {
		return policy.Verbs{}, p.errf(n, nil, verbHint, "more than one verb list (or a stray bracket)")
	}
	if trim(inner) == "" {
		return policy.Verbs{}, p.errf(n, nil, verbHint, "empty verb list: it would allow nothing")
	}
	v, err := policy.ParseVerbList(inner)
	if err != nil {
		return policy.Verbs{}, p.errf(n, err, verbHint, "verb list: %v", err)
	}
	// A verb must read back as itself: lower-casing can lengthen a word.
	for _, verb := range v.List() {
		if again, err := policy.NormalizeVerb(verb); err != nil || again != verb {
			return policy.Verbs{}, p.errf(n, err, verbHint, "verb %s does not survive lower-casing", show(verb))
		}
	}
	return v, nil
}

// splitKeys returns the first two fields of s and the rest of the line.
func splitKeys(s string) (a, b, rest string) {
	f := fields(s)
	if len(f) < 2 {
		if len(f) == 1 {
			return f[0], "", ""
		}
		return "", "", ""
	}
	a, b = f[0], f[1]
	i := strings.Index(s, a) + len(a)
	i += strings.Index(s[i:], b) + len(b)
	return a, b, s[i:]
}

func (p *parser) identity(n int, s string) error {
	pubS, privS, rest := splitKeys(s)
	const hint = "write an identity as: publickey privatekey [verbs], for example <publickey> <privatekey> [ping]"
	if privS == "" {
		return p.errf(n, nil, hint, "identity line needs a public key, a private key and a verb list")
	}
	pub, err := p.parsePublic(n, pubS, "identity public key", hint)
	if err != nil {
		if _, perr := sign.ParsePrivateKey(pubS); perr == nil {
			err.(*Error).Msg = "identity: the first key is a private key; the order is publickey privatekey"
		}
		return err
	}
	priv, perr := sign.ParsePrivateKey(privS)
	if perr != nil {
		return p.errf(n, perr, hint, "identity %s: private key: %v", pub, perr)
	}
	if priv.Public() != pub {
		return p.errf(n, sign.ErrKeyMismatch,
			"the private key must be the one generated with this public key (remaphore -C prints a fresh pair)",
			"identity %s: the private key does not belong to this public key (it is the private key of %s)", pub, priv.Public())
	}
	v, err := p.verbs(n, rest)
	if err != nil {
		err.(*Error).Msg = "identity " + pub.String() + ": " + err.(*Error).Msg
		return err
	}
	if first, ok := p.idLine[pub]; ok {
		return p.errf(n, nil, "keep one line per identity; put all its verbs in one list",
			"duplicate identity %s (first on line %d)", pub, first)
	}
	p.idLine[pub] = n
	p.c.Identities = append(p.c.Identities, policy.Identity{Key: priv, Verbs: v})
	return nil
}

func (p *parser) peer(n int, s string) error {
	dest, pubS, rest := splitKeys(s)
	const hint = "write a peer as: destination publickey [verbs], for example com.example.host2 <publickey> [ping]"
	if pubS == "" {
		return p.errf(n, nil, hint, "peer line needs a destination, a public key and a verb list")
	}
	if _, err := sign.ParsePrivateKey(dest); err == nil {
		return p.errf(n, nil, "a private key belongs under [ Identities ] only, as publickey privatekey [verbs]",
			"peer line starts with a private key")
	}
	_, privErr := sign.ParsePrivateKey(pubS)
	if _, err := sign.ParsePublicKey(dest); err == nil {
		if privErr == nil {
			return p.errf(n, nil, "move the line under [ Identities ], or write the peer as destination publickey [verbs]",
				"peer line holds a public and a private key: it looks like an identity line")
		}
		return p.errf(n, nil, hint, "peer line starts with a public key; the order is destination publickey [verbs]")
	}
	if privErr == nil {
		return p.errf(n, nil, "a peer is listed with its public key only; the private key stays on the peer",
			"peer %s: the key is a private key", show(dest))
	}
	if err := policy.ValidateName(dest); err != nil {
		return p.errf(n, err, "write the peer's destination as configured on the peer, like com.example.host2",
			"peer destination: %v", err)
	}
	pub, err := p.parsePublic(n, pubS, "peer "+dest+": public key", hint)
	if err != nil {
		return err
	}
	v, err := p.verbs(n, rest)
	if err != nil {
		err.(*Error).Msg = "peer " + dest + ": " + err.(*Error).Msg
		return err
	}
	if first, ok := p.peerLine[pub]; ok {
		return p.errf(n, nil, "a public key may be listed once; merge the verbs into the first line",
			"duplicate peer public key %s (first on line %d)", pub, first)
	}
	p.peerLine[pub] = n
	p.c.Peers = append(p.c.Peers, policy.Peer{Dest: dest, Key: pub, Verbs: v})
	return nil
}
