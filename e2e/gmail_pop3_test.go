package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailgate/mailgate/internal/emulator"
)

// TestGmailPOP3ThroughBinary: `mailgate run --once` reads a Gmail POP3
// mailbox of the emulator (implicit TLS, XOAUTH2, the service account's
// token with domain-wide delegation) into a maildir, each message once,
// byte for byte; a second run delivers nothing (Gmail no longer lists
// them, and the ledger would skip them anyway); the IMAP view still holds
// them (the account keeps Gmail's copy). A mailbox of user
// "recent:alice@…" (Gmail's recent mode) gets them again, once. A token without
// https://mail.google.com/ gets Gmail's challenge, answered with the empty
// line, and the output names the scope.
func TestGmailPOP3ThroughBinary(t *testing.T) {
	srv, err := emulator.Start(t.Context(), emulator.Options{HTTPListen: "-", GmailPOP3Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	const modify = "https://www.googleapis.com/auth/gmail.modify"
	srv.SetGoogleDelegation(emulator.GoogleServiceAccountClientID, emulator.GoogleMailScope, modify)
	user := "alice@" + emulator.GoogleDomain
	var want [][]byte
	for i := range 3 {
		m := fmt.Appendf(nil, "Subject: p%d\r\nMessage-ID: <p%d@example.com>\r\n\r\nbody %d\r\n.dot line\r\n", i, i, i)
		if _, err := srv.GmailDeliver(user, m); err != nil {
			t.Fatal(err)
		}
		want = append(want, m)
	}
	host, port, _ := strings.Cut(srv.GmailPOP3Addr(), ":")
	dir := t.TempDir()
	cfg := "store: sqlite:./mailgate.db\nprofiles:\n" +
		serviceAccountProfile(srv, "google", emulator.GoogleMailScope) + serviceAccountProfile(srv, "narrow", modify) +
		"mailboxes:\n"
	for _, mb := range [][4]string{{"google", user, "google", "out"}, {"narrow", user, "narrow", "out"}, {"recent", "recent:" + user, "google", "recent"}} {
		cfg += fmt.Sprintf("  - {name: pop-%s, protocol: pop3, host: %s, port: %s, security: tls, tls_ca: '%s', sasl: xoauth2, username: '%s', profile: %s, after: keep, sink: %s}\n",
			mb[0], host, port, srv.CAFile(), mb[1], mb[2], mb[3])
	}
	cfg += "sinks:\n  - {name: out, type: maildir, path: ./inbox}\n  - {name: recent, type: maildir, path: ./recent}\n"
	if err := os.WriteFile(filepath.Join(dir, "mailgate.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	r := mailgate(t, t.Context(), dir, "run", "--once", "--mailbox", "pop-narrow")
	t.Logf("narrow scope:\n%s", r.stderr)
	if r.code != 1 || !strings.Contains(r.stderr, "scope https://mail.google.com/") || !strings.Contains(r.stderr, "Invalid credentials") {
		t.Errorf("narrow scope: exit %d\n%s", r.code, r.stderr)
	}
	if empty, other := srv.GmailPOP3ChallengeAnswers(); empty < 1 || other != 0 {
		t.Errorf("the server saw %d empty and %d other answers to its challenge", empty, other)
	}

	for i, n := range []int{3, 0} {
		r := mailgate(t, t.Context(), dir, "run", "--once", "--mailbox", "pop-google")
		if line := fmt.Sprintf("pop-google: %d delivered", n); r.code != 0 || !strings.Contains(r.stderr, line) {
			t.Fatalf("run %d: exit %d, want %q\n%s", i+1, r.code, line, r.stderr)
		}
	}
	maildirHolds(t, filepath.Join(dir, "inbox"), want)

	// recent mode lists the popped messages again (the service account
	// acts for alice, not for "recent:alice"); the ledger keeps them once
	for i, n := range []int{3, 0} {
		r := mailgate(t, t.Context(), dir, "run", "--once", "--mailbox", "pop-recent")
		if line := fmt.Sprintf("pop-recent: %d delivered", n); r.code != 0 || !strings.Contains(r.stderr, line) {
			t.Fatalf("recent run %d: exit %d, want %q\n%s", i+1, r.code, line, r.stderr)
		}
	}
	maildirHolds(t, filepath.Join(dir, "recent"), want)
	if n, _ := srv.GmailCount(user, "INBOX"); n != 3 {
		t.Errorf("INBOX over IMAP holds %d, want 3 (the account keeps Gmail's copy)", n)
	}
}
