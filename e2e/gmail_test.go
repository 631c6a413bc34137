package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/emulator"
)

// TestGmailThroughBinary: `mailgate run --once` against the emulator's
// Gmail IMAP service with German folder names. A token without
// https://mail.google.com/ (an Exchange token) is refused with Gmail's
// challenge, whose scope and meaning the output names, and the server saw
// the empty-line answer; a token with the scope delivers, and after:
// delete leaves the messages in \Trash (Papierkorb), not in All Mail; the
// connection cap fails the run with Gmail's limit explained. The Gmail
// tokens come as a Workspace deployment's do: from the emulated Google's
// token endpoint for the service account with domain-wide delegation.
func TestGmailThroughBinary(t *testing.T) {
	srv, err := emulator.Start(t.Context(), emulator.Options{HTTPListen: "-", GmailIMAPListen: "127.0.0.1:0", GmailLocalized: true})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	user, keep := "alice@"+emulator.GoogleDomain, "bob@"+emulator.GoogleDomain
	for i := range 3 {
		if _, err := srv.GmailDeliver(user, fmt.Appendf(nil, "Subject: g%d\r\nMessage-ID: <g%d@example.com>\r\n\r\nbody %d\r\n", i, i, i)); err != nil {
			t.Fatal(err)
		}
	}
	host, port, _ := strings.Cut(srv.GmailIMAPAddr(), ":")
	dir := t.TempDir()
	q := func(s string) string { return "'" + s + "'" }
	cfg := "store: sqlite:./mailgate.db\nprofiles:\n" +
		"  - {name: exchange, provider: microsoft, grant: client_credentials, authority: " + q(srv.URL()) + ", tls_ca: " + q(srv.CAFile()) +
		", tenant: " + emulator.DemoTenantID + ", client_id: " + emulator.DemoAppID + ", client_secret: " + q(emulator.DemoAppSecret) +
		", scopes: [https://outlook.office365.com/.default]}\n" +
		serviceAccountProfile(srv, "google", emulator.GoogleMailScope) +
		"mailboxes:\n"
	for _, mb := range [][4]string{{"wrongscope", "exchange", user, "delete"}, {"gmail", "google", user, "delete"}, {"kept", "google", keep, "seen"}} {
		cfg += fmt.Sprintf("  - {name: %s, protocol: imap, host: %s, port: %s, security: tls, tls_ca: %s, sasl: xoauth2, username: %s, profile: %s, after: %s, sink: %s}\n",
			mb[0], host, port, q(srv.CAFile()), mb[2], mb[1], mb[3], map[bool]string{true: "kept", false: "out"}[mb[0] == "kept"])
	}
	cfg += "sinks:\n  - {name: out, type: maildir, path: ./inbox}\n  - {name: kept, type: maildir, path: ./kept}\n"
	if err := os.WriteFile(filepath.Join(dir, "mailgate.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	r := mailgate(t, t.Context(), dir, "run", "--once", "--mailbox", "wrongscope")
	t.Logf("wrong scope:\n%s", r.stderr)
	if r.code != 1 {
		t.Fatalf("wrong scope: exit %d\n%s", r.code, r.stderr)
	}
	for _, want := range []string{"scope https://mail.google.com/", "gmail.modify, gmail.readonly or gmail.send are not enough", "Invalid credentials"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("wrong scope: output lacks %q:\n%s", want, r.stderr)
		}
	}
	if empty, other := srv.GmailChallengeAnswers(); empty < 1 || other != 0 {
		t.Errorf("the server saw %d empty and %d other answers to its challenge", empty, other)
	}

	r = mailgate(t, t.Context(), dir, "run", "--once", "--mailbox", "gmail")
	if r.code != 0 || !strings.Contains(r.stderr, "gmail: 3 delivered") {
		t.Fatalf("gmail: exit %d\n%s", r.code, r.stderr)
	}
	if n := srv.GoogleTokenRequests(user); n != 1 {
		t.Errorf("%d service-account token requests for %s, want 1", n, user)
	}
	files, _ := os.ReadDir(filepath.Join(dir, "inbox", "new"))
	in, _ := srv.GmailCount(user, "INBOX")
	all, _ := srv.GmailCount(user, "[Google Mail]/Alle Nachrichten")
	trash, _ := srv.GmailCount(user, "[Google Mail]/Papierkorb")
	if len(files) != 3 || in != 0 || all != 0 || trash != 3 {
		t.Errorf("delivered %d; INBOX %d, All Mail %d, Trash %d; want 3; 0, 0, 3", len(files), in, all, trash)
	}

	// messages without a Message-ID header survive a UIDVALIDITY change
	// through X-GM-MSGID: nothing is delivered twice
	for i := range 4 {
		if _, err := srv.GmailDeliver(keep, fmt.Appendf(nil, "Subject: no id %d\r\n\r\nbody %d\r\n", i, i)); err != nil {
			t.Fatal(err)
		}
	}
	if r := mailgate(t, t.Context(), dir, "run", "--once", "--mailbox", "kept"); r.code != 0 || !strings.Contains(r.stderr, "kept: 4 delivered") {
		t.Fatalf("kept: exit %d\n%s", r.code, r.stderr)
	}
	// later, as a server-side restore is: the internal dates stay the messages'
	srv.SetClock(func() time.Time { return time.Now().Add(10 * time.Second) })
	if err := srv.GmailResetUIDValidity(keep); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.GmailDeliver(keep, []byte("Subject: new\r\n\r\nnew\r\n")); err != nil {
		t.Fatal(err)
	}
	r = mailgate(t, t.Context(), dir, "run", "--once", "--mailbox", "kept", "-v")
	if r.code != 0 || !strings.Contains(r.stderr, "kept: 1 delivered") || !strings.Contains(r.stderr, "UIDVALIDITY changed") {
		t.Fatalf("kept after the UIDVALIDITY change: exit %d\n%s", r.code, r.stderr)
	}
	if files, _ := os.ReadDir(filepath.Join(dir, "kept", "new")); len(files) != 5 {
		t.Errorf("%d messages in the sink, want 5 (4, then the new one)", len(files))
	}

	srv.GmailMaxConnections(0)
	r = mailgate(t, t.Context(), dir, "run", "--once", "--mailbox", "gmail")
	t.Logf("connection cap:\n%s", r.stderr)
	if r.code != 1 || !strings.Contains(r.stderr, "Too many simultaneous connections") || !strings.Contains(r.stderr, "15 per account") {
		t.Errorf("connection cap: exit %d\n%s", r.code, r.stderr)
	}
}

// TestGmailSendThroughBinary: `mailgate send` through the emulator's Gmail
// SMTP service: a token without https://mail.google.com/ gets the 334
// challenge, answered with an empty line the server saw, and the output
// names the scope; with the scope the message is sent. Both tokens are
// the service account's (gmail.send delegated too, so that Google issues
// the narrow one).
func TestGmailSendThroughBinary(t *testing.T) {
	srv, err := emulator.Start(t.Context(), emulator.Options{HTTPListen: "-", GmailSMTPListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	// the narrow profile's scope is delegated too, so Google issues its
	// token and Gmail's SMTP service is the one that refuses it
	const send = "https://www.googleapis.com/auth/gmail.send"
	srv.SetGoogleDelegation(emulator.GoogleServiceAccountClientID, emulator.GoogleMailScope, send)
	user := "alice@" + emulator.GoogleDomain
	host, port, _ := strings.Cut(srv.GmailSMTPAddr(), ":")
	dir := t.TempDir()
	q := func(s string) string { return "'" + s + "'" }
	cfg := "store: sqlite:./mailgate.db\nprofiles:\n" +
		serviceAccountProfile(srv, "narrow", send) + serviceAccountProfile(srv, "google", emulator.GoogleMailScope) +
		"senders:\n"
	for _, p := range []string{"narrow", "google"} {
		cfg += fmt.Sprintf("  - {name: %s, protocol: smtp, host: %s, port: %s, security: tls, tls_ca: %s, sasl: xoauth2, username: %s, profile: %s, allowed_from: [%s]}\n",
			p+"-out", host, port, q(srv.CAFile()), user, p, user)
	}
	if err := os.WriteFile(filepath.Join(dir, "mailgate.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	msg := "From: " + user + "\r\nTo: someone@example.net\r\nSubject: hi\r\nMessage-ID: <gs@example.com>\r\n\r\nhi\r\n"
	if err := os.WriteFile(filepath.Join(dir, "m.eml"), []byte(msg), 0o600); err != nil {
		t.Fatal(err)
	}
	r := mailgate(t, t.Context(), dir, "send", "--sender", "narrow-out", "m.eml")
	t.Logf("narrow scope:\n%s", r.stderr)
	if r.code != 1 || !strings.Contains(r.stderr, "535") || !strings.Contains(r.stderr, "scope https://mail.google.com/") {
		t.Errorf("narrow scope: exit %d\n%s", r.code, r.stderr)
	}
	if empty, other := srv.GmailSMTPChallengeAnswers(); empty < 1 || other != 0 {
		t.Errorf("the server saw %d empty and %d other answers to its challenge", empty, other)
	}
	if srv.GmailSMTPSent() != 0 {
		t.Errorf("sent %d with the narrow scope", srv.GmailSMTPSent())
	}
	if r := mailgate(t, t.Context(), dir, "send", "--sender", "google-out", "m.eml"); r.code != 0 || srv.GmailSMTPSent() != 1 {
		t.Errorf("full scope: exit %d, sent %d\n%s", r.code, srv.GmailSMTPSent(), r.stderr)
	}
}

// serviceAccountProfile is a profiles item getting tokens as a Workspace
// deployment of mailgate does: the emulator's service-account key, with
// domain-wide delegation, from the emulated Google's token endpoint (the
// key's token_uri), acting for each mailbox's or sender's user.
func serviceAccountProfile(srv *emulator.Server, name, scope string) string {
	return "  - {name: " + name + ", provider: google, grant: service_account, service_account_key: 'file:" + srv.GoogleKeyFile() +
		"', tls_ca: '" + srv.CAFile() + "', scopes: ['" + scope + "']}\n"
}
