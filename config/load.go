package config

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/remaphore/remaphore/internal/fileperm"
)

// Load reads the configuration file at path and parses it. A missing file
// gives an *Error matching ErrNotFound. A file that others can change
// (writable by group or others, or owned by a user other than root and the
// one running remaphore) is refused with an *Error matching
// ErrPermissions, as is one that holds a secret ([ Identities ], or a
// password in a server URL) and grants any permission to others (mode &
// 0o007): owner and group may read it, as the spec intends for a group of
// remaphore users. The hint is the chmod or chown that fixes it.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, openError(path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, openError(path, err)
	}
	if fi.IsDir() {
		return nil, &Error{File: path, Msg: "is a directory, not a configuration file",
			Hint: "pass -c with the file itself, for example -c " + filepath.Join(path, "remaphore.conf"), kind: errRead}
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, openError(path, err)
	}
	c, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	// fi is the open file's own (a symlink's target): what was checked is
	// what was read.
	secret, what := c.holdsSecret()
	if msg, fix, ok := fileperm.Unsafe(path, fi, secret, what); !ok {
		return nil, &Error{File: path, kind: ErrPermissions, Msg: msg, Hint: fix}
	}
	return c, nil
}

func openError(path string, err error) error {
	var pe *fs.PathError
	msg := err.Error()
	if errors.As(err, &pe) {
		msg = pe.Err.Error()
	}
	if errors.Is(err, fs.ErrNotExist) {
		return &Error{File: path, Msg: "no configuration file: " + msg, kind: ErrNotFound, err: err,
			Hint: "pass -c FILE, or write one with: remaphore -C " + DefaultPath}
	}
	hint := "check the path"
	if errors.Is(err, fs.ErrPermission) {
		hint = "the file must be readable by the user running remaphore, for example through a group: chgrp GROUP " +
			path + " && chmod g+r " + path
	}
	return &Error{File: path, Msg: "cannot read: " + msg, kind: errRead, err: err, Hint: hint}
}

// Resolve returns p, a path written in the file (credentials, tls_*,
// audit_db), resolved against the directory of the file the Config was read
// from. Absolute paths, the empty string, and every path of a Config with no
// Path are returned unchanged.
func (c *Config) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) || c.Path == "" {
		return p
	}
	return filepath.Join(filepath.Dir(c.Path), p)
}
