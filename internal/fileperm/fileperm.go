// Package fileperm judges a file's owner and mode as ssh does: a file that
// a user other than the one running remaphore (or root) could rewrite is
// refused, and a file holding a secret also when users outside its owner
// and group may read it. Group read stays allowed: the spec's model is a
// remaphore group that shares /etc/remaphore. config uses it for the
// config and the files it names, script for the receiver's script.
package fileperm

import (
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"runtime"
	"strconv"
	"strings"
)

// Unsafe says what is wrong with a file's mode and owner, and the
// command that fixes it; ok is true when nothing is wrong. secret marks a
// file whose contents must stay within owner and group, what names what
// it holds ("private keys ([ Identities ])"). fi is the file's os.Stat.
func Unsafe(path string, fi fs.FileInfo, secret bool, what string) (msg, fix string, ok bool) {
	if runtime.GOOS == "windows" {
		return "", "", true // no Unix modes to judge
	}
	mode := fi.Mode().Perm()
	var problems, fixes []string
	uid, known := fileOwner(fi)
	if known && uid != 0 && uid != os.Geteuid() {
		problems = append(problems, fmt.Sprintf("is owned by %s, neither root nor the user running this (%s)", userName(uid), userName(os.Geteuid())))
		fixes = append(fixes, "chown "+userName(os.Geteuid())+" "+path)
	}
	var g, o string
	if mode&0o020 != 0 {
		g = "w"
	}
	if mode&0o002 != 0 {
		o = "w"
	}
	switch {
	case g != "" && o != "":
		problems = append(problems, "is writable by its group and by other users")
	case g != "":
		problems = append(problems, "is writable by its group")
	case o != "":
		problems = append(problems, "is writable by other users")
	}
	if secret && mode&0o007 != 0 {
		problems = append(problems, "holds "+what+" and is open to other users")
		o = ""
		for i, c := range "rwx" {
			if mode&(0o4>>i) != 0 {
				o += string(c)
			}
		}
	}
	if len(problems) == 0 {
		return "", "", true
	}
	var sym []string
	if g != "" {
		sym = append(sym, "g-"+g)
	}
	if o != "" {
		sym = append(sym, "o-"+o)
	}
	if len(sym) > 0 {
		fixes = append(fixes, "chmod "+strings.Join(sym, ",")+" "+path)
	}
	msg = fmt.Sprintf("%s (mode %04o)", strings.Join(problems, ", and "), mode)
	return msg, strings.Join(fixes, " && "), false
}

// userName is the login name of uid, or the number when the user
// database has none (chown takes a number too).
func userName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil && u.Username != "" {
		return u.Username
	}
	return strconv.Itoa(uid)
}
