package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailgate/mailgate/internal/dovecot"
	"github.com/mailgate/mailgate/internal/emulator"
)

// TestRunOnceCommand: `mailgate run --once` with the emulator's config plus
// two mailboxes on a real Dovecot: the granted one is delivered, the other
// fails with Exchange's reason, the exit status is 1, and a second run
// delivers nothing new.
func TestRunOnceCommand(t *testing.T) {
	srv, dir := emulatorConfig(t, "")
	dv := dovecot.StartT(t, dovecot.Options{CheckURL: srv.HTTPURL()})
	if err := dv.Seed(emulator.DemoSharedMailbox, 50, 3000); err != nil {
		t.Fatal(err)
	}
	if err := dv.Seed(emulator.DemoRestrictedMailbox, 5, 3000); err != nil {
		t.Fatal(err)
	}
	host, port, _ := strings.Cut(dv.Addr("imaps"), ":")
	mb := func(name, user, after string) string {
		return fmt.Sprintf("  - {name: %s, protocol: imap, host: %s, port: %s, security: tls, tls_ca: '%s', sasl: xoauth2, username: %s, profile: emulator-cert, after: '%s', sink: out}\n",
			name, host, port, dv.CAFile(), user, after)
	}
	appendConfig(t, dir, "mailboxes:\n"+mb("forms", emulator.DemoSharedMailbox, "move:Processed")+mb("ceo", emulator.DemoRestrictedMailbox, "seen")+
		"sinks:\n  - {name: out, type: maildir, path: ./inbox}\n")
	if r := mailgate(t, t.Context(), dir, "config", "check"); r.code != 0 {
		t.Fatalf("config check: %d\n%s", r.code, r.stderr)
	}
	r := mailgate(t, t.Context(), dir, "run", "--once")
	if r.code != 1 || !strings.Contains(r.stderr, "forms: 50 delivered") || !strings.Contains(r.stderr, "ceo: FAILED") {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "Add-MailboxPermission -Identity "+emulator.DemoRestrictedMailbox) || !strings.Contains(r.stderr, "New-ServicePrincipal -AppId "+emulator.DemoAppID) {
		t.Errorf("the failure does not say what Exchange needs:\n%s", r.stderr)
	}
	files, _ := os.ReadDir(filepath.Join(dir, "inbox", "new"))
	if len(files) != 50 {
		t.Fatalf("%d files", len(files))
	}
	if moved, _ := dv.Messages(emulator.DemoSharedMailbox, "Processed"); len(moved) != 50 {
		t.Fatalf("%d moved", len(moved))
	}
	// the Test button: every step for the good mailbox, the fix for the other
	r = mailgate(t, t.Context(), dir, "test", "forms")
	for _, step := range []string{"✓ dns", "✓ tcp", "✓ tls", "✓ token", "✓ auth", "✓ select"} {
		if !strings.Contains(r.stdout, step) {
			t.Errorf("test forms lacks %q:\n%s%s", step, r.stdout, r.stderr)
		}
	}
	r = mailgate(t, t.Context(), dir, "test", "ceo")
	if r.code != 1 || !strings.Contains(r.stdout, "✗ auth") || !strings.Contains(r.stdout, "Add-MailboxPermission -Identity "+emulator.DemoRestrictedMailbox) {
		t.Errorf("test ceo: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = mailgate(t, t.Context(), dir, "run", "--once", "--mailbox", "forms")
	if r.code != 0 || !strings.Contains(r.stderr, "forms: 0 delivered") {
		t.Fatalf("second run: exit %d\n%s", r.code, r.stderr)
	}
}

// TestExchangeNotConnectedQuirk: Exchange sometimes accepts AUTHENTICATE
// and then answers "BAD User is authenticated but not connected." (the
// emulated Exchange IMAP service does it on demand). Once, the agent
// reconnects with a fresh token and delivers; persistently, the run fails
// and says what Exchange needs.
func TestExchangeNotConnectedQuirk(t *testing.T) {
	srv, dir := emulatorConfig(t, "")
	host, port, _ := strings.Cut(srv.IMAPAddr(), ":")
	appendConfig(t, dir, fmt.Sprintf("mailboxes:\n  - {name: forms, protocol: imap, host: %s, port: %s, security: tls, tls_ca: '%s', username: %s, profile: emulator-cert, after: seen, sink: out}\n"+
		"sinks:\n  - {name: out, type: maildir, path: ./inbox}\n", host, port, srv.CAFile(), emulator.DemoSharedMailbox))
	deliver := func(n int) {
		for i := range n {
			if _, err := srv.IMAPDeliver(emulator.DemoSharedMailbox, fmt.Appendf(nil, "Subject: q%d\r\nMessage-ID: <q%d-%d@x>\r\n\r\nbody\r\n", i, i, n)); err != nil {
				t.Fatal(err)
			}
		}
	}
	deliver(3)
	srv.IMAPNotConnected(1)
	r := mailgate(t, t.Context(), dir, "run", "--once", "-v")
	if r.code != 0 || !strings.Contains(r.stderr, "forms: 3 delivered") || !strings.Contains(r.stderr, "retrying with a fresh one") {
		t.Fatalf("once: exit %d\n%s", r.code, r.stderr)
	}
	if _, unseen, _ := srv.IMAPStatus(emulator.DemoSharedMailbox, "INBOX"); unseen != 0 {
		t.Errorf("%d unseen after the run", unseen)
	}
	deliver(1)
	srv.IMAPNotConnected(100)
	r = mailgate(t, t.Context(), dir, "run", "--once")
	if r.code != 1 || !strings.Contains(r.stderr, "authenticated but not connected") || strings.Count(r.stderr, "New-ServicePrincipal") != 1 {
		t.Fatalf("persistent: exit %d (want 1, and what Exchange needs said once)\n%s", r.code, r.stderr)
	}
	r = mailgate(t, t.Context(), dir, "test", "forms")
	if r.code != 1 || strings.Count(r.stdout, "New-ServicePrincipal") != 1 {
		t.Errorf("test forms: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	srv.IMAPNotConnected(0)
	if r := mailgate(t, t.Context(), dir, "run", "--once"); r.code != 0 || !strings.Contains(r.stderr, "forms: 1 delivered") {
		t.Fatalf("after: exit %d\n%s", r.code, r.stderr)
	}
}
