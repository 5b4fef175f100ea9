package policy

import (
	"fmt"
	"strings"

	"github.com/remaphore/remaphore/sign"
)

// Pattern is a parsed destination pattern.
type Pattern struct {
	src  string
	segs []segment
	tail bool // ends in "**"
}

type segment struct {
	lit    string // whole segment when !star
	star   bool
	prefix string
	suffix string
}

// AnyDestination is the default pattern: it reaches every node.
const AnyDestination = "**"

// ParsePattern validates and parses a destination pattern. On error it
// returns the zero Pattern, which matches nothing.
func ParsePattern(s string) (Pattern, error) {
	p, err := parsePattern(s)
	if err != nil {
		return Pattern{}, err
	}
	return p, nil
}

func parsePattern(s string) (Pattern, error) {
	p := Pattern{src: s}
	if s == "" {
		return p, fmt.Errorf("%w: empty destination pattern (use ** for every node)", ErrBadPattern)
	}
	if len(s) > sign.MaxDest {
		return p, fmt.Errorf("%w: destination pattern is %d bytes, limit %d", ErrBadPattern, len(s), sign.MaxDest)
	}
	parts := strings.Split(s, ".")
	// Empty segments first: in "com.**." the fault is the trailing dot,
	// not the "**" that would otherwise be blamed for not being last.
	for _, part := range parts {
		if part == "" {
			return p, fmt.Errorf("%w: %q has an empty segment (two dots, or a dot at either end)", ErrBadPattern, s)
		}
	}
	for i, part := range parts {
		if err := checkChars(part); err != nil {
			return p, fmt.Errorf("%w: %q: %v", ErrBadPattern, s, err)
		}
		if part == "**" {
			if i != len(parts)-1 {
				return p, fmt.Errorf("%w: %q: ** is allowed only as the last segment", ErrBadPattern, s)
			}
			p.tail = true
			continue
		}
		switch strings.Count(part, "*") {
		case 0:
			p.segs = append(p.segs, segment{lit: part})
		case 1:
			j := strings.IndexByte(part, '*')
			p.segs = append(p.segs, segment{star: true, prefix: part[:j], suffix: part[j+1:]})
		default:
			return p, fmt.Errorf("%w: %q: segment %q has more than one * (one wildcard per segment; ** only at the end)", ErrBadPattern, s, part)
		}
	}
	return p, nil
}

// MustPattern is ParsePattern for constants; it panics on error.
func MustPattern(s string) Pattern {
	p, err := ParsePattern(s)
	if err != nil {
		panic(err)
	}
	return p
}

// String returns the pattern as written.
func (p Pattern) String() string { return p.src }

// Match reports whether the destination name matches p. The zero Pattern
// matches nothing, and no name that ValidateName refuses is matched.
func (p Pattern) Match(name string) bool {
	if p.src == "" {
		return false
	}
	parts := strings.Split(name, ".")
	for _, part := range parts {
		if part == "" || strings.Contains(part, "*") || checkChars(part) != nil {
			return false // not a valid destination name
		}
	}
	if len(parts) < len(p.segs) {
		return false
	}
	for i, seg := range p.segs {
		if !seg.match(parts[i]) {
			return false
		}
	}
	rest := len(parts) - len(p.segs)
	if p.tail {
		return rest >= 1
	}
	return rest == 0
}

func (s segment) match(part string) bool {
	if !s.star {
		return part == s.lit
	}
	return len(part) >= len(s.prefix)+len(s.suffix) &&
		strings.HasPrefix(part, s.prefix) && strings.HasSuffix(part, s.suffix)
}

// ValidateName checks a node's destination name: dotted segments, none
// empty, no wildcard.
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty destination", ErrBadName)
	}
	if len(name) > sign.MaxDest {
		return fmt.Errorf("%w: destination is %d bytes, limit %d", ErrBadName, len(name), sign.MaxDest)
	}
	for _, part := range strings.Split(name, ".") {
		if part == "" {
			return fmt.Errorf("%w: %q has an empty segment", ErrBadName, name)
		}
		if strings.Contains(part, "*") {
			return fmt.Errorf("%w: %q holds a wildcard; a node's destination is a plain name like com.example.host", ErrBadName, name)
		}
		if err := checkChars(part); err != nil {
			return fmt.Errorf("%w: %q: %v", ErrBadName, name, err)
		}
	}
	return nil
}

func checkChars(part string) error {
	for _, r := range part {
		if r <= ' ' || r == 0x7f || r == ',' || r == '[' || r == ']' || r == '#' {
			return fmt.Errorf("segment %q holds %q (spaces, control characters, commas, brackets and # are not allowed)", part, r)
		}
	}
	return nil
}
