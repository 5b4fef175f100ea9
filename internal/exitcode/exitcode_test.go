package exitcode

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/remaphore/remaphore/config"
	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/transport"
)

func TestKnown(t *testing.T) {
	_, cfgErr := config.Parse("x.conf", []byte("bogus: 1\n"))
	tests := []struct {
		name string
		err  error
		code int
		hint bool
		ok   bool
	}{
		{"carried", fmt.Errorf("wrapped: %w", &Error{Code: 3, Err: errors.New("x"), Hint: "h"}), 3, true, true},
		{"usage", UsageError("do this", "bad %s", "flag"), Usage, true, true},
		{"config file", cfgErr, Usage, true, true},
		{"pattern", fmt.Errorf("-D: %w", policy.ErrBadPattern), Usage, false, true},
		{"credentials", fmt.Errorf("x: %w", transport.ErrCredentials), Usage, true, true},
		{"weak stream", fmt.Errorf("start: %w", &transport.StreamError{Stream: "S", Msg: "m", Fix: "nats stream edit S --dupe-window 2m0s"}), Usage, true, true},
		{"no jetstream", fmt.Errorf("%w: none", transport.ErrJetStream), 0, false, false},
		{"other", errors.New("network"), 0, false, false},
	}
	for _, tt := range tests {
		code, hint, ok := Known(tt.err)
		if code != tt.code || ok != tt.ok || (hint != "") != tt.hint {
			t.Errorf("%s: Known = %d, %q, %v", tt.name, code, hint, ok)
		}
	}
}

func TestPrint(t *testing.T) {
	var b strings.Builder
	if code := Print(&b, "prog", errors.New("it broke"), 3, "fix it"); code != 3 {
		t.Fatalf("code %d", code)
	}
	if got := b.String(); got != "prog: error: it broke\nprog: hint: fix it\n" {
		t.Fatalf("printed %q", got)
	}
	b.Reset()
	Print(&b, "prog", errors.New("x"), 1, "")
	if got := b.String(); got != "prog: error: x\n" {
		t.Fatalf("printed %q without a hint", got)
	}
}
