package version

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromInfo(t *testing.T) {
	vcs := []debug.BuildSetting{{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.time", Value: "2026-11-27T10:00:00Z"}}
	for _, c := range []struct {
		name string
		info debug.BuildInfo
		want string
	}{
		{"release", debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, "v1.2.3"},
		{"checkout", debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs}, "devel 0123abcd 2026-11-27T10:00:00Z"},
		{"modified checkout", debug.BuildInfo{Main: debug.Module{Version: "v1.2.4-0.20261127100000-0123abcd+dirty"},
			Settings: append(vcs, debug.BuildSetting{Key: "vcs.modified", Value: "true"})}, "devel 0123abcd 2026-11-27T10:00:00Z (modified)"},
		{"pseudo-version without vcs", debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261127100000-0123abcd"}}, "v0.0.0-20261127100000-0123abcd"},
		{"nothing", debug.BuildInfo{}, "(unknown)"},
		{"devel without vcs", debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "(devel)"},
	} {
		if got := fromInfo(&c.info); got != c.want {
			t.Errorf("%s: fromInfo = %q, want %q", c.name, got, c.want)
		}
	}
}

// The running test binary has build info; the line names the program and
// is one line.
func TestString(t *testing.T) {
	s := String("remaphore")
	if !strings.HasPrefix(s, "remaphore ") || strings.Contains(s, "\n") {
		t.Errorf("String = %q, want one line starting with the program name", s)
	}
}
