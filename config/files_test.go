package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// filesConf writes a config naming creds and TLS files in dir and loads it.
func filesConf(t *testing.T, dir string) *Config {
	t.Helper()
	path := filepath.Join(dir, "r.conf")
	writeConf(t, path, "server: nats://n:4222\ncredentials: nats.nk\ndestination: a.b\ntls_ca: ca.pem\ntls_cert: cert.pem\ntls_key: key.pem\n", 0o600)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCheckFiles: the credentials and TLS files the config names are
// refused when others can change them, and the secret ones also when
// others can read them; each error has the config's file:line of the key,
// the file, its mode and the fix.
func TestCheckFiles(t *testing.T) {
	for _, tc := range []struct {
		file string
		mode fs.FileMode
		want string // "" = accepted
		fix  string
	}{
		{"nats.nk", 0o600, "", ""},
		{"nats.nk", 0o640, "", ""},
		{"nats.nk", 0o644, ":2: credentials %s holds a NATS secret and is open to other users (mode 0644)", "chmod o-r"},
		{"nats.nk", 0o660, ":2: credentials %s is writable by its group (mode 0660)", "chmod g-w"},
		{"key.pem", 0o640, "", ""},
		{"key.pem", 0o604, ":6: tls_key %s holds a TLS private key and is open to other users (mode 0604)", "chmod o-r"},
		{"ca.pem", 0o644, "", ""},
		{"ca.pem", 0o666, ":4: tls_ca %s is writable by its group and by other users (mode 0666)", "chmod g-w,o-w"},
		{"cert.pem", 0o644, "", ""},
		{"cert.pem", 0o646, ":5: tls_cert %s is writable by other users (mode 0646)", "chmod o-w"},
	} {
		t.Run(tc.file+"-"+tc.mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range []string{"nats.nk", "ca.pem", "cert.pem", "key.pem"} {
				writeConf(t, filepath.Join(dir, f), "x\n", 0o600)
			}
			c := filesConf(t, dir)
			p := filepath.Join(dir, tc.file)
			if err := os.Chmod(p, tc.mode); err != nil {
				t.Fatal(err)
			}
			err := c.CheckFiles()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrPermissions) {
				t.Fatalf("want ErrPermissions, got %v", err)
			}
			if want := c.Path + strings.ReplaceAll(tc.want, "%s", p); err.Error() != want {
				t.Fatalf("error\n %q\nwant\n %q", err, want)
			}
			if want := tc.fix + " " + p; hintOf(err) != want {
				t.Fatalf("hint %q, want %q", hintOf(err), want)
			}
		})
	}
}

// A missing credentials file is named with the config line that names it
// (issue 19.10), before any connection is tried.
func TestCheckFiles_MissingCredentials(t *testing.T) {
	dir := t.TempDir()
	c := filesConf(t, dir)
	err := c.CheckFiles()
	if !errors.Is(err, ErrNotFound) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("want ErrNotFound, got %v", err)
	}
	if want := c.Path + ":2: credentials " + filepath.Join(dir, "nats.nk") + ": no such file or directory"; err.Error() != want {
		t.Fatalf("error\n %q\nwant\n %q", err, want)
	}
	if want := "put the NATS credentials (a .creds file, or a file holding an nkey user seed SU…) there, or change credentials: to where they are"; hintOf(err) != want {
		t.Fatalf("hint %q", hintOf(err))
	}
}

func TestCheckFiles_NotARegularFile(t *testing.T) {
	dir := t.TempDir()
	c := filesConf(t, dir)
	if err := os.Mkdir(filepath.Join(dir, "nats.nk"), 0o700); err != nil {
		t.Fatal(err)
	}
	err := c.CheckFiles()
	if want := c.Path + ":2: credentials " + filepath.Join(dir, "nats.nk") + " is not a regular file"; err == nil || err.Error() != want {
		t.Fatalf("error %v, want %q", err, want)
	}
}

func TestCheckFiles_OtherOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving a file to another user needs root")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "nats.nk")
	writeConf(t, p, "x\n", 0o600)
	c := filesConf(t, dir)
	if err := os.Chown(p, 4321, 0); err != nil {
		t.Fatal(err)
	}
	err := c.CheckFiles()
	if want := c.Path + ":2: credentials " + p + " is owned by 4321, neither root nor the user running this (root) (mode 0600)"; err == nil || err.Error() != want {
		t.Fatalf("error %v, want %q", err, want)
	}
	if want := "chown root " + p; hintOf(err) != want {
		t.Fatalf("hint %q", hintOf(err))
	}
}
