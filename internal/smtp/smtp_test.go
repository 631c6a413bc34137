package smtp

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/dovecot"
	"github.com/mailgate/mailgate/internal/emulator"
	"github.com/mailgate/mailgate/internal/sasl"
)

// appToken is the demo app's token for Exchange (IMAP, POP, SMTP).
func appToken(t *testing.T, emu *emulator.Server) string {
	t.Helper()
	tok, err := emu.DemoAppToken(t.Context(), "https://outlook.office365.com/.default")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestSubmissionAgainstDovecot sends through Dovecot's submission service
// (STARTTLS, the token after the 334 as Dovecot requires) with emulator
// tokens and reads the message back from the recipient's maildir.
func TestSubmissionAgainstDovecot(t *testing.T) {
	emu, err := emulator.Start(t.Context(), emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	dv := dovecot.StartT(t, dovecot.Options{CheckURL: emu.HTTPURL(), Relay: true})
	tok := appToken(t, emu)
	tests := []struct {
		name, user, mech string
		ok               bool
		proto, security  string
	}{
		{"xoauth2 granted", emulator.DemoSenderMailbox, "xoauth2", true, "submission", "starttls"},
		{"oauthbearer granted implicit tls", emulator.DemoSenderMailbox, "oauthbearer", true, "submissions", "tls"},
		{"not granted", emulator.DemoRestrictedMailbox, "xoauth2", false, "submission", "starttls"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Dial(t.Context(), dv.Addr(tt.proto), &Options{Security: tt.security, TLSConfig: dv.TLSConfig()})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var sc sasl.Client = sasl.NewXOAuth2ClientNoIR(tt.user, tok)
			if tt.mech == "oauthbearer" {
				sc = sasl.NewOAuthBearerClientNoIR(tt.user, tok, "127.0.0.1", 0)
			}
			err = c.Authenticate(sc)
			if !tt.ok {
				var se *Error
				if !errors.As(err, &se) || se.Code != 535 || se.Temporary() {
					t.Fatalf("want a 535, got %v", err)
				}
				if m, fix := se.Explain(); m == "" || !strings.Contains(fix, "Add-MailboxPermission") {
					t.Errorf("explanation %q %q", m, fix)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, dv.Log())
			}
			id := "<sent-" + string(rune('a'+i)) + "@mailgate.test>"
			msg := "From: " + tt.user + "\r\nTo: " + emulator.DemoSharedMailbox + "\r\nSubject: hello\r\nMessage-ID: " + id + "\r\n\r\nsent by mailgate\r\n"
			if err := c.Send(tt.user, []string{emulator.DemoSharedMailbox}, strings.NewReader(msg)); err != nil {
				t.Fatalf("%v\n%s", err, dv.Log())
			}
			_ = c.Quit()
			deadline := time.Now().Add(5 * time.Second)
			for {
				msgs, _ := dv.Messages(emulator.DemoSharedMailbox, "")
				for _, b := range msgs {
					if strings.Contains(string(b), id) && strings.Contains(string(b), "sent by mailgate") {
						return
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("the message did not arrive\n%s", dv.Log())
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

func TestExplain(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{Code: 535, Enhanced: "5.7.139", Message: "Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant."}, "SmtpClientAuthenticationDisabled"},
		{Error{Code: 535, Enhanced: "5.7.3", Message: "Authentication unsuccessful"}, "SMTP.SendAsApp"},
		{Error{Code: 554, Enhanced: "5.2.252", Message: "SendAsDenied; a not allowed to send as b"}, "Add-RecipientPermission"},
		{Error{Code: 452, Enhanced: "4.5.3", Message: "Too many recipients"}, "retries"},
		{Error{Code: 451, Enhanced: "4.7.500", Message: "Server busy"}, "retries"},
		{Error{Code: 550, Enhanced: "5.1.1", Message: "User unknown"}, "recipient address"},
	}
	for _, tt := range tests {
		_, fix := tt.e.Explain()
		if !strings.Contains(fix, tt.want) {
			t.Errorf("%d %s: fix %q", tt.e.Code, tt.e.Enhanced, fix)
		}
	}
	if !(&Error{Code: 421}).Temporary() || (&Error{Code: 554}).Temporary() {
		t.Error("Temporary")
	}
}

// TestSendEachNoRecipients: a message without recipients is refused before
// anything is said to the server (a damaged outbox row made SendEach
// index an empty list).
func TestSendEachNoRecipients(t *testing.T) {
	refused, err := (&Client{}).SendEach("a@example.com", nil, strings.NewReader("x"))
	if !errors.Is(err, ErrNoRecipients) || refused != nil {
		t.Fatalf("SendEach without recipients: %v, %v", refused, err)
	}
}
