package store

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// KeyEnv is the environment variable holding the store key (base64, std
// or URL alphabet, padded or not, of 32 bytes). It wins over the key file.
const KeyEnv = "MAILGATE_KEY"

// LoadKey returns the 32-byte store key. getenv (os.Getenv in production)
// is asked for MAILGATE_KEY first; when it is empty the key is read from
// the file at path, which is created with 32 random bytes (base64 text,
// mode 0600) when it does not exist yet. A key file that group or others
// may read is refused. Errors never contain the key.
func LoadKey(path string, getenv func(string) string) ([]byte, error) {
	if getenv != nil {
		if v := strings.TrimSpace(getenv(KeyEnv)); v != "" {
			k, err := decodeKey(v)
			if err != nil {
				return nil, fmt.Errorf("store: %s: %w", KeyEnv, err)
			}
			return k, nil
		}
	}
	if path == "" {
		return nil, fmt.Errorf("store: no key: set %s or give a key file path", KeyEnv)
	}
	k, err := readKeyFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	return createKeyFile(path)
}

// decodeKey parses base64 text of KeySize bytes in any of the four
// alphabets/padding forms.
func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		k, err := enc.DecodeString(s)
		if err != nil {
			continue
		}
		if len(k) != KeySize {
			return nil, fmt.Errorf("the key must be base64 of %d bytes, got %d bytes (make one with `head -c 32 /dev/urandom | base64`)", KeySize, len(k))
		}
		return k, nil
	}
	return nil, fmt.Errorf("the key is not valid base64 (make one with `head -c 32 /dev/urandom | base64`)")
}

// readKeyFile reads and checks an existing key file.
func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("store: key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("store: key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("store: key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("store: key file %s has mode %04o and can be read by group or others: run `chmod 600 %s`",
			path, perm, path)
	}
	b := make([]byte, 256)
	n, err := f.Read(b)
	if err != nil && n == 0 {
		return nil, fmt.Errorf("store: key file %s: %w", path, err)
	}
	k, err := decodeKey(string(bytes.TrimSpace(b[:n])))
	if err != nil {
		return nil, fmt.Errorf("store: key file %s: %w", path, err)
	}
	return k, nil
}

// createKeyFile writes a new random key. The key is written to a
// temporary file in the same directory (created exclusively, mode 0600),
// synced, then linked to path, which fails if path exists: a concurrent
// process either wins the link or reads the winner's complete file, never
// a partial one. The directory is synced so the name survives a crash.
func createKeyFile(path string) ([]byte, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: key file directory: %w", err)
	}
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("store: new key: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".mailgate-key-*")
	if err != nil {
		return nil, fmt.Errorf("store: create key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("store: create key file: %w", err)
	}
	text := base64.StdEncoding.EncodeToString(key) + "\n"
	if _, err := tmp.WriteString(text); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("store: write key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("store: sync key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("store: write key file: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Another process created it first: use its key.
			return readKeyFile(path)
		}
		return nil, fmt.Errorf("store: create key file: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return nil, fmt.Errorf("store: sync key file directory: %w", err)
	}
	return key, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
