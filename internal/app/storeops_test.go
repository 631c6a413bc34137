package app

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/store"
)

func storeOps(t *testing.T, env map[string]string) (StoreOps, string) {
	dir := t.TempDir()
	cfg := &config.Config{Store: "sqlite:" + filepath.Join(dir, "mailgate.db"), KeyFile: filepath.Join(dir, "mailgate.key")}
	return StoreOps{Config: cfg, Getenv: func(k string) string { return env[k] }}, dir
}

func openWithKeyFile(t *testing.T, cfg *config.Config, keyFile string) (*store.Store, error) {
	t.Helper()
	key, err := store.LoadKey(keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	return store.Open(t.Context(), cfg.Store, &store.Options{Key: key})
}

// TestRekeyKeyFile: without --new-key-file the key file is replaced by a
// new key, the old one kept as KEYFILE.old; only the new key opens the
// store afterwards, and the values are still there.
func TestRekeyKeyFile(t *testing.T) {
	ops, _ := storeOps(t, nil)
	st, err := OpenStore(t.Context(), ops.Config, ops.Getenv, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SaveRefreshToken(t.Context(), "p", "rt-1"); err != nil {
		t.Fatal(err)
	}
	st.Close()
	msg, err := ops.Rekey(t.Context(), "")
	if err != nil {
		t.Fatalf("Rekey: %v", err)
	}
	if !strings.Contains(msg, ".old") {
		t.Errorf("the message does not name the old key's file: %s", msg)
	}
	kf := ops.Config.KeyFile
	if _, err := openWithKeyFile(t, ops.Config, kf+".old"); !errors.Is(err, store.ErrWrongKey) {
		t.Errorf("the old key opens the store: %v", err)
	}
	st, err = openWithKeyFile(t, ops.Config, kf)
	if err != nil {
		t.Fatalf("the new key does not open the store: %v", err)
	}
	if rt, err := st.LoadRefreshToken(t.Context(), "p"); err != nil || rt != "rt-1" {
		t.Errorf("after rekey: %q, %v", rt, err)
	}
	// A second rekey would lose the key of the backups taken before the
	// first one: refused while KEYFILE.old is there.
	st.Close()
	if _, err := ops.Rekey(t.Context(), ""); err == nil || !strings.Contains(err.Error(), ".old exists") {
		t.Errorf("second rekey with KEYFILE.old present: %v", err)
	}
}

// TestRekeyNewKeyFile: with MAILGATE_KEY the new key must come from
// --new-key-file, which is created when missing; the store then opens
// with it only.
func TestRekeyNewKeyFile(t *testing.T) {
	key := make([]byte, store.KeySize)
	key[0] = 1
	env := map[string]string{store.KeyEnv: "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}
	ops, dir := storeOps(t, env)
	st, err := OpenStore(t.Context(), ops.Config, ops.Getenv, nil)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if _, err := ops.Rekey(t.Context(), ""); err == nil || !strings.Contains(err.Error(), "--new-key-file") {
		t.Fatalf("Rekey without --new-key-file under MAILGATE_KEY: %v", err)
	}
	next := filepath.Join(dir, "next.key")
	if _, err := ops.Rekey(t.Context(), next); err != nil {
		t.Fatalf("Rekey: %v", err)
	}
	if _, err := store.Open(t.Context(), ops.Config.Store, &store.Options{Key: key}); !errors.Is(err, store.ErrWrongKey) {
		t.Errorf("the old key opens the store: %v", err)
	}
	st, err = openWithKeyFile(t, ops.Config, next)
	if err != nil {
		t.Fatalf("the new key does not open the store: %v", err)
	}
	st.Close()
	if _, err := os.Stat(ops.Config.KeyFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a key file was made beside MAILGATE_KEY: %v", err)
	}
}

// TestStoreOpsRefusedWhileServeRuns: restore and rekey change values
// under a running serve's feet, so a fresh heartbeat refuses them; backup
// runs online.
func TestStoreOpsRefusedWhileServeRuns(t *testing.T) {
	ops, dir := storeOps(t, nil)
	st, err := OpenStore(t.Context(), ops.Config, ops.Getenv, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.InstanceBeat(t.Context(), "other"); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(dir, "b")
	if _, err := ops.Backup(t.Context(), backup); err != nil {
		t.Fatalf("Backup while serve runs: %v", err)
	}
	if _, err := ops.Rekey(t.Context(), ""); !errors.Is(err, ErrServeRunning) {
		t.Errorf("Rekey while serve runs: %v", err)
	}
	if _, err := ops.Restore(t.Context(), backup, true); !errors.Is(err, ErrServeRunning) {
		t.Errorf("Restore while serve runs: %v", err)
	}
	if _, err := os.Stat(ops.Config.KeyFile + ".new"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused rekey left a new key file: %v", err)
	}
}

// TestRestoreNeedsTheKey: restoring into a directory without the key file
// (and no MAILGATE_KEY) says which key is needed instead of creating a new
// one that could never open the backup.
func TestRestoreNeedsTheKey(t *testing.T) {
	ops, dir := storeOps(t, nil)
	if _, err := ops.Backup(t.Context(), filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	other, _ := storeOps(t, nil)
	_, err := other.Restore(t.Context(), filepath.Join(dir, "b"), false)
	if err == nil || !strings.Contains(err.Error(), "copy the key file") {
		t.Fatalf("Restore without the key: %v", err)
	}
	if _, err := os.Stat(other.Config.KeyFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("restore created a key file: %v", err)
	}
	if err := os.WriteFile(other.Config.KeyFile, mustRead(t, ops.Config.KeyFile), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Restore(t.Context(), filepath.Join(dir, "b"), false); err != nil {
		t.Fatalf("Restore with the key file copied: %v", err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
