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
	if want := "pass -c FILE, or write one with: remaphore -C > /etc/remaphore/remaphore.conf"; e.Hint != want {
		t.Fatalf("hint %q, want %q", e.Hint, want)
	}
}

func TestLoadPermissions(t *testing.T) {
	k := testKey(t, 1)
	withIDs := string(Example(k))
	noIDs := "server: nats://n:4222\ncredentials: c\ndestination: a.b\n[ Peers ]\na.c " + k.Public().String() + " [ping]\n"
	dir := t.TempDir()
	for _, tc := range []struct {
		text string
		mode fs.FileMode
		ok   bool
	}{
		{withIDs, 0o600, true},
		{withIDs, 0o640, true},
		{withIDs, 0o660, true},
		{withIDs, 0o400, true},
		{withIDs, 0o644, false},
		{withIDs, 0o604, false},
		{withIDs, 0o642, false},
		{withIDs, 0o641, false},
		{withIDs, 0o777, false},
		{noIDs, 0o644, true},
		{noIDs, 0o666, true},
	} {
		name := fmt.Sprintf("%04o-%d", tc.mode, len(tc.text))
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name+".conf")
			writeConf(t, path, tc.text, tc.mode)
			c, err := Load(path)
			if tc.ok {
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
			if want := "chmod o-rwx " + path; e.Hint != want {
				t.Fatalf("hint %q, want %q", e.Hint, want)
			}
			if !strings.HasPrefix(err.Error(), path+": ") || !strings.Contains(err.Error(), fmt.Sprintf("mode %04o", tc.mode)) {
				t.Fatalf("message %q", err)
			}
			if strings.Contains(err.Error()+e.Hint, k.Base58()) {
				t.Fatal("private key in error")
			}
		})
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
