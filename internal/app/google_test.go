package app

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/emulator"
	"github.com/mailgate/mailgate/internal/oauth"
)

// TestServiceAccountSubjects: every mailbox and sender of a
// service_account profile without a subject gets a token for its own
// username, one request per user however many share it; a fixed subject
// is used for all; a key file that is not a service account key is a
// *KeyError on service_account_key.
func TestServiceAccountSubjects(t *testing.T) {
	srv, err := emulator.Start(t.Context(), emulator.Options{HTTPListen: "-"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dir := t.TempDir()
	alice, bob := "alice@"+emulator.GoogleDomain, "bob@"+emulator.GoogleDomain
	file := string(srv.ConfigYAML()) + `  - name: as-bob
    provider: google
    grant: service_account
    service_account_key: 'file:` + srv.GoogleKeyFile() + `'
    subject: ` + bob + `
    tls_ca: '` + srv.CAFile() + `'
    scopes: [https://mail.google.com/]
sinks:
  - {name: kept, type: store}
mailboxes:
  - {name: a1, protocol: imap, host: imap.gmail.com, username: ` + alice + `, profile: google-workspace, sink: kept}
  - {name: a2, protocol: imap, host: imap.gmail.com, folder: Sent, username: ` + alice + `, profile: google-workspace, sink: kept}
  - {name: b1, protocol: pop3, host: pop.gmail.com, username: ` + bob + `, profile: google-workspace, sink: kept}
  - {name: fixed, protocol: imap, host: imap.gmail.com, username: ` + alice + `, profile: as-bob, sink: kept}
senders:
  - {name: s, protocol: smtp, host: smtp.gmail.com, port: 587, username: ` + bob + `, profile: google-workspace}
`
	a := openAppFile(t, dir, file)
	want := map[string]string{"a1": alice, "a2": alice, "b1": bob, "fixed": bob}
	for name, user := range want {
		m, _ := a.Config().Mailbox(name)
		mb, err := a.rt.agentMailbox(m)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := mb.Bearer.Token(t.Context())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		c, err := srv.VerifyGoogleToken(tok)
		if err != nil || c.Email != user {
			t.Errorf("mailbox %s got a token for %+v (%v), want %s", name, c, err, user)
		}
	}
	snd, _ := a.Config().Sender("s")
	ob, err := a.rt.outboxSender(snd)
	if err != nil {
		t.Fatal(err)
	}
	bearer, ok := ob.Bearer.(interface {
		Token(context.Context) (string, error)
	})
	if !ok {
		t.Fatalf("the sender's bearer %T gives no token", ob.Bearer)
	}
	tok, err := bearer.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if c, err := srv.VerifyGoogleToken(tok); err != nil || c.Email != bob {
		t.Errorf("sender got a token for %+v (%v)", c, err)
	}
	// alice: one request for a1 and a2; bob: one for google-workspace
	// (b1 and the sender) and one for as-bob, another profile.
	if n, m := srv.GoogleTokenRequests(alice), srv.GoogleTokenRequests(bob); n != 1 || m != 2 {
		t.Errorf("token requests: alice %d (want 1), bob %d (want 2)", n, m)
	}

	bad := &config.Profile{Name: "w", Provider: "google", Grant: "service_account", Scopes: []string{"https://mail.google.com/"},
		ServiceAccountKey: config.NewSecret(`{"type": "authorized_user"}`)}
	if _, err := Profile(bad, 0); err == nil || !strings.Contains(err.Error(), "profiles[w].service_account_key") || !IsKeyError(err) {
		t.Errorf("a key file that is no service account key: %v", err)
	}
}

// TestTestingExpiryAdvice: a mailbox whose Google refresh token was
// refused a week after the sign-in gets the Testing status' 7-day advice
// (what the dashboard shows under the mailbox and doctor prints); one
// refused months later gets the plain sign-in-again advice.
func TestTestingExpiryAdvice(t *testing.T) {
	m := &config.Mailbox{Name: "gmail", Protocol: "imap", Username: "alice@example.com", Profile: "gmail"}
	p := &oauth.Profile{Name: "gmail", Provider: oauth.ProviderGoogle, Grant: oauth.GrantAuthorizationCode, ClientID: "c.apps.googleusercontent.com"}
	signedIn := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	refused := &oauth.Error{Endpoint: "token", Status: 400, Code: "invalid_grant", Description: "Token has been expired or revoked."}
	for _, tt := range []struct {
		after time.Duration
		want  string
	}{
		{7*24*time.Hour + time.Hour, "apps in Google's Testing status get refresh tokens that expire after 7 days"},
		{200 * 24 * time.Hour, "mailgate login gmail"},
	} {
		err := fmt.Errorf("imap: %w", &oauth.LoginRequiredError{Profile: "gmail", Err: refused, SignedIn: signedIn, Refused: signedIn.Add(tt.after)})
		got := strings.Join(MailboxAdvice(m, p, err), "\n")
		if !strings.Contains(got, tt.want) || (tt.after > 8*24*time.Hour && strings.Contains(got, "Testing")) {
			t.Errorf("refused after %s: advice %q, want %q", tt.after, got, tt.want)
		}
	}
}

// TestServiceAccountProxyAccount: a proxy account of a service_account
// profile logs in upstream with a token for its own mailbox (the
// assertion's sub), both for a client's login and for mailgate test; the
// service account's own token is refused by Gmail.
func TestServiceAccountProxyAccount(t *testing.T) {
	srv, err := emulator.Start(t.Context(), emulator.Options{HTTPListen: "-", GmailSMTPListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dir := t.TempDir()
	alice := "alice@" + emulator.GoogleDomain
	host, port, _ := net.SplitHostPort(srv.GmailSMTPAddr())
	file := string(srv.ConfigYAML()) + `listeners:
  - {name: out, protocol: smtp, listen: '127.0.0.1:0', upstream: {host: ` + host + `, port: ` + port + `, security: tls, tls_ca: '` + srv.CAFile() + `'}}
accounts:
  - {username: scanner, password: scanner-pw, profile: google-workspace, mailbox: ` + alice + `}
`
	app := openAppFile(t, dir, file)
	rt := app.rt
	set, err := newAccountSet(rt)
	if err != nil {
		t.Fatal(err)
	}
	acct, err := set.Authenticate(t.Context(), "out", "scanner", "scanner-pw")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := acct.Bearer.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if c, err := srv.VerifyGoogleToken(tok); err != nil || c.Email != alice {
		t.Errorf("the account's login got a token for %+v (%v), want %s", c, err, alice)
	}
	a, _ := app.Config().Account("scanner")
	var failed []string
	step := func(ok bool, name, format string, args ...any) {
		if !ok {
			failed = append(failed, name+": "+fmt.Sprintf(format, args...))
		}
	}
	if !testAccount(t.Context(), rt, a, step, func(string) {}) || len(failed) > 0 {
		t.Errorf("mailgate test scanner failed: %q", failed)
	}
}

// TestMailboxUser: a mailbox's login is for its username; Gmail's POP3
// recent mode ("recent:USER", any case) is USER's login, and only POP3
// has that mode.
func TestMailboxUser(t *testing.T) {
	for _, c := range []struct {
		protocol, username, want string
	}{
		{"imap", "alice@example.com", "alice@example.com"},
		{"pop3", "alice@example.com", "alice@example.com"},
		{"pop3", "recent:alice@example.com", "alice@example.com"},
		{"pop3", "Recent:bob@example.com", "bob@example.com"},
		{"pop3", "recent:", "recent:"},
		{"imap", "recent:alice@example.com", "recent:alice@example.com"},
	} {
		m := &config.Mailbox{Protocol: c.protocol, Username: c.username}
		if got := mailboxUser(m); got != c.want {
			t.Errorf("mailboxUser(%s %q) = %q, want %q", c.protocol, c.username, got, c.want)
		}
	}
}
