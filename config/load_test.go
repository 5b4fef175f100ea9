package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeConf(t *testing.T, path, text string, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // umask
		t.Fatal(err)
	}
}

func TestLoadNotFound(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.conf")
	_, err := Load(path)
	if !errors.Is(err, ErrNotFound) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("want ErrNotFound, got %v", err)
	}
	if errors.Is(err, ErrInvalid) || errors.Is(err, ErrPermissions) {
		t.Fatalf("matches a wrong sentinel: %v", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.File != path || e.Line != 0 || !strings.HasPrefix(err.Error(), path+": ") {
		t.Fatalf("%#v", err)
	}
	if want := "pass -c FILE, or write one with: remaphore -C /etc/remaphore/remaphore.conf"; e.Hint != want {
		t.Fatalf("hint %q, want %q", e.Hint, want)
	}
}

// TestLoadPermissions holds Load to ssh's rule (issue 14): a config
// others can change is refused, one holding a secret also when others may
// read it; group read stays allowed. Each refusal names the file, its mode
// and the exact chmod that fixes it.
func TestLoadPermissions(t *testing.T) {
	k := testKey(t, 1)
	withIDs := string(Example(k))
	noIDs := "server: nats://n:4222\ncredentials: c\ndestination: a.b\n[ Peers ]\na.c " + k.Public().String() + " [ping]\n"
	withPassword := "server: nats://alice:S3cretPW@n:4222\ncredentials: c\ndestination: a.b\n"
	const ids = "holds private keys ([ Identities ]) and is open to other users"
	dir := t.TempDir()
	for _, tc := range []struct {
		text     string
		mode     fs.FileMode
		msg, fix string // "" = accepted
	}{
		{withIDs, 0o600, "", ""},
		{withIDs, 0o640, "", ""},
		{withIDs, 0o400, "", ""},
		{withIDs, 0o440, "", ""},
		{withIDs, 0o660, "is writable by its group (mode 0660)", "chmod g-w"},
		{withIDs, 0o644, ids + " (mode 0644)", "chmod o-r"},
		{withIDs, 0o604, ids + " (mode 0604)", "chmod o-r"},
		{withIDs, 0o642, "is writable by other users, and " + ids + " (mode 0642)", "chmod o-w"},
		{withIDs, 0o641, ids + " (mode 0641)", "chmod o-x"},
		{withIDs, 0o777, "is writable by its group and by other users, and " + ids + " (mode 0777)", "chmod g-w,o-rwx"},
		{noIDs, 0o644, "", ""},
		{noIDs, 0o664, "is writable by its group (mode 0664)", "chmod g-w"},
		{noIDs, 0o666, "is writable by its group and by other users (mode 0666)", "chmod g-w,o-w"},
		{noIDs, 0o646, "is writable by other users (mode 0646)", "chmod o-w"},
		{withPassword, 0o640, "", ""},
		{withPassword, 0o644, "holds a password in a server URL and is open to other users (mode 0644)", "chmod o-r"},
	} {
		name := fmt.Sprintf("%04o-%d", tc.mode, len(tc.text))
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name+".conf")
			writeConf(t, path, tc.text, tc.mode)
			c, err := Load(path)
			if tc.msg == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.Path != path {
					t.Fatalf("Path = %q", c.Path)
				}
				return
			}
			if !errors.Is(err, ErrPermissions) || errors.Is(err, ErrInvalid) || errors.Is(err, ErrNotFound) {
				t.Fatalf("want only ErrPermissions, got %v", err)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("%T", err)
			}
			if want := path + ": " + tc.msg; err.Error() != want {
				t.Fatalf("error\n %q\nwant\n %q", err, want)
			}
			if want := tc.fix + " " + path; e.Hint != want {
				t.Fatalf("hint %q, want %q", e.Hint, want)
			}
			if strings.Contains(err.Error()+e.Hint, k.Base58()) || strings.Contains(err.Error()+e.Hint, "S3cretPW") {
				t.Fatal("secret in error")
			}
			// The fix fixes it.
			writeConf(t, path, tc.text, tc.mode&^0o027)
			if _, err := Load(path); err != nil {
				t.Fatalf("after the fix: %v", err)
			}
		})
	}
}

