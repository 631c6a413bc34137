package sink

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// syncfs makes everything written to dir's file system durable with one
// syncfs(2).
func syncfs(dir *os.File) error {
	return unix.Syncfs(int(dir.Fd()))
}

// renameNew moves a file from tmp/ into new/ and never replaces a file
// there (renameat2 RENAME_NOREPLACE; names are unique, so an existing one
// is a bug to report, not to overwrite). Unlike os.Rename it does not
// lstat the target first, a measurable cost at thousands of messages a
// second.
func renameNew(from, to string) error {
	err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL) {
		err = unix.Rename(from, to) // file systems without RENAME_NOREPLACE
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return nil
}
