package imap

import (
	"crypto/tls"
	"errors"
	"strings"
	"testing"

	"github.com/mailgate/mailgate/internal/emulator"
	"github.com/mailgate/mailgate/internal/sasl"
)

// TestGmailEmulator drives the client against the emulator's Gmail IMAP
// service: the error challenge is answered with an empty line and kept in
// the error; X-GM-EXT-1 tells Gmail; special-use attributes find the
// localized folders; a plain delete (EXPUNGE) in INBOX only archives, the
// message stays in All Mail, which is why mailbox moves to \Trash.
func TestGmailEmulator(t *testing.T) {
	emu, err := emulator.Start(t.Context(), emulator.Options{HTTPListen: "-", GmailIMAPListen: "127.0.0.1:0", GmailLocalized: true})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	const user = "ops@example.com"
	tlsc := &tls.Config{RootCAs: emu.CertPool(), ServerName: "127.0.0.1"}

	bad, _ := emu.GoogleMailToken(user, "https://www.googleapis.com/auth/gmail.readonly")
	c, err := Dial(t.Context(), emu.GmailIMAPAddr(), &Options{TLSConfig: tlsc})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Authenticate(t.Context(), sasl.NewXOAuth2Client(user, bad))
	c.Close()
	var ie *Error
	var ae *sasl.AuthError
	if !errors.As(err, &ie) || ie.Kind != KindAuthFailed || ie.Code != "AUTHENTICATIONFAILED" || !errors.As(err, &ae) || ae.Scope != "https://mail.google.com/" {
		t.Fatalf("Authenticate = %v", err)
	}
	if empty, other := emu.GmailChallengeAnswers(); empty != 1 || other != 0 {
		t.Errorf("the server saw %d empty and %d other answers to its challenge, want 1 and 0", empty, other)
	}

	if _, err := emu.GmailDeliver(user, []byte("Subject: x\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	good, _ := emu.GoogleMailToken(user, emulator.GoogleMailScope)
	c, err = Dial(t.Context(), emu.GmailIMAPAddr(), &Options{TLSConfig: tlsc})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Authenticate(t.Context(), sasl.NewXOAuth2Client(user, good)); err != nil {
		t.Fatal(err)
	}
	if !c.Gmail() {
		t.Error("X-GM-EXT-1 not seen")
	}
	for attr, want := range map[string]string{`\All`: "[Google Mail]/Alle Nachrichten", `\Trash`: "[Google Mail]/Papierkorb",
		`\Sent`: "[Google Mail]/Gesendet", `\Junk`: "[Google Mail]/Spam", `\Drafts`: "[Google Mail]/Entwürfe", `\Archive`: ""} {
		if got, err := c.SpecialUse(t.Context(), attr); err != nil || got != want {
			t.Errorf("SpecialUse(%s) = %q, %v; want %q", attr, got, err, want)
		}
	}
	if _, err := c.Select(t.Context(), "INBOX"); err != nil {
		t.Fatal(err)
	}
	uids, err := c.UIDsAfter(t.Context(), 0)
	if err != nil || len(uids) != 1 {
		t.Fatalf("UIDs %v %v", uids, err)
	}
	if err := c.Delete(t.Context(), uids); err != nil {
		t.Fatal(err)
	}
	in, _ := emu.GmailCount(user, "INBOX")
	all, _ := emu.GmailCount(user, emu.GmailFolder(`\All`))
	if in != 0 || all != 1 {
		t.Errorf("after EXPUNGE in INBOX: INBOX %d, All Mail %d; want 0 and 1 (archived)", in, all)
	}
	if !strings.HasPrefix(emu.GmailFolder(`\Trash`), "[Google Mail]/") {
		t.Errorf("localized trash %q", emu.GmailFolder(`\Trash`))
	}
}
