package config

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/sign"
)

// DefaultPath is the configuration file read when -c is not given.
const DefaultPath = "/etc/remaphore/remaphore.conf"

// Defaults of the optional keys. A Config built in code may leave these
// fields zero; Format then leaves the key out and Parse fills in the default.
const (
	DefaultSubject      = "remaphore"
	DefaultAllowSkew    = 5 * time.Second
	DefaultReplicas     = 1
	DefaultRetention    = 24 * time.Hour
	DefaultMaxConsumers = 100000
	// DefaultMaxBytes bounds the stream's storage (max_bytes): about a
	// thousand messages at the 1 MiB payload limit, millions of ordinary
	// ones. When full, the stream discards its oldest messages.
	DefaultMaxBytes = 1 << 30
	// MinMaxBytes is the smallest max_bytes accepted: room for a few
	// messages of the largest size.
	MinMaxBytes = 8 << 20
	// DefaultHeartbeat is a waiting receiver's idle heartbeat while its
	// consumer is on the server it is connected to: the server sends one
	// per receiver per interval, and two missed ones make the receiver
	// recreate its consumer. Losing that server is a disconnect, noticed
	// at once (a silent one by the connection's pings), so the heartbeat
	// is the last resort there: 30s rather than the NATS client's 5s, at
	// 5,000 waiting receivers 167 heartbeats a second instead of 1,000.
	// A consumer on another server of a cluster, whose loss only the
	// heartbeat notices (within two), gets at most 5s.
	DefaultHeartbeat = 30 * time.Second
	// MinHeartbeat and MaxHeartbeat bound "heartbeat" (the NATS client
	// accepts at most 30s).
	MinHeartbeat = time.Second
	MaxHeartbeat = 30 * time.Second
)

// Limits checked by Parse.
const (
	// MaxReplicas is the largest "replicas" JetStream accepts.
	MaxReplicas = 5
	// MaxFileSize is the largest configuration file Parse and Load read.
	MaxFileSize = 1 << 20
	// maxStream is the longest stream name accepted.
	maxStream = 255
)

// Config is a parsed and validated remaphore.conf.
type Config struct {
	Path            string            // file it was read from ("" when parsed from bytes without a name)
	Servers         []string          // "server", repeatable, order kept (failover order)
	Credentials     string            // "credentials", required, as written
	Subject         string            // "subject", default "remaphore"
	DefaultIdentity sign.PublicKey    // "default_identity", zero when absent
	Destination     string            // "destination", required
	AllowSkew       time.Duration     // "allow_skew", default 5s, > 0
	Stream          string            // "stream", default "" (transport derives the name from Subject)
	Replicas        int               // "replicas", default 1, 1..5
	Retention       time.Duration     // "retention", default 24h, > 0
	MaxConsumers    int               // "max_consumers", default 100000, >= 1
	MaxBytes        int64             // "max_bytes", default 1 GiB, >= 8 MiB
	Heartbeat       time.Duration     // "heartbeat", default 30s, 1s..30s: a waiting receiver's idle heartbeat (at most 5s for a consumer on another server)
	TLSCA           string            // "tls_ca"
	TLSCert         string            // "tls_cert"; tls_cert and tls_key both or neither
	TLSKey          string            // "tls_key"
	AuditDB         string            // "audit_db"
	AuditRefusedMax int64             // "audit_refused_max_bytes": a size; 0 when absent (the auditor's default, 256 MiB)
	Identities      []policy.Identity // "[ Identities ]": publickey privatekey [verbs]
	Peers           []policy.Peer     // "[ Peers ]": destination publickey [verbs]

	lines map[string]int // key -> line it was set on, for errors about the files keys name
}

// Identity returns the configured identity whose public key is pub.
func (c *Config) Identity(pub sign.PublicKey) (policy.Identity, bool) {
	for _, id := range c.Identities {
		if id.Key.Public() == pub {
			return id, true
		}
	}
	return policy.Identity{}, false
}

