//go:build compose && !unix

package compose

import "testing"

// lockCheckout: no flock here; run one harness per checkout at a time.
func lockCheckout(*testing.T, string) {}
