package policy

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/remaphore/remaphore/sign"
)

// DefaultVerb is the verb sent when -v is not given: the example
// configuration's verb.
const DefaultVerb = "ping"

// Verbs is the set of verbs an identity may send or a peer may use.
// The zero value allows nothing.
type Verbs struct {
	all  bool
	list []string // lower case, sorted, no duplicates
}

// AllVerbs allows every verb ("[*]").
func AllVerbs() Verbs { return Verbs{all: true} }

// ParseVerbList reads a comma-separated list as written between the
// brackets in the configuration ("ping", "ping, deploy", "*") or after -v
// ("a,b"). Verbs are lower-cased; spaces around commas are ignored.
func ParseVerbList(s string) (Verbs, error) {
	var v Verbs
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "*" {
			v.all = true
			continue
		}
		verb, err := NormalizeVerb(f)
		if err != nil {
			return Verbs{}, err
		}
		if !slices.Contains(v.list, verb) {
			v.list = append(v.list, verb)
		}
	}
	if v.all {
		v.list = nil
	}
	slices.Sort(v.list)
	return v, nil
}

// NormalizeVerb lower-cases a verb and checks it: not empty, at most
// sign.MaxVerb bytes, no spaces, commas, brackets or '*'.
func NormalizeVerb(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("%w: empty verb (write a name like ping, or * for every verb)", ErrBadVerb)
	}
	// Lower-case first: lower-casing can lengthen a string (Ⱥ → ⱥ), and
	// the limit applies to what goes on the wire.
	s = strings.ToLower(s)
	if len(s) > sign.MaxVerb {
		return "", fmt.Errorf("%w: verb %.16q… is %d bytes, limit %d", ErrBadVerb, s, len(s), sign.MaxVerb)
	}
	// A verb is the script's first argument: one starting with '-' would
	// read as an option ("-rf"), and a control character (C1 and the
	// Unicode line separators included) could rewrite a log line or a
	// terminal. Receivers check received verbs with this same function.
	if strings.HasPrefix(s, "-") {
		return "", fmt.Errorf("%w: verb %q starts with '-' (a script would take it for an option)", ErrBadVerb, s)
	}
	for _, r := range s {
		if r <= ' ' || unicode.IsControl(r) || r == 0x2028 || r == 0x2029 || r == utf8.RuneError || r == ',' || r == '[' || r == ']' || r == '*' || r == '#' {
			return "", fmt.Errorf("%w: verb %q holds %q (spaces, control characters, commas, brackets, * and # are not allowed)", ErrBadVerb, s, r)
		}
	}
	return s, nil
}

// All reports whether v allows every verb.
func (v Verbs) All() bool { return v.all }

// List returns the verbs, sorted; nil when All.
func (v Verbs) List() []string { return slices.Clone(v.list) }

// Empty reports whether v allows nothing.
func (v Verbs) Empty() bool { return !v.all && len(v.list) == 0 }

// Allows reports whether verb (already lower case) is in v.
func (v Verbs) Allows(verb string) bool {
	if v.all {
		return true
	}
	_, found := slices.BinarySearch(v.list, verb)
	return found
}

// String returns the configuration form: "[*]" or "[ping, deploy]".
func (v Verbs) String() string {
	if v.all {
		return "[*]"
	}
	return "[" + strings.Join(v.list, ", ") + "]"
}