// IsSet reports whether the file holds the key (for example "retention"),
// as opposed to the default.
func (c *Config) IsSet(key string) bool {
	_, ok := c.lines[key]
	return ok
}

// Peer returns the configured peer whose public key is pub.
func (c *Config) Peer(pub sign.PublicKey) (policy.Peer, bool) {
	for _, p := range c.Peers {
		if p.Key == pub {
			return p, true
		}
	}
	return policy.Peer{}, false
}

// key describes one "key: value" of the top section. The order of keys is
// the order Format writes them in.
type key struct {
	name   string
	repeat bool
	set    func(p *parser, line int, v string) error
}

var keys []key

// keyNames is the list of known keys, for error messages.
var keyNames string

func init() {
	keys = []key{
		{"server", true, (*parser).setServer},
		{"credentials", false, func(p *parser, _ int, v string) error { p.c.Credentials = v; return nil }},
		{"subject", false, (*parser).setSubject},
		{"default_identity", false, (*parser).setDefaultIdentity},
		{"destination", false, (*parser).setDestination},
		{"allow_skew", false, func(p *parser, line int, v string) error {
			return p.setDuration(line, "allow_skew", v, &p.c.AllowSkew)
		}},
		{"stream", false, (*parser).setStream},
		{"replicas", false, func(p *parser, line int, v string) error {
			return p.setInt(line, "replicas", v, 1, MaxReplicas, &p.c.Replicas,
				"write a number from 1 to 5: 1 for a single server, 3 for a cluster")
		}},
		{"retention", false, func(p *parser, line int, v string) error {
			return p.setDuration(line, "retention", v, &p.c.Retention)
		}},
		{"max_consumers", false, func(p *parser, line int, v string) error {
			return p.setInt(line, "max_consumers", v, 1, int(^uint(0)>>1), &p.c.MaxConsumers,
				"write a number of at least 1 (every waiting receiver holds one consumer)")
		}},
		{"max_bytes", false, (*parser).setMaxBytes},
		{"heartbeat", false, (*parser).setHeartbeat},
		{"tls_ca", false, func(p *parser, _ int, v string) error { p.c.TLSCA = v; return nil }},
		{"tls_cert", false, func(p *parser, _ int, v string) error { p.c.TLSCert = v; return nil }},
		{"tls_key", false, func(p *parser, _ int, v string) error { p.c.TLSKey = v; return nil }},
		{"audit_db", false, func(p *parser, _ int, v string) error { p.c.AuditDB = v; return nil }},
		{"audit_refused_max_bytes", false, (*parser).setAuditRefusedMax},
	}
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.name
	}
	keyNames = strings.Join(names, ", ")
}

func lookupKey(name string) *key {
	for i := range keys {
		if keys[i].name == name {
			return &keys[i]
		}
	}
	return nil
}

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

func exampleValue(name string) string {
	switch name {
	case "server":
		return "nats://127.0.0.1:4222"
	case "credentials":
		return "/etc/remaphore/remaphore.creds"
	case "subject":
		return DefaultSubject
	case "destination":
		return "com.example.host1"
	case "allow_skew":
		return "5s"
	case "retention":
		return "24h"
	case "replicas":
		return "1"
	case "max_consumers":
		return "100000"
	case "max_bytes":
		return "1GiB"
	case "stream":
		return "REMAPHORE"
	case "heartbeat":
		return "30s"
	}
	return ""
}

// suggest returns the known key closest to name, or "".
func suggest(name string) string {
	norm := strings.NewReplacer("-", "_", " ", "_", ".", "_").Replace(name)
	best, bestD := "", 3
	for _, k := range keys {
		if norm == k.name {
			return k.name
		}
		if d := distance(norm, k.name); d < bestD {
			best, bestD = k.name, d
		}
	}
	return best
}

