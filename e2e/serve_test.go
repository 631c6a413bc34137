package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/dovecot"
	"github.com/mailgate/mailgate/internal/emulator"
)

// TestServeIdle runs `mailgate serve` with an IDLE mailbox for a minute
// while tokens live 20 seconds, new mail arrives every 2 seconds and
// Dovecot restarts half-way: every message arrives once, no token error
// surfaces, and SIGTERM stops it cleanly.
func TestServeIdle(t *testing.T) {
	srv, dir := emulatorConfig(t, "")
	srv.SetTokenLifetime(20 * time.Second)
	dv := dovecot.StartT(t, dovecot.Options{CheckURL: srv.HTTPURL()})
	if err := dv.Seed(emulator.DemoSharedMailbox, 10, 2000); err != nil {
		t.Fatal(err)
	}
	host, port, _ := strings.Cut(dv.Addr("imaps"), ":")
	cfg, _ := os.ReadFile(filepath.Join(dir, "mailgate.yaml"))
	cfg = append(cfg, fmt.Sprintf("listen: 127.0.0.1:0\nmailboxes:\n  - {name: mb, protocol: imap, host: %s, port: %s, security: tls, tls_ca: '%s', sasl: xoauth2, username: %s, profile: emulator-cert, mode: idle, after: seen, sink: out}\nsinks:\n  - {name: out, type: maildir, path: ./inbox}\n",
		host, port, dv.CAFile(), emulator.DemoSharedMailbox)...)
	if err := os.WriteFile(filepath.Join(dir, "mailgate.yaml"), cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(mailgateBin, "serve")
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "MAILGATE_KEY=" + testKey}
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	count := func() int {
		es, _ := os.ReadDir(filepath.Join(dir, "inbox", "new"))
		return len(es)
	}
	waitFor := func(n int, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for count() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d messages after %s\n%s", count(), n, within, logs.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor(10, 10*time.Second)
	sent := 10
	start := time.Now()
	restarted := false
	for time.Since(start) < 60*time.Second {
		sent++
		if err := dv.SeedMessage(emulator.DemoSharedMailbox, []byte(fmt.Sprintf("Message-ID: <live-%d@x>\r\nSubject: live %d\r\n\r\nbody\r\n", sent, sent))); err != nil {
			t.Fatal(err)
		}
		if !restarted && time.Since(start) > 30*time.Second {
			if err := dv.Restart(t.Context()); err != nil {
				t.Fatal(err)
			}
			restarted = true
		}
		time.Sleep(2 * time.Second)
	}
	waitFor(sent, 20*time.Second)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve exit: %v\n%s", err, logs.String())
	}
	if c := count(); c != sent {
		t.Fatalf("%d files for %d messages", c, sent)
	}
	out := logs.String()
	if strings.Contains(out, "AADSTS") || strings.Contains(out, "step=token") || strings.Contains(out, "level=ERROR") {
		t.Errorf("an error surfaced:\n%s", out)
	}
	if !strings.Contains(out, "mailgate stopped") {
		t.Errorf("no clean stop:\n%s", out)
	}
	t.Logf("%d messages over 60 s with 20-s tokens and a Dovecot restart; %d token requests", sent, srv.TokenRequests())
}
