// Command remaphore is a remote semaphore: it sends signed messages over
// NATS JetStream, waits for them, and answers requests. See README.md.
package main

import (
	"os"

	"github.com/remaphore/remaphore/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
