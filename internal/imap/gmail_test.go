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
	// X-GM-MSGID: the same in INBOX and All Mail, and the connection
	// goes on working after the rewritten FETCH
	inIDs, err := c.GmailMsgIDs(t.Context(), nil)
	if err != nil || len(inIDs) != 1 || inIDs[uids[0]] == 0 {
		t.Fatalf("GmailMsgIDs(INBOX) = %v, %v", inIDs, err)
	}
	if _, err := c.Select(t.Context(), emu.GmailFolder(`\All`)); err != nil {
		t.Fatal(err)
	}
	allIDs, err := c.GmailMsgIDs(t.Context(), nil)
	if err != nil || len(allIDs) != 1 {
		t.Fatalf("GmailMsgIDs(All Mail) = %v, %v", allIDs, err)
	}
	for _, id := range allIDs {
		if id != inIDs[uids[0]] {
			t.Errorf("X-GM-MSGID %d in All Mail, %d in INBOX", id, inIDs[uids[0]])
		}
	}
	if _, err := c.Select(t.Context(), "INBOX"); err != nil {
		t.Fatal(err)
	}
	if again, err := c.UIDsAfter(t.Context(), 0); err != nil || len(again) != 1 {
		t.Fatalf("after GmailMsgIDs: %v %v", again, err)
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

func TestGmailStrip(t *testing.T) {
	tests := []struct {
		in, out string
		uid     uint32
		id      uint64
	}{
		{"* 1 FETCH (UID 4 X-GM-MSGID 1278455344230334865)\r\n", "* 1 FETCH (UID 4)\r\n", 4, 1278455344230334865},
		{"* 2 FETCH (X-GM-MSGID 17 UID 9)\r\n", "* 2 FETCH (UID 9)\r\n", 9, 17},
		{"* 3 FETCH (UID 5 FLAGS (\\Seen))\r\n", "* 3 FETCH (UID 5 FLAGS (\\Seen))\r\n", 0, 0},
		{"a1 OK Success\r\n", "a1 OK Success\r\n", 0, 0},
	}
	for _, tt := range tests {
		g := &gmFetch{ids: map[uint32]uint64{}}
		if got := string(g.strip([]byte(tt.in))); got != tt.out {
			t.Errorf("strip(%q) = %q, want %q", tt.in, got, tt.out)
		}
		if tt.uid != 0 && g.ids[tt.uid] != tt.id {
			t.Errorf("strip(%q) kept %v", tt.in, g.ids)
		}
	}
	g := &gmFetch{}
	if got := string(g.fetchWrite([]byte("T5 UID FETCH 1:* (UID)\r\n"))); got != "T5 UID FETCH 1:* (UID X-GM-MSGID)\r\n" {
		t.Errorf("fetchWrite: %q", got)
	}
	if got := string(g.fetchWrite([]byte("T6 UID FETCH 1:* (UID)\r\n"))); got != "T6 UID FETCH 1:* (UID)\r\n" {
		t.Errorf("second fetchWrite rewritten: %q", got)
	}
}

// FuzzGmailStrip: any server line; X-GM-MSGID is taken out of FETCH
// lines only, and nothing panics.
func FuzzGmailStrip(f *testing.F) {
	f.Add([]byte("* 1 FETCH (UID 4 X-GM-MSGID 1278455344230334865)\r\n"))
	f.Add([]byte("* 2 FETCH (X-GM-MSGID 99999999999999999999999 UID 9)\r\n"))
	f.Add([]byte("* OK X-GM-MSGID 5\r\n"))
	f.Fuzz(func(t *testing.T, line []byte) {
		g := &gmFetch{ids: map[uint32]uint64{}}
		out := g.strip(line)
		if !strings.HasPrefix(string(line), "* ") && string(out) != string(line) {
			t.Fatalf("%q changed to %q", line, out)
		}
		if len(out) > len(line) {
			t.Fatalf("%q grew to %q", line, out)
		}
	})
}
