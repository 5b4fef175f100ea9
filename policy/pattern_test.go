package policy

import (
	"errors"
	"testing"
)

func TestPattern_Match(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		// The spec's examples.
		{"com.crypto.host.us", "com.crypto.host.us", true},
		{"com.crypto.*.us", "com.crypto.host.us", true},
		{"com.crypto.**", "com.crypto.host.us", true},
		// ** matches one or more further segments, never zero.
		{"com.crypto.**", "com.crypto.host", true},
		{"com.crypto.**", "com.crypto", false},
		{"**", "com", true},
		{"**", "com.crypto.host.us", true},
		// Length must agree without **.
		{"com.crypto.host", "com.crypto.host.us", false},
		{"com.crypto.host.us.x", "com.crypto.host.us", false},
		{"com.crypto.*", "com.crypto.host.us", false},
		// One * inside a segment.
		{"com.crypto.us*.x", "com.crypto.us-east.x", true},
		{"com.crypto.us*.x", "com.crypto.us.x", true},
		{"com.crypto.us*.x", "com.crypto.eu-west.x", false},
		{"com.*-1.x", "com.web-1.x", true},
		{"com.*-1.x", "com.web-2.x", false},
		{"com.a*z.x", "com.abcz.x", true},
		{"com.a*z.x", "com.az.x", true},
		{"com.a*z.x", "com.a.x", false},
		{"com.a*z.x", "com.za.x", false},
		{"*.crypto.**", "org.crypto.host", true},
		// A * never crosses a dot.
		{"com.*.us", "com.crypto.host.us", false},
		// Literal match is exact.
		{"com.crypto", "com.cryptox", false},
		{"com.crypto", "Com.crypto", false},
		// Names with empty segments never match.
		{"**", "com..x", false},
		{"com.**", "com.", false},
		{"*", "", false},
	}
	for _, tt := range tests {
		p, err := ParsePattern(tt.pattern)
		if err != nil {
			t.Fatalf("ParsePattern(%q): %v", tt.pattern, err)
		}
		if got := p.Match(tt.name); got != tt.want {
			t.Errorf("%q.Match(%q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

func TestParsePattern_Refused(t *testing.T) {
	for _, s := range []string{
		"",
		"com.**.us",   // ** not at the end
		"**.com",      // ** not at the end
		"com.a*b*.x",  // two * in one segment
		"com.***",     // three *
		"com..x",      // empty segment
		".com",        // empty first segment
		"com.",        // empty last segment
		"com.cr ypto", // space
		"com.a,b",     // comma
		"com.[x]",     // brackets
		string(make([]byte, 300)),
	} {
		if _, err := ParsePattern(s); !errors.Is(err, ErrBadPattern) {
			t.Errorf("ParsePattern(%q) error = %v, want ErrBadPattern", s, err)
		}
	}
}

func TestPattern_ZeroMatchesNothing(t *testing.T) {
	var p Pattern
	if p.Match("com") {
		t.Fatal("zero Pattern matched")
	}
}

func TestValidateName(t *testing.T) {
	for _, ok := range []string{"com", "com.crypto.us.left", "com.web-1", "x_y.z"} {
		if err := ValidateName(ok); err != nil {
			t.Errorf("ValidateName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "com..x", "com.*", "com.**", "a b", ".com", "com.", "a#b"} {
		if err := ValidateName(bad); !errors.Is(err, ErrBadName) {
			t.Errorf("ValidateName(%q) = %v, want ErrBadName", bad, err)
		}
	}
}

func FuzzPatternMatch(f *testing.F) {
	requireCorpus(f, "FuzzPatternMatch")
	f.Fuzz(func(t *testing.T, pattern, name string) {
		p, err := ParsePattern(pattern)
		if err != nil {
			if p.Match(name) {
				t.Fatalf("refused pattern %q matched %q", pattern, name)
			}
			return
		}
		got := p.Match(name)
		if got && ValidateName(name) != nil && len(name) <= 255 {
			t.Fatalf("pattern %q matched invalid name %q", pattern, name)
		}
		// A pattern without wildcards matches exactly itself.
		if ValidateName(pattern) == nil && got != (pattern == name) {
			t.Fatalf("literal %q.Match(%q) = %v", pattern, name, got)
		}
		// "**" matches every valid name.
		if pattern == "**" && ValidateName(name) == nil && !got {
			t.Fatalf("** did not match %q", name)
		}
	})
}