// A config owned by another non-root user is refused even at mode 0600:
// that user may rewrite it (and chmod it back).
func TestLoadPermissions_OtherOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving a file to another user needs root")
	}
	path := filepath.Join(t.TempDir(), "r.conf")
	writeConf(t, path, string(Example(testKey(t, 1))), 0o600)
	if err := os.Chown(path, 4321, 4321); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if !errors.Is(err, ErrPermissions) {
		t.Fatalf("want ErrPermissions, got %v", err)
	}
	if want := path + ": is owned by 4321, neither root nor the user running this (root) (mode 0600)"; err.Error() != want {
		t.Fatalf("error\n %q\nwant\n %q", err, want)
	}
	if want := "chown root " + path; hintOf(err) != want {
		t.Fatalf("hint %q, want %q", hintOf(err), want)
	}
	// Owned by root (a root-owned file a group may read): accepted.
	if err := os.Chown(path, 0, 4321); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err != nil {
		t.Fatalf("root-owned, group-readable: %v", err)
	}
}

// A symlink is judged by the file it points to, which is what is read.
func TestLoadPermissions_Symlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "real.conf")
	writeConf(t, target, string(Example(testKey(t, 1))), 0o666)
	link := filepath.Join(dir, "link.conf")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	_, err := Load(link)
	if !errors.Is(err, ErrPermissions) || !strings.Contains(err.Error(), "(mode 0666)") {
		t.Fatalf("a link to a 0666 file: %v", err)
	}
	if err := os.Chmod(target, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(link); err != nil {
		t.Fatalf("a link to a 0600 file: %v", err)
	}
}

func TestLoadParseError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.conf")
	writeConf(t, path, "server: nats://n:4222\ncolour: red\n", 0o600)
	_, err := Load(path)
	if !errors.Is(err, ErrInvalid) || !strings.HasPrefix(err.Error(), path+":2: unknown key") {
		t.Fatalf("%v", err)
	}
}

func TestLoadDirectory(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(dir)
	if err == nil || errors.Is(err, ErrInvalid) || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "directory") {
		t.Fatalf("%v", err)
	}
}

func TestLoadUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads any file")
	}
	path := filepath.Join(t.TempDir(), "r.conf")
	writeConf(t, path, "server: nats://n:4222\n", 0o000)
	_, err := Load(path)
	if err == nil || !errors.Is(err, fs.ErrPermission) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrPermissions) {
		t.Fatalf("%v", err)
	}
	if !strings.Contains(hintOf(err), "chmod g+r") {
		t.Fatalf("hint %q", hintOf(err))
	}
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "etc", "remaphore.conf")
	writeConf(t, path, "server: nats://n:4222\ncredentials: creds/r.creds\ndestination: a.b\ntls_ca: /abs/ca.pem\ntls_cert: ../c.pem\ntls_key: k.pem\naudit_db: ./audit.db\n", 0o600)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ in, want string }{
		{c.Credentials, filepath.Join(dir, "etc", "creds", "r.creds")},
		{c.TLSCA, "/abs/ca.pem"},
		{c.TLSCert, filepath.Join(dir, "c.pem")},
		{c.TLSKey, filepath.Join(dir, "etc", "k.pem")},
		{c.AuditDB, filepath.Join(dir, "etc", "audit.db")},
		{"", ""},
	} {
		if got := c.Resolve(tc.in); got != tc.want {
			t.Errorf("Resolve(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	// A relative config path gives paths relative to the same directory.
	rel := &Config{Path: "conf/remaphore.conf"}
	if got := rel.Resolve("r.creds"); got != filepath.Join("conf", "r.creds") {
		t.Errorf("relative: %q", got)
	}
	// No Path: unchanged.
	none := &Config{}
	if got := none.Resolve("r.creds"); got != "r.creds" {
		t.Errorf("no path: %q", got)
	}
}
