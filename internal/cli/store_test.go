package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStoreCommands: usage errors exit 2; backup, restore into another
// directory holding the same key, and rekey exit 0 and say what they did.
func TestStoreCommands(t *testing.T) {
	t.Setenv("MAILGATE_KEY", "")
	newDir := func() string {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "mailgate.yaml"), []byte("listen: 127.0.0.1:8025\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	run := func(dir string, args ...string) (int, string) {
		t.Helper()
		var out, errb bytes.Buffer
		code := Main(t.Context(), append(args, "--config", filepath.Join(dir, "mailgate.yaml")), Stdio{In: strings.NewReader(""), Out: &out, Err: &errb})
		return code, errb.String()
	}
	src := newDir()
	for _, args := range [][]string{{"store"}, {"store", "dump"}, {"store", "backup"}, {"store", "backup", "a", "b"}, {"store", "rekey", "x"},
		{"store", "backup", "f", "--force"}, {"store", "restore", "f", "--new-key-file", "k"}} {
		if code, stderr := run(src, args...); code != ExitUsage || !strings.Contains(stderr, "usage: mailgate store") {
			t.Errorf("%q: exit %d\n%s", args, code, stderr)
		}
	}
	file := filepath.Join(t.TempDir(), "b")
	if code, stderr := run(src, "store", "backup", file); code != ExitOK || !strings.Contains(stderr, "written to "+file) || !strings.Contains(stderr, "sealed values only") {
		t.Fatalf("backup: exit %d\n%s", code, stderr)
	}
	dst := newDir()
	key, err := os.ReadFile(filepath.Join(src, "mailgate.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dst, "mailgate.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, stderr := run(dst, "store", "restore", file); code != ExitOK || !strings.Contains(stderr, "restored") {
		t.Fatalf("restore: exit %d\n%s", code, stderr)
	}
	if code, stderr := run(dst, "store", "rekey"); code != ExitOK || !strings.Contains(stderr, "mailgate.key.old") {
		t.Fatalf("rekey: exit %d\n%s", code, stderr)
	}
	// the backup was taken with the old key: the rekeyed store refuses it
	if code, stderr := run(dst, "store", "restore", "--force", file); code != ExitFailed || !strings.Contains(stderr, "another key") {
		t.Errorf("restore of a backup with the old key: exit %d\n%s", code, stderr)
	}
}
