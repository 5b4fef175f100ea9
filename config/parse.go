package config

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/remaphore/remaphore/sign"
)

// This file holds the lexer and the line parser: sections, key: value
// lines, the checks on the file as a whole. The values themselves are
// checked in values.go, identity and peer lines in sections.go.

const (
	secTop = iota
	secIdentities
	secPeers
)

type parser struct {
	name     string
	c        *Config
	section  int
	seen     map[string]int // key -> line it was set on
	idLine   map[sign.PublicKey]int
	peerLine map[sign.PublicKey]int
}

func (p *parser) errf(line int, cause error, hint, format string, args ...any) *Error {
	return &Error{File: p.name, Line: line, Msg: fmt.Sprintf(format, args...), Hint: hint, err: cause}
}

// Parse reads a configuration file's contents. name is used in error
// messages and as Config.Path (pass the file's path, or "" for none). It
// returns the first problem found, as an *Error matching ErrInvalid.
func Parse(name string, data []byte) (*Config, error) {
	if len(data) > MaxFileSize {
		return nil, &Error{File: name, Msg: fmt.Sprintf("file is %d bytes, limit %d", len(data), MaxFileSize),
			Hint: "a remaphore configuration is a few lines of keys, identities and peers; check the path"}
	}
	p := &parser{
		name: name,
		c: &Config{
			Path:         name,
			Subject:      DefaultSubject,
			AllowSkew:    DefaultAllowSkew,
			Replicas:     DefaultReplicas,
			Retention:    DefaultRetention,
			MaxConsumers: DefaultMaxConsumers,
			MaxBytes:     DefaultMaxBytes,
			Heartbeat:    DefaultHeartbeat,
		},
		seen:     map[string]int{},
		idLine:   map[sign.PublicKey]int{},
		peerLine: map[sign.PublicKey]int{},
	}
	text := strings.TrimPrefix(string(data), "\ufeff")
	for i, raw := range strings.Split(text, "\n") {
		if err := p.line(i+1, strings.TrimSuffix(raw, "\r")); err != nil {
			return nil, err
		}
	}
	if err := p.finish(); err != nil {
		return nil, err
	}
	p.c.lines = p.seen
	return p.c, nil
}

// isSpace is the field separator: space and tab only, so that a value reads
// back exactly as it was written.
func isSpace(b byte) bool { return b == ' ' || b == '\t' }

func trim(s string) string {
	return strings.TrimFunc(s, func(r rune) bool { return r == ' ' || r == '\t' })
}

// fields splits s at runs of spaces and tabs.
func fields(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' })
}

// stripComment cuts s at the first '#' that starts the line or follows a
// space or tab.
func stripComment(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '#' && (i == 0 || isSpace(s[i-1])) {
			return s[:i]
		}
	}
	return s
}

// show quotes user text for an error message, unless it is long enough to
// be a pasted key: then only its length is given.
func show(s string) string {
	if len(s) > 40 {
		return fmt.Sprintf("(a %d-character word)", utf8.RuneCountInString(s))
	}
	return strconv.Quote(s)
}

func (p *parser) line(n int, raw string) error {
	if !utf8.ValidString(raw) {
		return p.errf(n, nil, "save the file as UTF-8 text", "line is not valid UTF-8")
	}
	if i := strings.IndexFunc(raw, func(r rune) bool { return unicode.IsControl(r) && r != '\t' }); i >= 0 {
		r, _ := utf8.DecodeRuneInString(raw[i:])
		return p.errf(n, nil, "remove the control character; only spaces and tabs separate fields",
			"line holds control character %U at column %d", r, utf8.RuneCountInString(raw[:i])+1)
	}
	s := trim(stripComment(raw))
	if s == "" {
		return nil
	}
	if s[0] == '[' {
		return p.sectionHeader(n, s)
	}
	if err := p.strayPrivateKey(n, s); err != nil {
		return err
	}
	switch p.section {
	case secIdentities:
		if err := p.keyInSection(n, s, "[ Identities ]"); err != nil {
			return err
		}
		return p.identity(n, s)
	case secPeers:
		if err := p.keyInSection(n, s, "[ Peers ]"); err != nil {
			return err
		}
		return p.peer(n, s)
	}
	return p.keyValue(n, s)
}

func (p *parser) sectionHeader(n int, s string) error {
	if !strings.HasSuffix(s, "]") {
		return p.errf(n, nil, "write [ Identities ] or [ Peers ] alone on the line",
			"section header %s has no closing ]", show(s))
	}
	name := strings.ToLower(trim(s[1 : len(s)-1]))
	switch name {
	case "identities":
		p.section = secIdentities
	case "peers":
		p.section = secPeers
	default:
		return p.errf(n, nil, "the sections are [ Identities ] and [ Peers ]",
			"unknown section %s", show(s))
	}
	return nil
}

