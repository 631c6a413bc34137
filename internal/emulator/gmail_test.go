package emulator

import (
	"bufio"
	"crypto/tls"
	"strings"
	"testing"
	"time"
)

// gmailChallengeB64 is what Gmail sends after "+ " or "334 ".
const gmailChallengeB64 = "eyJzdGF0dXMiOiI0MDAiLCJzY2hlbWVzIjoiQmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ=="

func dialGmail(t *testing.T, addr string, srv *Server) *imapWire {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: srv.CertPool(), ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	return &imapWire{t: t, conn: conn, r: bufio.NewReader(conn)}
}

// refusedXOAUTH2 logs in as user with a token Gmail refuses: the answer
// is the error challenge and, after the empty line, the NO.
func (w *imapWire) refusedXOAUTH2(what, user, token string) {
	w.t.Helper()
	w.send("a1 AUTHENTICATE XOAUTH2 " + xoauth2(user, token))
	if l := w.line(); l != "+ "+gmailChallengeB64 {
		w.t.Fatalf("%s: challenge %q", what, l)
	}
	w.send("")
	if l := w.line(); l != "a1 NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)" {
		w.t.Fatalf("%s: after the empty line: %q", what, l)
	}
}

// TestGmailIMAPWire checks the Gmail service's bytes: the greeting's
// X-GM-EXT-1, the error challenge and the NO after the empty line, LIST's
// special-use attributes, and the connection cap's ALERT.
func TestGmailIMAPWire(t *testing.T) {
	srv, err := Start(t.Context(), Options{HTTPListen: "-", GmailIMAPListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	const user = "ops@example.com"
	w := dialGmail(t, srv.GmailIMAPAddr(), srv)
	if g := w.line(); !strings.Contains(g, "X-GM-EXT-1") || !strings.Contains(g, "AUTH=XOAUTH2") {
		t.Errorf("greeting %q", g)
	}
	bad, _ := srv.GoogleMailToken(user, "https://www.googleapis.com/auth/gmail.modify")
	w.refusedXOAUTH2("a token without the scope", user, bad)
	if empty, other := srv.GmailChallengeAnswers(); empty != 1 || other != 0 {
		t.Errorf("answers %d %d", empty, other)
	}

	good, _ := srv.GoogleMailToken(user, GoogleMailScope)
	var conns []*imapWire
	for i := range gmailMaxConnections {
		c := dialGmail(t, srv.GmailIMAPAddr(), srv)
		c.line()
		c.send("a1 AUTHENTICATE XOAUTH2 " + xoauth2(user, good))
		if l := c.line(); !strings.HasPrefix(l, "a1 OK") {
			t.Fatalf("login %d: %q", i+1, l)
		}
		conns = append(conns, c)
	}
	untagged, done := conns[0].cmd(`LIST "" "*"`)
	list := strings.Join(untagged, "\n")
	for _, want := range []string{`(\HasNoChildren \All) "/" "[Gmail]/All Mail"`, `(\HasNoChildren \Trash) "/" "[Gmail]/Trash"`,
		`(\HasNoChildren \Sent) "/" "[Gmail]/Sent Mail"`, `(\HasNoChildren \Junk) "/" "[Gmail]/Spam"`, `(\HasNoChildren \Drafts) "/" "[Gmail]/Drafts"`} {
		if !strings.Contains(list, want) {
			t.Errorf("LIST lacks %s:\n%s\n%s", want, list, done)
		}
	}
	c := dialGmail(t, srv.GmailIMAPAddr(), srv)
	c.line()
	c.send("a1 AUTHENTICATE XOAUTH2 " + xoauth2(user, good))
	if l := c.line(); l != "a1 NO [ALERT] Too many simultaneous connections. (Failure)" {
		t.Errorf("login 16: %q", l)
	}
	if n := srv.GmailExpireSessions(); n != gmailMaxConnections {
		t.Errorf("expired %d sessions", n)
	}
	if l := conns[1].line(); l != "* BYE Session expired, please login again." {
		t.Errorf("expired session got %q", l)
	}
}

// TestGmailSMTPWire: the 334 error challenge, then 535-5.7.8 on each line.
func TestGmailSMTPWire(t *testing.T) {
	srv, err := Start(t.Context(), Options{HTTPListen: "-", GmailSMTPListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	w := dialGmail(t, srv.GmailSMTPAddr(), srv)
	w.line()
	w.send("EHLO client")
	for l := w.line(); !strings.HasPrefix(l, "250 "); l = w.line() {
	}
	bad, _ := srv.GoogleMailToken("ops@example.com", "https://www.googleapis.com/auth/gmail.send")
	w.send("AUTH XOAUTH2 " + xoauth2("ops@example.com", bad))
	if l := w.line(); l != "334 "+gmailChallengeB64 {
		t.Fatalf("challenge %q", l)
	}
	w.send("")
	if l := w.line(); !strings.HasPrefix(l, "535-5.7.8 Username and Password not accepted") {
		t.Errorf("first line %q", l)
	}
	if l := w.line(); !strings.HasPrefix(l, "535 5.7.8 https://support.google.com/mail/?p=BadCredentials") {
		t.Errorf("last line %q", l)
	}
	if empty, other := srv.GmailSMTPChallengeAnswers(); empty != 1 || other != 0 {
		t.Errorf("answers %d %d", empty, other)
	}
}

// TestGmailSMTPDelivers: with both Gmail services on (as mailgate emulator
// runs them), a message submitted over SMTP lands in the sender's Sent
// folder and each recipient's INBOX, and the session goes on (a failed
// append once left the account locked and the IMAP service hanging).
func TestGmailSMTPDelivers(t *testing.T) {
	srv, err := Start(t.Context(), Options{HTTPListen: "-", GmailIMAPListen: "127.0.0.1:0", GmailSMTPListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	alice, bob := "alice@"+GoogleDomain, "bob@"+GoogleDomain
	w := dialGmail(t, srv.GmailSMTPAddr(), srv)
	w.line()
	w.send("EHLO client")
	for l := w.line(); !strings.HasPrefix(l, "250 "); l = w.line() {
	}
	w.send("AUTH XOAUTH2 " + xoauth2(alice, googleIssued(t, srv, alice, GoogleMailScope)))
	if l := w.line(); !strings.HasPrefix(l, "235 ") {
		t.Fatalf("auth: %q", l)
	}
	for range 2 {
		for _, c := range []string{"MAIL FROM:<" + alice + ">", "RCPT TO:<" + alice + ">", "RCPT TO:<" + bob + ">", "DATA"} {
			w.send(c)
			if l := w.line(); !strings.HasPrefix(l, "250 ") && !strings.HasPrefix(l, "354 ") {
				t.Fatalf("%s: %q", c, l)
			}
		}
		w.send("Subject: hi\r\n\r\nhello\r\n.")
		if l := w.line(); !strings.HasPrefix(l, "250 ") {
			t.Fatalf("end of data: %q", l)
		}
	}
	for _, c := range []struct{ user, folder string }{{alice, srv.GmailFolder(`\Sent`)}, {alice, "INBOX"}, {bob, "INBOX"}, {bob, srv.GmailFolder(`\All`)}} {
		if n, err := srv.GmailCount(c.user, c.folder); err != nil || n != 2 {
			t.Errorf("%s %s: %d messages (%v), want 2", c.user, c.folder, n, err)
		}
	}
}

// TestGmailMsgIDWire: X-GM-MSGID in FETCH, the same in INBOX and All Mail
// and after GmailResetUIDValidity, which changes UIDVALIDITY.
func TestGmailMsgIDWire(t *testing.T) {
	srv, err := Start(t.Context(), Options{HTTPListen: "-", GmailIMAPListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	const user = "ops@example.com"
	for range 2 {
		if _, err := srv.GmailDeliver(user, []byte("Subject: x\r\n\r\nx\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	fetch := func() (validity string, lines []string) {
		w := dialGmail(t, srv.GmailIMAPAddr(), srv)
		w.line()
		good, _ := srv.GoogleMailToken(user, GoogleMailScope)
		if _, done := w.cmd("AUTHENTICATE XOAUTH2 %s", xoauth2(user, good)); !strings.Contains(done, "OK") {
			t.Fatalf("login: %s", done)
		}
		sel, _ := w.cmd("SELECT INBOX")
		validity = strings.Join(sel, "\n")
		validity = validity[strings.Index(validity, "UIDVALIDITY"):]
		validity = validity[:strings.IndexByte(validity, ']')]
		in, done := w.cmd("UID FETCH 1:* (UID X-GM-MSGID)")
		if !strings.Contains(done, "OK") {
			t.Fatalf("fetch: %s", done)
		}
		w.cmd(`SELECT "[Gmail]/All Mail"`)
		all, _ := w.cmd("FETCH 1:* (X-GM-MSGID)")
		return validity, append(in, all...)
	}
	v1, lines := fetch()
	want := []string{"X-GM-MSGID 1700000000000000001)", "X-GM-MSGID 1700000000000000002)"}
	joined := strings.Join(lines, "\n")
	for _, w := range want {
		if strings.Count(joined, w) != 2 {
			t.Errorf("%s not in INBOX and All Mail:\n%s", w, joined)
		}
	}
	if err := srv.GmailResetUIDValidity(user); err != nil {
		t.Fatal(err)
	}
	v2, lines := fetch()
	if v1 == v2 {
		t.Errorf("UIDVALIDITY unchanged: %s", v1)
	}
	for _, w := range want {
		if !strings.Contains(strings.Join(lines, "\n"), w) {
			t.Errorf("%s lost by the reset:\n%s", w, strings.Join(lines, "\n"))
		}
	}
}

// FuzzGmailFetchRewrite: any client line and server line through the
// X-GM-MSGID rewriting; nothing panics and only FETCH commands change.
func FuzzGmailFetchRewrite(f *testing.F) {
	f.Add([]byte("a1 UID FETCH 1:* (UID X-GM-MSGID)\r\n"), []byte("* 1 FETCH (UID 4)\r\n"))
	f.Add([]byte("a2 FETCH 1 X-GM-MSGID\r\n"), []byte("* 1 FETCH (UID 4 FLAGS ())\r\n"))
	f.Fuzz(func(t *testing.T, cmd, line []byte) {
		if out, tag, ok := rewriteFetch(cmd); ok {
			if !strings.Contains(strings.ToUpper(string(cmd)), "FETCH") || tag == "" || strings.Contains(strings.ToUpper(string(out)), "X-GM-MSGID") && !strings.Contains(strings.ToUpper(tag), "X-GM-MSGID") {
				t.Fatalf("%q rewritten to %q (tag %q)", cmd, out, tag)
			}
		}
		out := addMsgID(line, func(uint32) uint64 { return 7 })
		if string(out) != string(line) && !strings.Contains(string(out), " X-GM-MSGID 7") {
			t.Fatalf("%q became %q", line, out)
		}
	})
}
