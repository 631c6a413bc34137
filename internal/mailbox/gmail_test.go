package mailbox

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/emulator"
	"github.com/mailgate/mailgate/internal/imap"
	"github.com/mailgate/mailgate/internal/sasl"
)

const gmailUser = "ops@example.com"

// fixedBearer hands out one token.
type fixedBearer struct{ tok string }

func (b fixedBearer) Token(context.Context) (string, error) { return b.tok, nil }
func (fixedBearer) Invalidate()                             {}

func startGmail(t *testing.T, localized bool) *emulator.Server {
	t.Helper()
	emu, err := emulator.Start(t.Context(), emulator.Options{HTTPListen: "-", GmailIMAPListen: "127.0.0.1:0", GmailLocalized: localized})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	return emu
}

func gmailDialer(t *testing.T, emu *emulator.Server, folder string, scopes ...string) Dialer {
	t.Helper()
	tok, err := emu.GoogleMailToken(gmailUser, scopes...)
	if err != nil {
		t.Fatal(err)
	}
	return NewIMAP(IMAPOptions{Name: "gmail", Addr: emu.GmailIMAPAddr(), Username: gmailUser, Folder: folder,
		TLSConfig: &tls.Config{RootCAs: emu.CertPool(), ServerName: "127.0.0.1"}, Bearer: fixedBearer{tok}})
}

func gmailMessage(i int) []byte {
	return fmt.Appendf(nil, "From: a@example.com\r\nTo: %s\r\nSubject: %d\r\nMessage-ID: <%d@example.com>\r\n\r\nbody %d\r\n", gmailUser, i, i, i)
}

