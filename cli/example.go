package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/remaphore/remaphore/config"
	"github.com/remaphore/remaphore/sign"
)

// writeExample is -C: with no argument it prints the example config on
// stdout; with FILE it creates FILE at mode 0600 itself, because a file
// made by a shell redirect is 0644 (umask 022), which Load refuses for a
// config holding a private key. It never replaces an existing file (O_EXCL,
// which also refuses a symlink planted at the path): that file may hold
// the only copy of a node's key.
func writeExample(args []string, stdout, stderr io.Writer) error {
	if len(args) > 1 {
		return usageErr("write one file: remaphore -C FILE", "-C takes at most one file, got %d arguments", len(args))
	}
	key, err := sign.GenerateKey(nil)
	if err != nil {
		return err
	}
	text := config.Example(key)
	if len(args) == 0 {
		_, err := stdout.Write(text)
		return err
	}
	path := args[0]
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return usageErr("choose another file name, or move the old file away first (it may hold the only copy of a key)",
			"%s already exists; remaphore -C never overwrites a file", path)
	}
	if err != nil {
		return usageErr("check the directory exists and is writable by this user", "-C %s: %v", path, unwrapPath(err))
	}
	_, err = f.Write(text)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path) // a partial config is worse than none
		return usageErr("check the free space and the file system", "-C %s: %v", path, unwrapPath(err))
	}
	fmt.Fprintf(stderr, "remaphore: wrote %s (mode 0600, a fresh key); edit server, credentials and destination, and list the other nodes under [ Peers ]\n", path)
	return nil
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