// distance is the Levenshtein distance of a and b (bytes).
func distance(a, b string) int {
	if len(a) > 64 {
		return len(a)
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func (p *parser) setServer(n int, v string) error {
	if err := checkServer(v); err != "" {
		return p.errf(n, nil, "write one URL per server: line, like nats://natsserver:4222 (also tls://, ws://, wss://) or host:port",
			"server %s: %s", redact(v), err)
	}
	p.c.Servers = append(p.c.Servers, v)
	return nil
}

// redact hides a password in a server URL for error messages: user:xxxxx@
// as nats.go writes it, and xxxxx@ for a user part alone, which NATS reads
// as a token.
func redact(v string) string {
	if u, err := url.Parse(v); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		} else {
			u.User = url.User("xxxxx")
		}
		return show(u.String())
	}
	if strings.Contains(v, "@") {
		return "(a URL with credentials)"
	}
	return show(v)
}

// checkServer returns what is wrong with a server URL, or "".
func checkServer(v string) string {
	if strings.ContainsAny(v, " \t,") {
		return "holds a space or comma (one server per line)"
	}
	if i := strings.Index(v, "://"); i >= 0 {
		u, err := url.Parse(v)
		if err != nil {
			return "not a valid URL"
		}
		switch u.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return fmt.Sprintf("scheme %s is not nats, tls, ws or wss", show(u.Scheme))
		}
		if u.Hostname() == "" {
			return "has no host"
		}
		if port := u.Port(); port != "" {
			if e := checkPort(port); e != "" {
				return e
			}
		} else if strings.HasSuffix(u.Host, ":") {
			return "has an empty port"
		}
		if (u.Scheme == "nats" || u.Scheme == "tls") && (u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "") {
			return "a nats:// or tls:// URL has no path"
		}
		return ""
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return "neither a URL (nats://, tls://, ws://, wss://) nor host:port"
	}
	if host == "" || strings.ContainsAny(host, "/?#@") {
		return "host:port needs a host name"
	}
	return checkPort(port)
}

func checkPort(port string) string {
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || port[0] == '+' {
		return fmt.Sprintf("port %s is not a number from 1 to 65535", show(port))
	}
	return ""
}

func (p *parser) setSubject(n int, v string) error {
	if err := checkSubject(v); err != "" {
		return p.errf(n, nil, "write a plain NATS subject like remaphore or ops.remaphore (no *, >, spaces or empty tokens)",
			"subject %s %s", show(v), err)
	}
	p.c.Subject = v
	return nil
}

// checkSubject returns what is wrong with a subject root, or "".
func checkSubject(v string) string {
	if len(v) > sign.MaxRoot {
		return fmt.Sprintf("is %d bytes, limit %d", len(v), sign.MaxRoot)
	}
	if strings.ContainsAny(v, "*>") {
		return "holds a wildcard (* or >)"
	}
	if strings.IndexFunc(v, unicode.IsSpace) >= 0 {
		return "holds a space"
	}
	for _, t := range strings.Split(v, ".") {
		if t == "" {
			return "has an empty token (two dots, or a dot at either end)"
		}
	}
	return ""
}

func (p *parser) setStream(n int, v string) error {
	bad := ""
	switch {
	case len(v) > maxStream:
		bad = fmt.Sprintf("is %d bytes, limit %d", len(v), maxStream)
	case strings.ContainsAny(v, ".*>/\\"):
		bad = "holds one of . * > / \\"
	case strings.IndexFunc(v, unicode.IsSpace) >= 0:
		bad = "holds a space"
	}
	if bad != "" {
		return p.errf(n, nil, "write a name like REMAPHORE, or remove the line to derive it from subject",
			"stream name %s %s", show(v), bad)
	}
	p.c.Stream = v
	return nil
}

func (p *parser) setDefaultIdentity(n int, v string) error {
	k, err := p.parsePublic(n, v, "default_identity", "write the public key (first field) of one of the [ Identities ]")
	if err != nil {
		return err
	}
	p.c.DefaultIdentity = k
	return nil
}

func (p *parser) setDestination(n int, v string) error {
	if err := policy.ValidateName(v); err != nil {
		return p.errf(n, err, "write this node's name in reverse dotted form, like com.example.host1",
			"destination: %v", err)
	}
	p.c.Destination = v
	return nil
}

