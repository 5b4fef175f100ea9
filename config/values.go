package config

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/sign"
)

// This file holds the checks on the values of the top keys: server URLs,
// subjects, stream names, durations, numbers and sizes.

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

// setAuditMetrics reads the address the auditor serves its metrics on.
func (p *parser) setAuditMetrics(n int, v string) error {
	if err := CheckListenAddr(v); err != nil {
		return p.errf(n, nil, ListenAddrHint, "audit_metrics %s: %v", show(v), err)
	}
	p.c.AuditMetrics = v
	return nil
}

// ListenAddrHint is what a bad audit_metrics or -metrics address is
// told.
const ListenAddrHint = "write HOST:PORT, like 127.0.0.1:9464 (this host only) or [::1]:9464; :9464 listens on every interface"

// CheckListenAddr reports why addr is not a HOST:PORT to listen on: the
// port is a number from 0 to 65535 (0: any free port), the host empty
// (every interface), an IP address or a name.
func CheckListenAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("not HOST:PORT: %v", err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	if strings.ContainsAny(host, " \t/") {
		return fmt.Errorf("host %q is neither an IP address nor a host name", host)
	}
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
