package config

import (
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"

	"github.com/remaphore/remaphore/internal/fileperm"
)

// Files that others can change are refused, as ssh refuses them: a config,
// a NATS credentials file or a TLS file that a user other than the one
// running remaphore (or root) could rewrite would let that user choose the
// peers a script obeys, the key messages are signed with, or the server
// the connection trusts. A file that holds a secret (private keys, a
// password, a NATS seed, a TLS key) is also refused when users outside
// its owner and group may read it. Group read stays allowed: the spec's
// model is a remaphore group that shares /etc/remaphore.
//
// The check is made on the file a path names after following symlinks
// (the target's mode and owner, as ssh does); the link and the directories
// above it are not checked: keep /etc/remaphore owned by root and not
// writable by others, which is the operator's part.

// holdsSecret reports whether the config itself is a secret: it holds
// private keys, or a server URL with a password or token in it.
func (c *Config) holdsSecret() (bool, string) {
	if len(c.Identities) > 0 {
		return true, "private keys ([ Identities ])"
	}
	for _, s := range c.Servers {
		if hasUserInfo(s) {
			return true, "a password in a server URL"
		}
	}
	return false, ""
}

func hasUserInfo(s string) bool {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		return true
	}
	return strings.Contains(s, "@")
}

// CheckFiles checks the files the config names for the connection:
// credentials (required: a missing file is an error with the config's
// file:line), tls_ca, tls_cert and tls_key. Each must be a regular file
// that no one but its owner (root or the user running remaphore) can
// change; credentials and tls_key, which hold secrets, must also be closed
// to users outside their group. Problems are *Error values with the line
// of the key that names the file: a missing file matches ErrNotFound, an
// unsafe one ErrPermissions.
func (c *Config) CheckFiles() error {
	for _, f := range []struct {
		key, path string
		secret    bool
		what      string
	}{
		{"credentials", c.Credentials, true, "a NATS secret"},
		{"tls_ca", c.TLSCA, false, ""},
		{"tls_cert", c.TLSCert, false, ""},
		{"tls_key", c.TLSKey, true, "a TLS private key"},
	} {
		if f.path == "" {
			continue
		}
		path := c.Resolve(f.path)
		line := c.lines[f.key]
		fi, err := os.Stat(path)
		if err != nil {
			kind, hint := errRead, "check the path on the "+f.key+": line"
			if os.IsNotExist(err) {
				kind = ErrNotFound
				hint = fmt.Sprintf("put the file there, or change %s: to where it is", f.key)
				if f.key == "credentials" {
					hint = "put the NATS credentials (a .creds file, or a file holding an nkey user seed SU…) there, or change credentials: to where they are"
				}
			}
			return &Error{File: c.Path, Line: line, kind: kind, err: err, Hint: hint,
				Msg: fmt.Sprintf("%s %s: %s", f.key, path, errText(err))}
		}
		if !fi.Mode().IsRegular() {
			return &Error{File: c.Path, Line: line, kind: errRead,
				Msg:  fmt.Sprintf("%s %s is not a regular file", f.key, path),
				Hint: "name the file itself on the " + f.key + ": line"}
		}
		if msg, fix, ok := fileperm.Unsafe(path, fi, f.secret, f.what); !ok {
			return &Error{File: c.Path, Line: line, kind: ErrPermissions, Hint: fix,
				Msg: fmt.Sprintf("%s %s %s", f.key, path, msg)}
		}
	}
	return nil
}

func errText(err error) string {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err.Error()
	}
	return err.Error()
}
