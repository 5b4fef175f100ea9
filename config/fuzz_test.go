package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/remaphore/remaphore/sign"
)

const corpusDir = "testdata/fuzz/FuzzParse"

// FuzzParse: Parse never panics, every error is an *Error matching
// ErrInvalid that does not show a private key from the input, and whatever
// parses survives Format and Parse unchanged.
func FuzzParse(f *testing.F) {
	entries, err := os.ReadDir(corpusDir)
	if err != nil {
		f.Fatalf("seed corpus: %v", err)
	}
	if len(entries) < 5 {
		f.Fatalf("seed corpus %s holds %d files, want at least 5", corpusDir, len(entries))
	}
	f.Add(Example(testKey(f, 99)))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.conf", data)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, ErrInvalid) || errors.Is(err, ErrNotFound) {
				t.Fatalf("error %T %v is not an *Error matching only ErrInvalid", err, err)
			}
			shown := err.Error() + "\n" + e.Hint
			for _, w := range strings.Fields(string(data)) {
				if len(w) < 58 {
					continue
				}
				if _, perr := sign.ParsePrivateKey(w); perr == nil && strings.Contains(shown, w[:12]) {
					t.Fatalf("error shows a private key: %s", shown)
				}
			}
			return
		}
		roundTrip(t, c)
	})
}

// The seed corpus holds valid-* files that parse and broken-* files that
// do not; fuzzing may add more files, which FuzzParse runs as well.
func TestFuzzSeeds(t *testing.T) {
	entries, err := os.ReadDir(corpusDir)
	if err != nil {
		t.Fatal(err)
	}
	var valid, broken int
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, "valid-") && !strings.HasPrefix(name, "broken-") {
			continue
		}
		data := readCorpusFile(t, filepath.Join(corpusDir, name))
		c, err := Parse(name, data)
		if strings.HasPrefix(name, "valid-") {
			valid++
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			if len(c.Identities) == 0 && len(c.Peers) == 0 && !strings.Contains(name, "minimal") {
				t.Errorf("%s: no identities or peers; the seed should exercise them", name)
			}
			roundTrip(t, c)
		} else {
			broken++
			if err == nil {
				t.Errorf("%s: parsed, want an error", name)
			}
		}
	}
	if valid < 3 || broken < 3 {
		t.Errorf("seed corpus: %d valid and %d broken files, want at least 3 of each", valid, broken)
	}
}

// readCorpusFile decodes a file in the Go fuzz corpus format holding one
// []byte value.
func readCorpusFile(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitN(bytes.TrimSpace(raw), []byte("\n"), 2)
	if len(lines) != 2 || string(lines[0]) != "go test fuzz v1" {
		t.Fatalf("%s: not a fuzz corpus file", path)
	}
	lit, ok := bytes.CutPrefix(lines[1], []byte("[]byte("))
	lit, ok2 := bytes.CutSuffix(lit, []byte(")"))
	if !ok || !ok2 {
		t.Fatalf("%s: want one []byte(...) line", path)
	}
	s, err := strconv.Unquote(string(lit))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return []byte(s)
}
