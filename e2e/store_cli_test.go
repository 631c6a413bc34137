package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailgate/mailgate/internal/emulator"
)

// TestStoreBackupRestore: `store backup` while serve runs, then `store
// restore` into a fresh directory keeps the tokens and the ledger: the
// cached token is served from the restored cache and a `run --once`
// delivers nothing again (while the same run against a fresh store without
// the restore delivers everything: the messages stay on the server).
func TestStoreBackupRestore(t *testing.T) {
	srv, dir := emulatorConfig(t, "")
	for i := range 5 {
		if _, err := srv.GraphDeliver(emulator.DemoSharedMailbox, []byte(fmt.Sprintf("Message-ID: <b%d@x>\r\nSubject: %d\r\n\r\nhello\r\n", i, i))); err != nil {
			t.Fatal(err)
		}
	}
	appendConfig(t, dir, fmt.Sprintf("listen: 127.0.0.1:0\nmailboxes:\n  - {name: g, protocol: graph, endpoint: '%s', username: %s, profile: emulator-graph, after: keep, sink: out}\nsinks:\n  - {name: out, type: maildir, path: ./inbox}\n",
		srv.URL(), emulator.DemoSharedMailbox))
	if r := mailgate(t, t.Context(), dir, "run", "--once"); r.code != 0 || !strings.Contains(r.stderr, "g: 5 delivered") {
		t.Fatalf("first run: exit %d\n%s", r.code, r.stderr)
	}
	tok := mailgate(t, t.Context(), dir, "token", "emulator-graph")
	if tok.code != 0 {
		t.Fatalf("token: %d\n%s", tok.code, tok.stderr)
	}

	// Online: serve keeps running during the backup.
	startServe(t, dir)
	backup := filepath.Join(t.TempDir(), "mailgate.backup")
	if r := mailgate(t, t.Context(), dir, "store", "backup", backup); r.code != 0 {
		t.Fatalf("store backup: exit %d\n%s", r.code, r.stderr)
	}
	raw, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), strings.TrimSpace(tok.stdout)) {
		t.Fatal("the backup holds the access token in clear")
	}
	if r := mailgate(t, t.Context(), dir, "store", "backup", backup); r.code != 1 || !strings.Contains(r.stderr, "exists") {
		t.Errorf("a second backup to the same file: exit %d\n%s", r.code, r.stderr)
	}

	cfg, err := os.ReadFile(filepath.Join(dir, "mailgate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	fresh := func() string {
		d := t.TempDir()
		if err := os.WriteFile(filepath.Join(d, "mailgate.yaml"), cfg, 0o600); err != nil {
			t.Fatal(err)
		}
		return d
	}
	restored := fresh()
	if r := mailgate(t, t.Context(), restored, "store", "restore", backup); r.code != 0 {
		t.Fatalf("store restore: exit %d\n%s", r.code, r.stderr)
	}
	if r := mailgate(t, t.Context(), restored, "store", "restore", backup); r.code != 1 || !strings.Contains(r.stderr, "not empty") {
		t.Errorf("restore into a store with data: exit %d\n%s", r.code, r.stderr)
	}
	if r := mailgate(t, t.Context(), restored, "token", "emulator-graph"); r.code != 0 || r.stdout != tok.stdout {
		t.Errorf("the restored store does not serve the cached token: exit %d\n%s", r.code, r.stderr)
	}
	if r := mailgate(t, t.Context(), restored, "run", "--once"); r.code != 0 || !strings.Contains(r.stderr, "g: 0 delivered") {
		t.Fatalf("run after restore: exit %d\n%s", r.code, r.stderr)
	}
	if files, _ := os.ReadDir(filepath.Join(restored, "inbox", "new")); len(files) != 0 {
		t.Errorf("the run after restore redelivered %d messages", len(files))
	}
	// The control: without the restore the same run delivers again.
	if r := mailgate(t, t.Context(), fresh(), "run", "--once"); r.code != 0 || !strings.Contains(r.stderr, "g: 5 delivered") {
		t.Fatalf("run on a fresh store: exit %d\n%s", r.code, r.stderr)
	}
}
