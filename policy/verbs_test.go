package policy

import (
	"errors"
	"strings"
	"testing"
)

func TestParseVerbList(t *testing.T) {
	tests := []struct {
		in     string
		str    string
		allows []string
		denies []string
	}{
		{"ping", "[ping]", []string{"ping"}, []string{"deploy", "PING"}},
		{"ping, deploy", "[deploy, ping]", []string{"ping", "deploy"}, []string{"status"}},
		{"Ping,DEPLOY", "[deploy, ping]", []string{"ping", "deploy"}, nil},
		{" ping , ping ", "[ping]", []string{"ping"}, nil},
		{"*", "[*]", []string{"anything", "ping"}, nil},
		{"ping, *", "[*]", []string{"x"}, nil},
	}
	for _, tt := range tests {
		v, err := ParseVerbList(tt.in)
		if err != nil {
			t.Fatalf("ParseVerbList(%q): %v", tt.in, err)
		}
		if v.String() != tt.str {
			t.Errorf("ParseVerbList(%q) = %s, want %s", tt.in, v, tt.str)
		}
		for _, a := range tt.allows {
			if !v.Allows(strings.ToLower(a)) {
				t.Errorf("%s does not allow %q", v, a)
			}
		}
		for _, d := range tt.denies {
			if v.Allows(d) {
				t.Errorf("%s allows %q", v, d)
			}
		}
	}
}

func TestParseVerbList_Refused(t *testing.T) {
	for _, in := range []string{"", " ", "ping,", ",ping", "a b", "pi*ng", "a[b", strings.Repeat("v", 65)} {
		if _, err := ParseVerbList(in); !errors.Is(err, ErrBadVerb) {
			t.Errorf("ParseVerbList(%q) = %v, want ErrBadVerb", in, err)
		}
	}
}

func TestVerbs_ZeroAllowsNothing(t *testing.T) {
	var v Verbs
	if v.Allows("ping") || !v.Empty() {
		t.Fatal("zero Verbs allows something")
	}
}
