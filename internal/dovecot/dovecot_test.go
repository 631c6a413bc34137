package dovecot

import (
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/mailgate/mailgate/internal/emulator"
	"github.com/mailgate/mailgate/internal/imap"
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

// TestLoginsFollowExchangeRules logs in to the real Dovecot with emulator
// tokens over every IMAP variant: a mailbox the app was granted opens, one
// it was not refuses, with the error challenge answered.
func TestLoginsFollowExchangeRules(t *testing.T) {
	emu, err := emulator.Start(t.Context(), emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	dv := StartT(t, Options{CheckURL: emu.HTTPURL()})
	tok := appToken(t, emu)
	if err := dv.Seed(emulator.DemoSharedMailbox, 3, 2000); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, proto, security, mech, mailbox string
		ok                                   bool
	}{
		{"imaps xoauth2 granted", "imaps", "tls", "xoauth2", emulator.DemoSharedMailbox, true},
		{"imaps oauthbearer granted", "imaps", "tls", "oauthbearer", emulator.DemoSharedMailbox, true},
		{"starttls xoauth2 granted", "imap", "starttls", "xoauth2", emulator.DemoSharedMailbox, true},
		{"imaps xoauth2 not granted", "imaps", "tls", "xoauth2", emulator.DemoRestrictedMailbox, false},
		{"starttls oauthbearer not granted", "imap", "starttls", "oauthbearer", emulator.DemoRestrictedMailbox, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := imap.Dial(t.Context(), dv.Addr(tt.proto), &imap.Options{Security: tt.security, TLSConfig: dv.TLSConfig()})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			sc, _ := sasl.New(tt.mech, tt.mailbox, tok, "127.0.0.1", 0)
			err = c.Authenticate(t.Context(), sc)
			if tt.ok {
				if err != nil {
					t.Fatalf("%v\n%s", err, dv.Log())
				}
				mb, err := c.Select(t.Context(), "INBOX")
				if err != nil || mb.Exists != 3 {
					t.Fatalf("select: %+v %v", mb, err)
				}
				return
			}
			var ie *imap.Error
			if !errors.As(err, &ie) || ie.Kind != imap.KindAuthFailed {
				t.Fatalf("want an auth failure, got %v", err)
			}
			var ae *sasl.AuthError
			if !errors.As(err, &ae) || ae.Status == "" {
				t.Errorf("the server's error challenge was not kept: %v", err)
			}
			// the connection is still usable after the refusal
			if err := c.Noop(t.Context()); err != nil {
				t.Errorf("NOOP after a refused login: %v", err)
			}
		})
	}
	if !strings.Contains(dv.Log(), "Add-MailboxPermission") {
		t.Error("Dovecot's log lacks the emulator's reason for the refusal")
	}
}

func TestStopLeavesNothingRunning(t *testing.T) {
	emu, err := emulator.Start(t.Context(), emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	dv := StartT(t, Options{CheckURL: emu.HTTPURL()})
	conf := dv.dir + "/etc/dovecot.conf"
	if err := dv.Stop(); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("pgrep", "-f", "dovecot -c "+conf).Output(); err == nil {
		t.Fatalf("still running: %s", out)
	}
}
