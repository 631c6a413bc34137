package smtp

import (
	"crypto/tls"
	"errors"
	"strings"
	"testing"

	"github.com/mailgate/mailgate/internal/emulator"
	"github.com/mailgate/mailgate/internal/sasl"
)

// TestGmailSubmission: Gmail's submission service answers a token without
// https://mail.google.com/ with a 334 error challenge; the client answers
// it with an empty line (counted by the server), gets 535 5.7.8 and
// reports the challenge's scope; a token with the scope sends.
func TestGmailSubmission(t *testing.T) {
	emu, err := emulator.Start(t.Context(), emulator.Options{HTTPListen: "-", GmailSMTPListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	const user = "ops@example.com"
	tests := []struct {
		name  string
		scope string
		ok    bool
	}{
		{"gmail.send only", "https://www.googleapis.com/auth/gmail.send", false},
		{"full scope", emulator.GoogleMailScope, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := emu.GoogleMailToken(user, tt.scope)
			if err != nil {
				t.Fatal(err)
			}
			c, err := Dial(t.Context(), emu.GmailSMTPAddr(), &Options{Security: "tls", TLSConfig: &tls.Config{RootCAs: emu.CertPool(), ServerName: "127.0.0.1"}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			err = c.Authenticate(sasl.NewXOAuth2ClientNoIR(user, tok))
			if !tt.ok {
				var se *Error
				var ae *sasl.AuthError
				if !errors.As(err, &se) || se.Code != 535 || se.Enhanced != "5.7.8" || !errors.As(err, &ae) || ae.Scope != emulator.GoogleMailScope {
					t.Fatalf("want 535 5.7.8 with the challenge, got %v", err)
				}
				if !strings.Contains(err.Error(), "scope https://mail.google.com/") {
					t.Errorf("the scope is not in %q", err)
				}
				if _, fix := se.Explain(); !strings.Contains(fix, "https://mail.google.com/") {
					t.Errorf("fix %q", fix)
				}
				if empty, other := emu.GmailSMTPChallengeAnswers(); empty != 1 || other != 0 {
					t.Errorf("the server saw %d empty and %d other answers, want 1 and 0", empty, other)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Send(user, []string{"someone@example.net"}, strings.NewReader("Subject: hi\r\n\r\nhi\r\n")); err != nil {
				t.Fatal(err)
			}
			if emu.GmailSMTPSent() != 1 {
				t.Errorf("sent %d", emu.GmailSMTPSent())
			}
		})
	}
}
