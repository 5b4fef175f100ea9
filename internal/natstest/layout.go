package natstest

import (
	"fmt"
	"strings"
)

// Layout fills integration/compose/auth.conf.tmpl, remaphore's
// least-privilege NATS layout, so that the compose harness and the
// in-process permissions test run the same file with the same
// placeholders.
type Layout struct {
	Users          []string // lines for @USERS@, from UserLine (comment lines allowed)
	MaxConsumers   int      // the account's consumer limit; a stream's may not exceed it
	MaxFile        string   // the account's file storage limit, a NATS size ("10GB")
	MaxConnections int
	AuditConsumer  string // the auditor's durable consumer, denied to hosts by name
}

// UserLine is one user of the layout: an nkey and the permission set
// (RECEIVER, SENDER, SENDER_RECEIVER, AUDITOR) it gets.
func UserLine(public, role string) string {
	return fmt.Sprintf("      { nkey: %s, permissions: $%s }", public, role)
}

// Render returns the template with every placeholder filled; a line that
// is only @USERS@ becomes the user lines.
func (l Layout) Render(tmpl string) string {
	r := strings.NewReplacer(
		"@MAX_CONSUMERS@", fmt.Sprint(l.MaxConsumers),
		"@MAX_FILE@", l.MaxFile,
		"@MAX_CONNECTIONS@", fmt.Sprint(l.MaxConnections),
		"@AUDIT_CONSUMER@", l.AuditConsumer,
	)
	var b strings.Builder
	for line := range strings.Lines(r.Replace(tmpl)) {
		if strings.TrimSpace(line) == "@USERS@" {
			for _, u := range l.Users {
				b.WriteString(u + "\n")
			}
			continue
		}
		b.WriteString(line)
	}
	return b.String()
}
