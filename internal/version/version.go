// Package version says which build of remaphore is running, from the
// build info the Go toolchain stamps into every binary: the module
// version for `go install …@version`, else the VCS revision, its commit
// time and whether the checkout had changes, for a build from a checkout.
package version

import "runtime/debug"

// String is the one-line version of the running binary, prog first:
// "remaphore v1.2.3", "remaphore devel 0123abcd… 2026-11-27T10:00:00Z
// (modified)", or "remaphore (unknown)" when the binary has no build
// info (a test binary, or one built without module support).
func String(prog string) string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return prog + " (unknown)"
	}
	return prog + " " + fromInfo(info)
}

// fromInfo formats info. A build from a checkout carries vcs.* settings
// (and, since Go 1.24, a pseudo-version derived from them): the revision
// says more. A `go install …@version` build has none: its module version.
func fromInfo(info *debug.BuildInfo) string {
	var rev, at string
	modified := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev == "" {
		if info.Main.Version == "" {
			return "(unknown)"
		}
		return info.Main.Version
	}
	out := "devel " + rev
	if at != "" {
		out += " " + at
	}
	if modified {
		out += " (modified)"
	}
	return out
}
