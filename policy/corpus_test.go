package policy

import (
	"os"
	"path/filepath"
	"testing"
)

// requireCorpus fails a fuzz test whose seed corpus has gone missing, so a
// moved testdata folder cannot turn it into a silent no-op.
func requireCorpus(f *testing.F, name string) {
	f.Helper()
	entries, err := os.ReadDir(filepath.Join("testdata", "fuzz", name))
	if err != nil || len(entries) < 3 {
		f.Fatalf("seed corpus testdata/fuzz/%s is missing or holds fewer than 3 files (%v)", name, err)
	}
}
