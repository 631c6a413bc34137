package emulator

import (
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// popWire is a POP3 conversation over imapWire's line reader.
type popWire struct{ *imapWire }

func dialGmailPOP3(t *testing.T, srv *Server) popWire {
	t.Helper()
	w := popWire{dialGmail(t, srv.GmailPOP3Addr(), srv)}
	if g := w.line(); !strings.HasPrefix(g, "+OK Gpop ready for requests from 127.0.0.1 ") {
		t.Fatalf("greeting %q", g)
	}
	return w
}

// do sends a command and returns its status line.
func (w popWire) do(cmd string) string {
	w.t.Helper()
	w.send(cmd)
	return w.line()
}

// multi sends a command answered with a multi-line body and returns the
// body's exact bytes (dot-unstuffed, CRLF kept).
func (w popWire) multi(cmd string) string {
	w.t.Helper()
	if l := w.do(cmd); !strings.HasPrefix(l, "+OK") {
		w.t.Fatalf("%s: %q", cmd, l)
	}
	var b strings.Builder
	for {
		l := w.line()
		if l == "." {
			return b.String()
		}
		b.WriteString(strings.TrimPrefix(l, ".") + "\r\n")
	}
}

// login authenticates with the initial response on the AUTH line.
func (w popWire) login(user, token string) {
	w.t.Helper()
	if l := w.do("AUTH XOAUTH2 " + xoauth2(user, token)); l != "+OK Welcome." {
		w.t.Fatalf("login %s: %q", user, l)
	}
}

func startGmailPOP3(t *testing.T) *Server {
	t.Helper()
	srv, err := Start(t.Context(), Options{HTTPListen: "-", GmailIMAPListen: "127.0.0.1:0", GmailPOP3Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// TestGmailPOP3Wire checks the Gmail POP3 service's bytes: greeting, CAPA,
// the error challenge after "+ " and the -ERR after the empty line, a good
// login, UIDL and RETR byte for byte, TOP, and Gmail's "listed once": a
// message RETRieved in a session ended by QUIT is not listed again, one
// RETRieved in a dropped session is, and "recent:" lists everything.
func TestGmailPOP3Wire(t *testing.T) {
	srv := startGmailPOP3(t)
	const user = "ops@example.com"
	msgs := []string{"Subject: one\r\n\r\nfirst\r\n.dotted line\r\n", "Subject: two\r\n\r\nsecond\r\n"}
	for _, m := range msgs {
		if _, err := srv.GmailDeliver(user, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	w := dialGmailPOP3(t, srv)
	if caps := w.multi("CAPA"); caps != "USER\r\nRESP-CODES\r\nEXPIRE 0\r\nTOP\r\nUIDL\r\nSASL PLAIN XOAUTH2\r\n" {
		t.Errorf("CAPA %q", caps)
	}
	bad, _ := srv.GoogleMailToken(user, "https://www.googleapis.com/auth/gmail.modify")
	if l := w.do("AUTH XOAUTH2"); l != "+ " {
		t.Fatalf("AUTH without initial response: %q", l)
	}
	if l := w.do(xoauth2(user, bad)); l != "+ "+gmailChallengeB64 {
		t.Fatalf("challenge %q", l)
	}
	if l := w.do(""); l != "-ERR [AUTH] Invalid credentials" {
		t.Fatalf("after the empty line: %q", l)
	}
	if empty, other := srv.GmailPOP3ChallengeAnswers(); empty != 1 || other != 0 {
		t.Errorf("answers %d %d", empty, other)
	}
	if l := w.do("STAT"); !strings.HasPrefix(l, "-ERR") {
		t.Errorf("STAT before login: %q", l)
	}
	good, _ := srv.GoogleMailToken(user, GoogleMailScope)
	w.login(user, good)
	if l := w.do("STAT"); l != "+OK 2 "+itoa(len(msgs[0])+len(msgs[1])) {
		t.Errorf("STAT %q", l)
	}
	if u := w.multi("UIDL"); u != "1 GmailId17979cfe362a0001\r\n2 GmailId17979cfe362a0002\r\n" {
		t.Errorf("UIDL %q", u)
	}
	if top := w.multi("TOP 1 0"); top != "Subject: one\r\n\r\n" {
		t.Errorf("TOP 1 0 %q", top)
	}
	if got := w.multi("RETR 1"); got != msgs[0] {
		t.Errorf("RETR 1 %q, want %q", got, msgs[0])
	}
	if l := w.do("QUIT"); l != "+OK Farewell." {
		t.Errorf("QUIT %q", l)
	}

	// only message 2 is left; RETR it and drop the connection: still there
	w = dialGmailPOP3(t, srv)
	w.login(user, good)
	if u := w.multi("UIDL"); u != "1 GmailId17979cfe362a0002\r\n" {
		t.Errorf("UIDL after a QUIT %q", u)
	}
	if got := w.multi("RETR 1"); got != msgs[1] {
		t.Errorf("RETR %q", got)
	}
	w.conn.Close()
	w = dialGmailPOP3(t, srv)
	w.login(user, good)
	if u := w.multi("UIDL"); u != "1 GmailId17979cfe362a0002\r\n" {
		t.Errorf("UIDL after a dropped session %q", u)
	}
	w.do("QUIT")

	w = dialGmailPOP3(t, srv)
	w.login("recent:"+user, good)
	if u := w.multi("UIDL"); u != "1 GmailId17979cfe362a0001\r\n2 GmailId17979cfe362a0002\r\n" {
		t.Errorf("UIDL in recent mode %q", u)
	}
	if n, err := srv.GmailCount(user, "INBOX"); err != nil || n != 2 {
		t.Errorf("INBOX over IMAP: %d (%v), want 2 (keep)", n, err)
	}
}

// TestGmailPOP3Disposition: what DELE or RETR then QUIT does to the IMAP
// view follows the POP setting; in every case the message is popped.
func TestGmailPOP3Disposition(t *testing.T) {
	srv := startGmailPOP3(t)
	const user = "ops@example.com"
	for _, c := range []struct {
		disp                    string
		inbox, all, bin, unseen int
	}{{GmailPOPKeep, 1, 1, 0, 1}, {GmailPOPRead, 1, 1, 0, 0}, {GmailPOPArchive, 0, 1, 0, 0}, {GmailPOPTrash, 0, 0, 1, 0}} {
		t.Run(c.disp, func(t *testing.T) {
			acct := c.disp + "-" + user
			if err := srv.GmailPOPDisposition(acct, c.disp); err != nil {
				t.Fatal(err)
			}
			if _, err := srv.GmailDeliver(acct, []byte("Subject: x\r\n\r\nx\r\n")); err != nil {
				t.Fatal(err)
			}
			tok, _ := srv.GoogleMailToken(acct, GoogleMailScope)
			w := dialGmailPOP3(t, srv)
			w.login(acct, tok)
			if l := w.do("DELE 1"); !strings.HasPrefix(l, "+OK") {
				t.Fatalf("DELE %q", l)
			}
			w.do("QUIT")
			for _, f := range []struct {
				folder string
				want   int
			}{{"INBOX", c.inbox}, {srv.GmailFolder(`\All`), c.all}, {srv.GmailFolder(`\Trash`), c.bin}} {
				if n, err := srv.GmailCount(acct, f.folder); err != nil || n != f.want {
					t.Errorf("%s: %d (%v), want %d", f.folder, n, err, f.want)
				}
			}
			// keep leaves the Inbox message unread, read marks it \Seen
			st, err := srv.gmail.user(acct).mem.Status("INBOX", &imap.StatusOptions{NumUnseen: true})
			if err != nil || int(*st.NumUnseen) != c.unseen {
				t.Errorf("INBOX unseen: %v (%v), want %d", st, err, c.unseen)
			}
			w = dialGmailPOP3(t, srv)
			w.login(acct, tok)
			if l := w.do("STAT"); l != "+OK 0 0" {
				t.Errorf("STAT after the pop: %q", l)
			}
		})
	}
	if err := srv.GmailPOPDisposition(user, "delete"); err == nil {
		t.Error("an unknown disposition was accepted")
	}
}

// FuzzPOP3Command: any line parses or is refused without panicking; a
// parsed verb is upper-case letters and there are at most two arguments.
func FuzzPOP3Command(f *testing.F) {
	for _, s := range []string{"CAPA", "AUTH XOAUTH2 dXNlcj0BAQ==", "top 1 0", "RETR", "", "  ", "USER recent:a@b", "X\x00Y 1", strings.Repeat("A", 9000)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		c, err := parsePOP3Command(line)
		if err != nil {
			return
		}
		if c.Verb == "" || c.Verb != strings.ToUpper(c.Verb) || len(c.Args) > 2 || strings.Trim(c.Verb, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
			t.Fatalf("%q parsed to %+v", line, c)
		}
	})
}
