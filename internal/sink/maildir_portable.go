package sink

import (
	"errors"
	"io/fs"
	"os"
)

// renameByLink is renameNew where renameat2's RENAME_NOREPLACE does not
// exist (macOS, the BSDs): it links the new name, which fails if that name
// exists, then removes the old one. A crash between the two leaves the
// message in new/ and a copy in tmp/ that the next NewMaildir removes. On
// file systems without hard links it checks the target with lstat before
// os.Rename, a weaker guarantee (a concurrent writer of the same name could
// slip in between), acceptable because names are unique: an existing one is
// a bug to report, not mail to protect.
func renameByLink(from, to string) error {
	err := os.Link(from, to)
	switch {
	case err == nil:
		return os.Remove(from)
	case errors.Is(err, fs.ErrExist):
		return err
	}
	if _, err := os.Lstat(to); err == nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: fs.ErrExist}
	}
	return os.Rename(from, to)
}
