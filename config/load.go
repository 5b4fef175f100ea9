package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// Load reads the configuration file at path and parses it. A missing file
// gives an *Error matching ErrNotFound. A file that holds [ Identities ]
// (private keys) and grants any permission to others (mode & 0o007) is
// refused with an *Error matching ErrPermissions: owner and group may read
// it, as the spec intends for a group of remaphore users.
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
	if mode := fi.Mode().Perm(); len(c.Identities) > 0 && mode&0o007 != 0 && runtime.GOOS != "windows" {
		return nil, &Error{File: path, kind: ErrPermissions,
			Msg:  fmt.Sprintf("holds private keys ([ Identities ]) and is open to other users (mode %04o)", mode),
			Hint: "chmod o-rwx " + path}
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
			Hint: "pass -c FILE, or write one with: remaphore -C > " + DefaultPath}
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
