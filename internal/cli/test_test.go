package cli

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// TestTestSinks: `mailgate test SINK` says whether a sink can take a
// message without delivering one, and what is wrong when it cannot.
func TestTestSinks(t *testing.T) {
	dir := t.TempDir()
	var posted atomic.Int32 // requests reaching the webhook (the handler runs on the server's goroutines)
	hook := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { posted.Add(1) }))
	defer hook.Close()
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedAddr := closed.Addr().String()
	closed.Close()
	blocker := filepath.Join(dir, "a-file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`store: sqlite:./mailgate.db
sinks:
  - {name: md, type: maildir, path: ./inbox}
  - {name: md-bad, type: maildir, path: %s/inbox}
  - {name: hook, type: webhook, url: '%s/in'}
  - {name: hook-down, type: webhook, url: 'http://%s/in'}
  - {name: cat, type: command, command: [cat]}
  - {name: nope, type: command, command: [/nonexistent/import-mail]}
  - {name: kept, type: store}
`, blocker, hook.URL, closedAddr)
	path := filepath.Join(dir, "mailgate.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MAILGATE_KEY", strings.Repeat("A", 43)+"=")
	tests := []struct {
		sink string
		code int
		want []string
	}{
		{"md", ExitOK, []string{"✓ maildir", "writable"}},
		{"md-bad", ExitFailed, []string{"✗ maildir", "check its owner and mode"}},
		{"hook", ExitOK, []string{"✓ dns", "✓ tcp", "✓ tls    none", "✓ webhook", "nothing was posted"}},
		{"hook-down", ExitFailed, []string{"✓ dns", "✗ tcp", "check port and firewall"}},
		{"cat", ExitOK, []string{"✓ command", "is executable; it was not run"}},
		{"nope", ExitFailed, []string{"✗ command", "install /nonexistent/import-mail"}},
		{"kept", ExitOK, []string{"✓ store"}},
	}
	for _, tt := range tests {
		code, out, errs := runCLI(t, "test", tt.sink, "--config", path)
		if code != tt.code {
			t.Errorf("test %s: exit %d, want %d\n%s%s", tt.sink, code, tt.code, out, errs)
		}
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("test %s lacks %q:\n%s%s", tt.sink, w, out, errs)
			}
		}
	}
	if n := posted.Load(); n != 0 {
		t.Errorf("a test posted %d messages to the webhook", n)
	}
	if es, _ := os.ReadDir(filepath.Join(dir, "inbox", "tmp")); len(es) != 0 {
		t.Errorf("the maildir test left %d files in tmp/", len(es))
	}
}
