package ingest

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/remaphore/remaphore/audit"
	"github.com/remaphore/remaphore/policy"
)

// logRefused writes one debug line per refused record when debug is on
// (it skips building them when it is off, for a flood's sake) and one
// warning per batch either way; accepted records are not logged.
func TestLogRefused_DebugLinesOnlyWhenEnabled(t *testing.T) {
	entries := []audit.Entry{
		{Seq: 7, Subject: "r.msg.all", Reason: policy.ReasonUnknownSender, Detail: "sender X is not in [ Peers ]"},
		{Seq: 8, Subject: "r.msg.all", Reason: policy.ReasonAccepted},
		{Seq: 9, Subject: "r.msg.all", Reason: policy.ReasonMalformed, Detail: "junk"},
	}
	for _, level := range []slog.Level{slog.LevelDebug, slog.LevelInfo} {
		var buf bytes.Buffer
		in := &ingester{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: level}))}
		in.logRefused(entries)
		out := buf.String()
		debug := strings.Count(out, "level=DEBUG msg=refused ")
		want := 0
		if level == slog.LevelDebug {
			want = 2
			for _, s := range []string{"seq=7 ", "reason=unknown-sender", `detail="sender X is not in [ Peers ]"`, "seq=9 ", "reason=malformed"} {
				if !strings.Contains(out, s) {
					t.Errorf("debug output lacks %q:\n%s", s, out)
				}
			}
		}
		if debug != want || strings.Contains(out, "seq=8 ") {
			t.Errorf("level %v: %d debug lines, want %d (and none for the accepted seq 8):\n%s", level, debug, want, out)
		}
		if !strings.Contains(out, "level=WARN msg=\"refused messages recorded\" count=2 ") {
			t.Errorf("level %v: no warning with count=2:\n%s", level, out)
		}
	}
}
