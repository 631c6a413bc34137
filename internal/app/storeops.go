package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/store"
)

// StoreOps are the operations of `mailgate store` on the configured
// store: backup, restore and rekey. Each returns the line to print.
type StoreOps struct {
	Config *config.Config
	Getenv func(string) string // os.Getenv in production
	Log    *slog.Logger
}

// ErrServeRunning is returned by Restore, Rekey and MigrateStore while a
// serve keeps the store's heartbeat fresh: the first two would change
// values under its feet, and what it delivers after a migration's copy
// would be delivered again from the target.
var ErrServeRunning = errors.New("a mailgate serve is running on this store: stop it first")

// Backup writes a consistent backup of the store to path while serve may
// keep running. The file is written under a temporary name, synced, then
// linked to path, which must not exist: a backup is never overwritten and
// never seen half-written. It is mode 0600 and holds sealed values only,
// not the key.
func (o StoreOps) Backup(ctx context.Context, path string) (string, error) {
	st, err := OpenStore(ctx, o.Config, o.Getenv, o.Log)
	if err != nil {
		return "", err
	}
	defer st.Close()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".mailgate-backup-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	stats, err := st.Backup(ctx, tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("%s exists: give the backup a new name", path)
		}
		return "", err
	}
	return fmt.Sprintf("backup of the %s store written to %s: %d rows of %d tables (schema %d); it holds sealed values only, restoring needs this store's key (%s)",
		st.Dialect(), path, stats.Rows, stats.Tables, stats.Schema, o.keyName()), nil
}

// Restore loads the backup at path into the configured store, which must
// be empty (fresh) unless force is set, and must be opened with the key of
// the store the backup was taken from. A missing key file is not created
// here: a new random key could never open the backup.
func (o StoreOps) Restore(ctx context.Context, path string, force bool) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if strings.TrimSpace(o.Getenv(store.KeyEnv)) == "" {
		if _, err := os.Stat(o.Config.KeyFile); errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("no key: copy the key file of the store the backup was taken from to %s, or set %s", o.Config.KeyFile, store.KeyEnv)
		}
	}
	st, err := OpenStore(ctx, o.Config, o.Getenv, o.Log)
	if err != nil {
		return "", err
	}
	defer st.Close()
	if running, err := st.ServeRunning(ctx, leaseTTL(o.Config)); err != nil || running {
		return "", errors.Join(ErrServeRunning, err)
	}
	stats, err := st.Restore(ctx, f, force)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("restored %d rows of %d tables from %s into the %s store", stats.Rows, stats.Tables, path, st.Dialect()), nil
}

// Rekey re-seals every sealed value of the store under a new key, in one
// transaction, with serve stopped. With newKeyFile the new key is read
// from that file (created with a random key when missing) and nothing else
// changes: point key_file or MAILGATE_KEY at it afterwards. Without it
// (only when the key comes from key_file), a new key is written to
// KEYFILE.new, the store re-sealed, then KEYFILE renamed to KEYFILE.old and
// KEYFILE.new to KEYFILE. KEYFILE.old is the key of the backups taken
// before: keep it as long as them.
func (o StoreOps) Rekey(ctx context.Context, newKeyFile string) (string, error) {
	keyFile := o.Config.KeyFile
	fromEnv := strings.TrimSpace(o.Getenv(store.KeyEnv)) != ""
	if newKeyFile == "" && fromEnv {
		return "", fmt.Errorf("the key comes from %s: give --new-key-file PATH, then put that file's content in %s", store.KeyEnv, store.KeyEnv)
	}
	if newKeyFile == "" {
		for _, p := range []string{keyFile + ".new", keyFile + ".old"} {
			if _, err := os.Stat(p); err == nil {
				return "", fmt.Errorf("%s exists: move it away first (if the store no longer opens with %s, an earlier rekey stopped before swapping the files and the key is in %s.new)", p, keyFile, keyFile)
			}
		}
	}
	oldKey, err := store.LoadKey(keyFile, o.Getenv)
	if err != nil {
		return "", err
	}
	st, err := store.Open(ctx, o.Config.Store, &store.Options{Key: oldKey, Logger: o.Log})
	if err != nil {
		return "", err
	}
	defer st.Close()
	if running, err := st.ServeRunning(ctx, leaseTTL(o.Config)); err != nil || running {
		return "", errors.Join(ErrServeRunning, err)
	}
	target := newKeyFile
	if target == "" {
		target = keyFile + ".new"
	}
	newKey, err := store.LoadKey(target, nil)
	if err != nil {
		return "", err
	}
	if bytes.Equal(newKey, oldKey) {
		return "", fmt.Errorf("%s holds the current key: give a new one", target)
	}
	stats, err := st.Reseal(ctx, newKey)
	if err != nil {
		if newKeyFile == "" {
			os.Remove(target) // nothing was sealed with it
		}
		return "", err
	}
	if newKeyFile != "" {
		return fmt.Sprintf("%d sealed values re-sealed with the key in %s; from now on only it opens the store: set key_file to it or MAILGATE_KEY to its content",
			stats.Values, newKeyFile), nil
	}
	if err := os.Rename(keyFile, keyFile+".old"); err != nil {
		return "", fmt.Errorf("re-sealed, but the key files were not swapped (the new key is in %s): %w", target, err)
	}
	if err := os.Rename(target, keyFile); err != nil {
		return "", fmt.Errorf("re-sealed, but the new key is still in %s (the old one is %s.old): %w", target, keyFile, err)
	}
	return fmt.Sprintf("%d sealed values re-sealed with a new key in %s; the old key is %s.old: keep it as long as the backups taken before",
		stats.Values, keyFile, keyFile), nil
}

// keyName says where the store's key comes from, never the key.
func (o StoreOps) keyName() string {
	if strings.TrimSpace(o.Getenv(store.KeyEnv)) != "" {
		return store.KeyEnv
	}
	return "key file " + o.Config.KeyFile
}
