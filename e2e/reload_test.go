package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/emulator"
)

// TestTokenConfigBeforeOrAfter: --config (and -c) may come before or after
// the command, from any directory.
func TestTokenConfigBeforeOrAfter(t *testing.T) {
	srv, dir := emulatorConfig(t, "")
	cfg := filepath.Join(dir, "mailgate.yaml")
	elsewhere := t.TempDir() // no ./mailgate.yaml here
	for _, args := range [][]string{
		{"--config", cfg, "token", "emulator-secret"},
		{"token", "emulator-secret", "--config", cfg},
		{"-c", cfg, "token", "emulator-secret"},
		{"token", "--config=" + cfg, "emulator-secret"},
	} {
		r := mailgate(t, t.Context(), elsewhere, args...)
		if r.code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, r.code, r.stderr)
		}
		if _, err := srv.VerifyAccessToken(strings.TrimSuffix(r.stdout, "\n")); err != nil {
			t.Errorf("%v: %v", args, err)
		}
	}
	if r := mailgate(t, t.Context(), elsewhere, "--version"); r.code != 0 || !strings.HasPrefix(r.stdout, "mailgate ") {
		t.Errorf("--version: exit %d %q", r.code, r.stdout)
	}
}

// TestServeReloadsOnSIGHUP: serve (logging JSON) reloads its config file
// on SIGHUP. The IDLE mailbox whose settings did not change keeps its
// session (its server sees no new connection) and still delivers; the
// changed one reconnects and delivers to its new sink. A file that does
// not load is refused and serve goes on with the running configuration.
// Every line serve writes on stderr is a JSON object.
func TestServeReloadsOnSIGHUP(t *testing.T) {
	srv, dir := emulatorConfig(t, "")
	forms, invoices := newSessionProxy(t, srv.IMAPAddr()), newSessionProxy(t, srv.IMAPAddr())
	base, err := os.ReadFile(filepath.Join(dir, "mailgate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	mailboxes := func(invoicesSink string) []byte {
		mb := "  - {name: %s, protocol: imap, host: 127.0.0.1, port: %d, security: tls, tls_ca: '%s', username: %s, profile: emulator-cert, mode: idle, after: seen, sink: %s}\n"
		return fmt.Appendf(append([]byte(nil), base...), "listen: 127.0.0.1:0\nmailboxes:\n"+mb+mb+
			"sinks:\n  - {name: f, type: maildir, path: ./forms}\n  - {name: i, type: maildir, path: ./invoices}\n  - {name: i2, type: maildir, path: ./invoices2}\n",
			"forms", forms.port(), srv.CAFile(), emulator.DemoSharedMailbox, "f",
			"invoices", invoices.port(), srv.CAFile(), emulator.DemoInvoicesMailbox, invoicesSink)
	}
	write := func(b []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "mailgate.yaml"), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	deliver := func(mailbox, id string) {
		t.Helper()
		if _, err := srv.IMAPDeliver(mailbox, fmt.Appendf(nil, "Subject: %s\r\nMessage-ID: <%s@x>\r\n\r\nbody\r\n", id, id)); err != nil {
			t.Fatal(err)
		}
	}
	write(mailboxes("i"))
	deliver(emulator.DemoSharedMailbox, "f1")
	deliver(emulator.DemoInvoicesMailbox, "i1")

	cmd := exec.Command(mailgateBin, "--log-format", "json", "serve")
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "MAILGATE_KEY=" + testKey}
	logs := &syncBuffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitUntil := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !ok(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no %s\n%s", what, logs.String())
			}
		}
	}
	count := func(sink string) int {
		es, _ := os.ReadDir(filepath.Join(dir, sink, "new"))
		return len(es)
	}
	waitUntil("first deliveries", func() bool { return count("forms") == 1 && count("invoices") == 1 })
	_, formsConns := forms.counts()
	_, invoicesConns := invoices.counts()

	// invoices changes its sink; forms does not change
	write(mailboxes("i2"))
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil("reload", func() bool { return strings.Contains(logs.String(), `"msg":"mailgate reloaded"`) })
	if !regexp.MustCompile(`"msg":"mailgate reloaded","mailboxes":2,"kept_running":1`).MatchString(logs.String()) {
		t.Errorf("the reload does not say one mailbox kept running:\n%s", logs.String())
	}
	deliver(emulator.DemoSharedMailbox, "f2")
	deliver(emulator.DemoInvoicesMailbox, "i2")
	waitUntil("deliveries after the reload", func() bool { return count("forms") == 2 && count("invoices2") == 1 })
	if _, n := forms.counts(); n != formsConns {
		t.Errorf("forms, unchanged, was reconnected by the reload: %d connections, then %d", formsConns, n)
	}
	if _, n := invoices.counts(); n <= invoicesConns {
		t.Errorf("invoices, changed, was not restarted: %d connections, then %d", invoicesConns, n)
	}
	if count("invoices") != 1 {
		t.Errorf("invoices still delivers to its old sink")
	}

	// a file that does not load: refused, serve goes on
	write(append(mailboxes("i2"), "listn: oops\n"...))
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil("refusal", func() bool { return strings.Contains(logs.String(), "the config file does not load") })
	deliver(emulator.DemoSharedMailbox, "f3")
	waitUntil("delivery after the refused reload", func() bool { return count("forms") == 3 })
	if _, n := forms.counts(); n != formsConns {
		t.Errorf("forms was reconnected by a refused reload: %d connections, then %d", formsConns, n)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve exit: %v\n%s", err, logs.String())
	}
	lines := strings.Split(strings.TrimSuffix(logs.String(), "\n"), "\n")
	for _, l := range lines {
		var v map[string]any
		if err := json.Unmarshal([]byte(l), &v); err != nil || v["msg"] == nil || v["level"] == nil {
			t.Errorf("not a JSON log line: %q (%v)", l, err)
		}
	}
	if !strings.Contains(logs.String(), `"msg":"mailgate stopped"`) {
		t.Errorf("no clean stop:\n%s", logs.String())
	}
}
