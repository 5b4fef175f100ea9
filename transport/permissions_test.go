package transport

import (
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
)

// The refusal of a publish is recognised only for the subject asked about:
// another subject's refusal, a subscription's, or another error is not
// taken for it (the connection's last error is sticky).
func TestPublishRefused(t *testing.T) {
	violation := func(what string) error {
		return fmt.Errorf("%w: %s", nats.ErrPermissionViolation, what)
	}
	exact := func(want string) func(string) bool { return func(s string) bool { return s == want } }
	create := consumerCreateSubject("REMAPHORE", "remaphore.reply.ab12")
	for _, c := range []struct {
		name  string
		err   error
		match func(string) bool
		want  bool
	}{
		{"the subject", violation(`Permissions Violation for Publish to "remaphore.msg.all"`), exact("remaphore.msg.all"), true},
		{"a longer subject", violation(`Permissions Violation for Publish to "remaphore.msg.allx"`), exact("remaphore.msg.all"), false},
		{"another subject", violation(`Permissions Violation for Publish to "remaphore.msg.deploys"`), exact("remaphore.msg.all"), false},
		{"a subscription", violation(`Permissions Violation for Subscription to "remaphore.msg.all"`), exact("remaphore.msg.all"), false},
		{"another error", errors.New(`Permissions Violation for Publish to "remaphore.msg.all"`), exact("remaphore.msg.all"), false},
		{"no error", nil, exact("remaphore.msg.all"), false},
		{"unterminated", violation(`Permissions Violation for Publish to "remaphore.msg.all`), exact("remaphore.msg.all"), false},
		{"a consumer create", violation(`Permissions Violation for Publish to "$JS.API.CONSUMER.CREATE.REMAPHORE.Uq3ZQRRZ.remaphore.reply.ab12"`), create, true},
		{"a create with another filter", violation(`Permissions Violation for Publish to "$JS.API.CONSUMER.CREATE.REMAPHORE.Uq3ZQRRZ.remaphore.reply.ab12x"`), create, false},
		{"a create on another stream", violation(`Permissions Violation for Publish to "$JS.API.CONSUMER.CREATE.OTHER.Uq3ZQRRZ.remaphore.reply.ab12"`), create, false},
		{"a create with no name", violation(`Permissions Violation for Publish to "$JS.API.CONSUMER.CREATE.REMAPHORE.remaphore.reply.ab12"`), create, false},
		{"a create with a dotted name", violation(`Permissions Violation for Publish to "$JS.API.CONSUMER.CREATE.REMAPHORE.a.b.remaphore.reply.ab12"`), create, false},
	} {
		if got := publishRefused(c.err, c.match); got != c.want {
			t.Errorf("%s: publishRefused(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}
