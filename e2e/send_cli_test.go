package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/dovecot"
	"github.com/mailgate/mailgate/internal/emulator"
)

// TestSendCommand: `mailgate send` through Dovecot's submission service
// with an app-only token: two files over one connection arrive in the
// recipient's mailbox; a From outside allowed_from is refused before
// anything is sent.
func TestSendCommand(t *testing.T) {
	srv, dir := emulatorConfig(t, "")
	dv := dovecot.StartT(t, dovecot.Options{CheckURL: srv.HTTPURL(), Relay: true})
	host, port, _ := strings.Cut(dv.Addr("submission"), ":")
	cfg, _ := os.ReadFile(filepath.Join(dir, "mailgate.yaml"))
	cfg = append(cfg, fmt.Sprintf("senders:\n  - {name: noreply, protocol: smtp, host: %s, port: %s, security: starttls, tls_ca: '%s', sasl: xoauth2, username: %s, profile: emulator-secret, allowed_from: [%s]}\n",
		host, port, dv.CAFile(), emulator.DemoSenderMailbox, emulator.DemoSenderMailbox)...)
	if err := os.WriteFile(filepath.Join(dir, "mailgate.yaml"), cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"a.eml", "b.eml"} {
		msg := fmt.Sprintf("From: %s\r\nTo: %s\r\nBcc: %s\r\nSubject: report %d\r\nMessage-ID: <report-%d@mailgate.test>\r\n\r\nreport body %d\r\n",
			emulator.DemoSenderMailbox, emulator.DemoSharedMailbox, emulator.DemoInvoicesMailbox, i, i, i)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(msg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r := mailgate(t, t.Context(), dir, "send", "--sender", "noreply", "a.eml", "b.eml")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stderr, dv.Log())
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		to, _ := dv.Messages(emulator.DemoSharedMailbox, "")
		bcc, _ := dv.Messages(emulator.DemoInvoicesMailbox, "")
		if len(to) == 2 && len(bcc) == 2 {
			for _, b := range to {
				if strings.Contains(string(b), "Bcc:") {
					t.Fatal("the Bcc header was delivered")
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d and %d messages arrived\n%s", len(to), len(bcc), r.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	bad := "From: " + emulator.DemoRestrictedMailbox + "\r\nTo: " + emulator.DemoSharedMailbox + "\r\n\r\nx\r\n"
	if err := os.WriteFile(filepath.Join(dir, "bad.eml"), []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	r = mailgate(t, t.Context(), dir, "send", "--sender", "noreply", "bad.eml")
	if r.code != 2 || !strings.Contains(r.stderr, "allowed_from") {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
}