// TestGmailRefusedScope: a token without https://mail.google.com/ gets
// Gmail's error challenge; the client answers it with an empty line (the
// server counts what it saw) and the error names the scope and what to do.
func TestGmailRefusedScope(t *testing.T) {
	emu := startGmail(t, false)
	_, err := gmailDialer(t, emu, "INBOX", "https://www.googleapis.com/auth/gmail.modify").Dial(t.Context())
	e, ok := AsError(err)
	if !ok || !e.AuthFailed || e.Step != StepAuth {
		t.Fatalf("Dial = %v, want an auth failure", err)
	}
	var ae *sasl.AuthError
	if !errors.As(err, &ae) || ae.Status != "400" || ae.Scope != "https://mail.google.com/" {
		t.Fatalf("no challenge in %v", err)
	}
	for _, want := range []string{"AUTHENTICATIONFAILED", "Invalid credentials", "scope https://mail.google.com/", "gmail.modify, gmail.readonly or gmail.send are not enough"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
	if empty, other := emu.GmailChallengeAnswers(); empty != 1 || other != 0 {
		t.Errorf("the server saw %d empty and %d other answers to its challenge, want 1 and 0", empty, other)
	}
}

// TestGmailDeleteMovesToTrash: after: delete on Gmail moves the message to
// the \Trash folder, found by its attribute also when its name is
// localized; a bare EXPUNGE would have left it in All Mail.
func TestGmailDeleteMovesToTrash(t *testing.T) {
	for _, localized := range []bool{false, true} {
		t.Run(fmt.Sprintf("localized=%v", localized), func(t *testing.T) {
			emu := startGmail(t, localized)
			for i := range 2 {
				if _, err := emu.GmailDeliver(gmailUser, gmailMessage(i)); err != nil {
					t.Fatal(err)
				}
			}
			conn, err := gmailDialer(t, emu, "INBOX", emulator.GoogleMailScope).Dial(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			sc, err := conn.Scan(t.Context(), Cursor{})
			if err != nil || len(sc.Items) != 2 {
				t.Fatalf("Scan: %v %+v", err, sc)
			}
			if err := conn.Ack(t.Context(), sc.Items, After{Kind: "delete"}); err != nil {
				t.Fatal(err)
			}
			counts := map[string]int{}
			for _, attr := range []string{"", `\All`, `\Trash`} {
				if counts[attr], err = emu.GmailCount(gmailUser, emu.GmailFolder(attr)); err != nil {
					t.Fatal(err)
				}
			}
			if counts[""] != 0 || counts[`\All`] != 0 || counts[`\Trash`] != 2 {
				t.Errorf("after delete: INBOX %d, All Mail %d, Trash %d; want 0, 0, 2", counts[""], counts[`\All`], counts[`\Trash`])
			}
		})
	}
}

// TestGmailSpecialUseFolders: folder and move: settings written as a
// special-use attribute find the localized folder; elsewhere the plain
// name is used.
func TestGmailSpecialUseFolders(t *testing.T) {
	emu := startGmail(t, true)
	if _, err := emu.GmailDeliver(gmailUser, gmailMessage(1)); err != nil {
		t.Fatal(err)
	}
	conn, err := gmailDialer(t, emu, `\All`, emulator.GoogleMailScope).Dial(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sc, err := conn.Scan(t.Context(), Cursor{})
	if err != nil || len(sc.Items) != 1 {
		t.Fatalf("Scan of \\All (%s): %v %+v", emu.GmailFolder(`\All`), err, sc)
	}
	var body strings.Builder
	if err := conn.Fetch(t.Context(), sc.Items, func(_ Item, r io.Reader) error { _, err := io.Copy(&body, r); return err }); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(body.String(), "body 1") {
		t.Errorf("fetched %q", body.String())
	}
	if err := conn.Ack(t.Context(), sc.Items, After{Kind: "move", Folder: `\Sent`}); err != nil {
		t.Fatal(err)
	}
	if n, _ := emu.GmailCount(gmailUser, "[Google Mail]/Gesendet"); n != 1 {
		t.Errorf("move:\\Sent put %d messages in [Google Mail]/Gesendet, want 1", n)
	}
}

// TestGmailConnectionCap: the login over the cap is refused with Gmail's
// ALERT, which the mailbox classifies as temporary with a long wait and
// an explanation.
func TestGmailConnectionCap(t *testing.T) {
	emu := startGmail(t, false)
	emu.GmailMaxConnections(2)
	d := gmailDialer(t, emu, "INBOX", emulator.GoogleMailScope)
	for range 2 {
		c, err := d.Dial(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	_, err := d.Dial(t.Context())
	e, ok := AsError(err)
	if !ok || !e.Temporary || e.AuthFailed || e.Wait != TooManyConnectionsWait {
		t.Fatalf("third Dial = %v (%+v), want a temporary refusal with a wait", err, e)
	}
	var ie *imap.Error
	if !errors.As(err, &ie) || ie.Kind != imap.KindTooManyConnections || ie.Code != "ALERT" {
		t.Errorf("imap error %+v", ie)
	}
	if !strings.Contains(err.Error(), "15 per account") || !strings.Contains(err.Error(), "Too many simultaneous connections") {
		t.Errorf("not explained: %v", err)
	}
	if emu.GmailRefusedLogins() != 1 {
		t.Errorf("refused logins %d", emu.GmailRefusedLogins())
	}
}

// TestGmailSessionExpired: Gmail's "* BYE Session expired" ends a session
// as a routine reconnect, not as a failure.
func TestGmailSessionExpired(t *testing.T) {
	emu := startGmail(t, false)
	conn, err := gmailDialer(t, emu, "INBOX", emulator.GoogleMailScope).Dial(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if n := emu.GmailExpireSessions(); n != 1 {
		t.Fatalf("expired %d sessions", n)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	_, err = conn.Scan(ctx, Cursor{})
	e, ok := AsError(err)
	if !ok || !e.Reconnect || !e.Temporary {
		t.Fatalf("Scan after BYE = %v (%+v), want a routine reconnect", err, e)
	}
}

// TestGmailIdle: mail delivered while the client idles on the Gmail
// service ends the wait.
func TestGmailIdle(t *testing.T) {
	emu := startGmail(t, false)
	conn, err := gmailDialer(t, emu, "INBOX", emulator.GoogleMailScope).Dial(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	done := make(chan error, 1)
	go func() { done <- conn.(Waiter).Wait(t.Context(), 10*time.Minute) }()
	time.Sleep(200 * time.Millisecond) // let IDLE start; the mail may also come before it, which ends the wait too
	if _, err := emu.GmailDeliver(gmailUser, gmailMessage(1)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("IDLE did not end on new mail")
	}
}
