//go:build race

package integration

import "time"

// Under go test -race the remaphore binary is built with -race too, so a
// data race in the command fails the test that ran into it (the race
// detector makes the process exit 66 and print the race on stderr). The
// race-enabled binary starts slower: receivers that must time out get a
// second more.
func init() {
	buildFlags = append(buildFlags, "-race")
	refuseWithin += time.Second
}
