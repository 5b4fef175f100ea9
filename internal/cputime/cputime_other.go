//go:build !unix

// Package cputime reads the CPU time this process has used, for
// benchmarks that report CPU per operation beside their rate.
package cputime

import "time"

// Process is not measured here: benchmarks report no CPU figure.
func Process() time.Duration { return 0 }
