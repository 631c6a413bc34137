package store

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadKeyFromEnv(t *testing.T) {
	raw := bytes.Repeat([]byte{0xfb, 0xff, 0x3e}, 11)[:KeySize] // has + / in std base64
	tests := []struct {
		name, value string
		wantErr     string
	}{
		{"std", base64.StdEncoding.EncodeToString(raw), ""},
		{"url", base64.URLEncoding.EncodeToString(raw), ""},
		{"raw std", base64.RawStdEncoding.EncodeToString(raw), ""},
		{"raw url", base64.RawURLEncoding.EncodeToString(raw), ""},
		{"surrounding space", "  " + base64.StdEncoding.EncodeToString(raw) + "\n", ""},
		{"16 bytes", base64.StdEncoding.EncodeToString(raw[:16]), "got 16 bytes"},
		{"33 bytes", base64.StdEncoding.EncodeToString(append(raw, 1)), "got 33 bytes"},
		{"not base64", "this is not base64 at all!!", "not valid base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The key file must not be touched when MAILGATE_KEY is set.
			path := filepath.Join(t.TempDir(), "key")
			k, err := LoadKey(path, env(map[string]string{KeyEnv: tt.value}))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), KeyEnv) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), strings.TrimSpace(tt.value)) {
					t.Fatalf("error reveals the value: %v", err)
				}
				return
			}
			if err != nil || !bytes.Equal(k, raw) {
				t.Fatalf("LoadKey = %x, %v", k, err)
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Fatalf("key file created although %s was set", KeyEnv)
			}
		})
	}
}

func TestLoadKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "mailgate.key")
	k1, err := LoadKey(path, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != KeySize || bytes.Equal(k1, make([]byte, KeySize)) {
		t.Fatalf("new key %x", k1)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %04o, want 0600", fi.Mode().Perm())
	}
	text, _ := os.ReadFile(path)
	if dec, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(text))); err != nil || !bytes.Equal(dec, k1) {
		t.Fatalf("key file holds %q", text)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "sub", ".mailgate-key-*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
	k2, err := LoadKey(path, nil)
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("second LoadKey = %x, %v; want the same key", k2, err)
	}
	// Empty MAILGATE_KEY means unset.
	if k3, err := LoadKey(path, env(map[string]string{KeyEnv: " "})); err != nil || !bytes.Equal(k1, k3) {
		t.Fatalf("LoadKey with blank env = %x, %v", k3, err)
	}

	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadKey(path, nil)
		if err == nil || !strings.Contains(err.Error(), "chmod 600 "+path) {
			t.Fatalf("mode %04o: err = %v, want the chmod to run", mode, err)
		}
	}
	os.Chmod(path, 0o600)
	if err := os.WriteFile(path, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKey(path, nil); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("damaged key file: %v", err)
	}
	if _, err := LoadKey("", nil); err == nil {
		t.Fatal("LoadKey with no env and no path succeeded")
	}
}

// TestLoadKeyConcurrentCreate: processes starting together agree on one key.
func TestLoadKeyConcurrentCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mailgate.key")
	const n = 8
	keys := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { keys[i], errs[i] = LoadKey(path, nil) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("LoadKey #%d = %x, %v; #0 = %x", i, keys[i], errs[i], keys[0])
		}
	}
}
