package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/remaphore/remaphore/config"
)

func runMain(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = Main(args, &o, &e)
	return code, o.String(), e.String()
}

// TestExample_WritesFile (issue 19.7): -C FILE writes a config that the
// next command accepts: mode 0600, parsed by config.Load.
func TestExample_WritesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "remaphore.conf")
	code, out, errOut := runMain("-C", path)
	if code != ExitOK || out != "" {
		t.Fatalf("code %d, stdout %q, stderr %q", code, out, errOut)
	}
	if want := "remaphore: wrote " + path + " (mode 0600, a fresh key); edit server, credentials and destination, and list the other nodes under [ Peers ]\n"; errOut != want {
		t.Fatalf("stderr\n %q\nwant\n %q", errOut, want)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", fi.Mode(), err)
	}
	c, err := config.Load(path)
	if err != nil {
		t.Fatalf("the written file: %v", err)
	}
	if len(c.Identities) != 1 {
		t.Fatalf("%d identities", len(c.Identities))
	}
}

// -C FILE never overwrites: an existing file, or a symlink planted at the
// path, is left as it was; exit 2.
func TestExample_NeverOverwrites(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "remaphore.conf")
	if err := os.WriteFile(path, []byte("old key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runMain("-C", path)
	want := "remaphore: error: " + path + " already exists; remaphore -C never overwrites a file\n" +
		"remaphore: hint: choose another file name, or move the old file away first (it may hold the only copy of a key)\n"
	if code != ExitUsage || out != "" || errOut != want {
		t.Fatalf("code %d, stdout %q, stderr\n %q\nwant\n %q", code, out, errOut, want)
	}
	if b, _ := os.ReadFile(path); string(b) != "old key\n" {
		t.Fatalf("the file was changed: %q", b)
	}

	target := filepath.Join(dir, "elsewhere")
	link := filepath.Join(dir, "link.conf")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runMain("-C", link); code != ExitUsage || !strings.Contains(errOut, "already exists") {
		t.Fatalf("a dangling symlink: code %d, %q", code, errOut)
	}
	if _, err := os.Lstat(target); !os.IsNotExist(err) {
		t.Fatalf("the link's target was created: %v", err)
	}
}

func TestExample_Errors(t *testing.T) {
	code, _, errOut := runMain("-C", "a", "b")
	if want := "remaphore: error: -C takes at most one file, got 2 arguments\nremaphore: hint: write one file: remaphore -C FILE\n"; code != ExitUsage || errOut != want {
		t.Fatalf("code %d, %q", code, errOut)
	}
	missing := filepath.Join(t.TempDir(), "no", "such", "dir.conf")
	code, _, errOut = runMain("-C", missing)
	if want := "remaphore: error: -C " + missing + ": no such file or directory\nremaphore: hint: check the directory exists and is writable by this user\n"; code != ExitUsage || errOut != want {
		t.Fatalf("code %d, %q", code, errOut)
	}
}

// -C alone still prints the example on stdout.
func TestExample_Stdout(t *testing.T) {
	code, out, errOut := runMain("-C")
	if code != ExitOK || errOut != "" || !strings.HasPrefix(out, "# remaphore configuration.") {
		t.Fatalf("code %d, stderr %q, stdout %q", code, errOut, out)
	}
	if _, err := config.Parse("x", []byte(out)); err != nil {
		t.Fatal(err)
	}
}

// The hint for a missing config names -C FILE, which writes a file the
// next command accepts (a redirect would write a 0644 file it refuses).
func TestMissingConfigHint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none.conf")
	code, _, errOut := runMain("-c", path, "-s")
	want := "remaphore: error: " + path + ": no configuration file: no such file or directory\n" +
		"remaphore: hint: pass -c FILE, or write one with: remaphore -C /etc/remaphore/remaphore.conf\n"
	if code != ExitUsage || errOut != want {
		t.Fatalf("code %d, stderr\n %q\nwant\n %q", code, errOut, want)
	}
}