func (p *parser) setDuration(n int, name, v string, dst *time.Duration) error {
	d, err := time.ParseDuration(v)
	if err != nil {
		return p.errf(n, err, "write a duration like 5s, 1m30s or 24h",
			"%s: %s is not a duration", name, show(v))
	}
	if d <= 0 {
		return p.errf(n, nil, "write a positive duration like 5s, 1m30s or 24h",
			"%s must be greater than zero (got %s)", name, show(v))
	}
	*dst = d
	return nil
}

func (p *parser) setHeartbeat(n int, v string) error {
	var d time.Duration
	if err := p.setDuration(n, "heartbeat", v, &d); err != nil {
		return err
	}
	if d < MinHeartbeat || d > MaxHeartbeat {
		return p.errf(n, nil, "write a duration from 1s to 30s: shorter notices a lost consumer sooner, longer costs the server less per waiting receiver",
			"heartbeat must be 1s to 30s (got %s)", show(v))
	}
	p.c.Heartbeat = d
	return nil
}

func (p *parser) setInt(n int, name, v string, lo, hi int, dst *int, hint string) error {
	i, err := strconv.Atoi(v)
	if err != nil {
		return p.errf(n, nil, hint, "%s: %s is not a whole number", name, show(v))
	}
	if i < lo || i > hi {
		if hi == int(^uint(0)>>1) {
			return p.errf(n, nil, hint, "%s must be at least %d (got %d)", name, lo, i)
		}
		return p.errf(n, nil, hint, "%s must be %d to %d (got %d)", name, lo, hi, i)
	}
	*dst = i
	return nil
}

// sizeUnits are the suffixes max_bytes accepts, binary as NATS's own
// sizes are.
var sizeUnits = []struct {
	suffix string
	mult   int64
}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}, {"", 1}}

// ParseSize reads a byte count: a whole number with an optional KiB, MiB,
// GiB or TiB suffix ("1GiB", "512MiB", "1073741824").
func ParseSize(v string) (int64, error) {
	for _, u := range sizeUnits {
		num, ok := strings.CutSuffix(v, u.suffix)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(trim(num), 10, 64)
		if err != nil || n < 0 || num == "" || num[0] == '+' {
			break
		}
		if n > (1<<62)/u.mult {
			return 0, fmt.Errorf("%s is too large", show(v))
		}
		return n * u.mult, nil
	}
	return 0, fmt.Errorf("%s is not a size (a number with KiB, MiB, GiB or TiB)", show(v))
}

// FormatSize writes n as ParseSize reads it, in the largest unit that
// divides it.
func FormatSize(n int64) string {
	for _, u := range sizeUnits[:4] {
		if n != 0 && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

func (p *parser) setMaxBytes(n int, v string) error {
	const hint = "write a size like 1GiB or 512MiB (the stream discards its oldest messages when full)"
	size, err := ParseSize(v)
	if err != nil {
		return p.errf(n, nil, hint, "max_bytes: %v", err)
	}
	if size < MinMaxBytes {
		return p.errf(n, nil, hint, "max_bytes must be at least %s (got %s)", FormatSize(MinMaxBytes), show(v))
	}
	p.c.MaxBytes = size
	return nil
}

// setAuditRefusedMax reads the auditor's bound on refused records,
// in the same size syntax as max_bytes so that one habit serves both.
func (p *parser) setAuditRefusedMax(n int, v string) error {
	const hint = "write a size of at least 1MiB, like 256MiB (the auditor evicts its oldest refused records beyond it)"
	size, err := ParseSize(v)
	if err != nil {
		return p.errf(n, nil, hint, "audit_refused_max_bytes: %v", err)
	}
	if size < 1<<20 {
		return p.errf(n, nil, hint, "audit_refused_max_bytes must be at least 1MiB (got %s)", show(v))
	}
	p.c.AuditRefusedMax = size
	return nil
}

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
