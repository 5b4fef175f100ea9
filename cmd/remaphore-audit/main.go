// Command remaphore-audit keeps a forensic record of every remaphore
// message and reply: run reads the stream into a bbolt database; query,
// tail, verify and stats read it. See cmd/remaphore-audit/README.md, the
// operator manual.
package main

import (
	"os"

	"github.com/remaphore/remaphore/auditcli"
)

func main() {
	os.Exit(auditcli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
