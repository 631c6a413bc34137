//go:build !linux

package sink

import (
	"errors"
	"os"
)

// syncfs(2) is Linux only: elsewhere the maildir falls back to one fsync
// per staged file (the same guarantee, one system call per message).
func syncfs(*os.File) error { return errors.ErrUnsupported }

// renameNew moves a file from tmp/ into new/ without replacing a file
// there; without renameat2 it is renameByLink.
func renameNew(from, to string) error { return renameByLink(from, to) }