// strayPrivateKey refuses a private key anywhere but in its place on an
// identity line, so that it is neither taken as a name nor shown in an error
// message. The first two fields of identity and peer lines are checked by
// identity and peer, with messages of their own.
func (p *parser) strayPrivateKey(n int, s string) error {
	if p.section != secTop {
		_, _, s = splitKeys(s)
	} else if !strings.Contains(s, ":") {
		return nil // keyValue refuses the line without showing it
	}
	words := strings.FieldsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || strings.ContainsRune(",[]:=\"'`()<>;", r)
	})
	for _, w := range words {
		if len(w) < 58 || len(w) > 90 {
			continue // neither an nkeys seed (58) nor base58 of 64 bytes (86-88)
		}
		if _, err := sign.ParsePrivateKey(w); err == nil {
			return p.errf(n, nil, "remove it; a private key belongs only in [ Identities ] as publickey privatekey [verbs] (if it was shared, make a new one with remaphore -C)",
				"line holds a private key out of place")
		}
	}
	return nil
}

// keyInSection refuses a "key: value" line after a section began.
func (p *parser) keyInSection(n int, s, section string) error {
	i := strings.IndexByte(s, ':')
	if i < 0 {
		return nil
	}
	k := strings.ToLower(trim(s[:i]))
	if lookupKey(k) == nil {
		return nil
	}
	return p.errf(n, nil, "move the "+k+": line above the first section; keys belong to the top of the file",
		"key %s inside %s: keys must come before the first section", k, section)
}

// missingColon refuses "server nats://host:4222" and "credentials /x":
// a known key followed by a space and no colon. Without this the first
// line reads as the unknown key "server nats" (the colon of nats://), and
// the second as a line that is not key: value. The value is not shown: it
// may hold a password.
func (p *parser) missingColon(n int, s string) error {
	f := fields(s)
	if len(f) < 2 || strings.HasPrefix(f[1], ":") || strings.HasSuffix(f[0], ":") {
		return nil
	}
	k := lookupKey(strings.ToLower(f[0]))
	if k == nil {
		return nil
	}
	ex := exampleValue(k.name)
	if ex == "" {
		ex = "VALUE"
	}
	return p.errf(n, nil, "write "+k.name+": "+ex+" (a colon after the key)",
		"%s has no colon after it: a key is written key: value", k.name)
}

func (p *parser) keyValue(n int, s string) error {
	if err := p.missingColon(n, s); err != nil {
		return err
	}
	i := strings.IndexByte(s, ':')
	if i < 0 {
		hint := "write key: value, for example server: nats://127.0.0.1:4222"
		if len(fields(s)) >= 2 {
			hint = "identity lines go under [ Identities ], peer lines under [ Peers ]; keys are written key: value"
		}
		return p.errf(n, nil, hint, "expected key: value (known keys: %s)", keyNames)
	}
	name := strings.ToLower(trim(s[:i]))
	v := trim(s[i+1:])
	if strings.HasPrefix(v, "#") {
		v = "" // "key:#comment"
	}
	if name == "" {
		return p.errf(n, nil, "write key: value", "no key before ':' (known keys: %s)", keyNames)
	}
	k := lookupKey(name)
	if k == nil {
		hint := "remove the line, or use one of the known keys"
		if m := suggest(name); m != "" {
			hint = fmt.Sprintf("did you mean %s?", m)
		}
		return p.errf(n, nil, hint, "unknown key %s (known keys: %s)", show(name), keyNames)
	}
	if first, ok := p.seen[k.name]; ok && !k.repeat {
		return p.errf(n, nil, "keep one "+k.name+": line; only server may be repeated",
			"%s given twice (first on line %d)", k.name, first)
	}
	if v == "" {
		hint := "write a value after the colon"
		if ex := exampleValue(k.name); ex != "" {
			hint = "write it like " + k.name + ": " + ex
		}
		return p.errf(n, nil, hint, "%s has no value", k.name)
	}
	if _, ok := p.seen[k.name]; !ok {
		p.seen[k.name] = n
	}
	return k.set(p, n, v)
}

// finish checks what needs the whole file.
func (p *parser) finish() error {
	c := p.c
	if len(c.Servers) == 0 {
		return &Error{File: p.name, Msg: "no server: at least one NATS server is required",
			Hint: "add a line like: server: nats://127.0.0.1:4222 (repeat it for failover servers)"}
	}
	if c.Credentials == "" {
		return &Error{File: p.name, Msg: "no credentials: the NATS credentials file is required",
			Hint: "add a line like: credentials: /etc/remaphore/remaphore.creds"}
	}
	if c.Destination == "" {
		return &Error{File: p.name, Msg: "no destination: this node's destination name is required",
			Hint: "add a line like: destination: com.example.host1 (unique, reverse dotted)"}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		have, missing := "tls_cert", "tls_key"
		if c.TLSCert == "" {
			have, missing = missing, have
		}
		return p.errf(p.seen[have], nil, fmt.Sprintf("add %s: with the matching file, or remove %s:", missing, have),
			"%s without %s: a client certificate needs both", have, missing)
	}
	if !c.DefaultIdentity.IsZero() {
		if _, ok := c.Identity(c.DefaultIdentity); !ok {
			return p.errf(p.seen["default_identity"], nil,
				"write the public key of one of the [ Identities ] lines, or remove default_identity:",
				"default_identity %s is not one of the [ Identities ]", c.DefaultIdentity)
		}
	}
	return nil
}
