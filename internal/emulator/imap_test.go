package emulator

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"
)

// imapWire is a line-level IMAP client: what goes over the wire is what the
// test asserts.
type imapWire struct {
	t    *testing.T
	conn *tls.Conn
	r    *bufio.Reader
	n    int
}

func dialIMAP(t *testing.T, srv *Server) *imapWire {
	t.Helper()
	conn, err := tls.Dial("tcp", srv.IMAPAddr(), &tls.Config{RootCAs: srv.CertPool(), ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("dial IMAPS (certificate verified against the emulator's CA): %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	w := &imapWire{t: t, conn: conn, r: bufio.NewReader(conn)}
	if g := w.line(); !strings.HasPrefix(g, "* OK") {
		t.Fatalf("greeting %q", g)
	}
	return w
}

func (w *imapWire) line() string {
	w.t.Helper()
	l, err := w.r.ReadString('\n')
	if err != nil {
		w.t.Fatalf("read: %v", err)
	}
	return strings.TrimRight(l, "\r\n")
}

func (w *imapWire) send(s string) {
	w.t.Helper()
	if _, err := fmt.Fprintf(w.conn, "%s\r\n", s); err != nil {
		w.t.Fatal(err)
	}
}

// cmd sends a tagged command and returns the untagged lines and the tagged
// completion.
func (w *imapWire) cmd(format string, a ...any) (untagged []string, done string) {
	w.t.Helper()
	w.n++
	tag := fmt.Sprintf("A%02d", w.n)
	w.send(tag + " " + fmt.Sprintf(format, a...))
	for {
		l := w.line()
		if strings.HasPrefix(l, tag+" ") {
			return untagged, strings.TrimPrefix(l, tag+" ")
		}
		untagged = append(untagged, l)
	}
}

func xoauth2(user, token string) string {
	return base64.StdEncoding.EncodeToString([]byte("user=" + user + "\x01auth=Bearer " + token + "\x01\x01"))
}

func TestExchangeIMAP(t *testing.T) {
	srv, err := Start(t.Context(), Options{IMAPListen: "127.0.0.1:0", HTTPListen: "-"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	exo := post(t, srv, tokenURL(srv, false), ccForm("https://outlook.office365.com/.default")).str("access_token")
	if exo == "" {
		t.Fatal("no Exchange token")
	}
	for i := range 3 {
		if _, err := srv.IMAPDeliver(DemoSharedMailbox, fmt.Appendf(nil, "Subject: m%d\r\nMessage-ID: <m%d@x>\r\n\r\nbody %d\r\n", i, i, i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := srv.IMAPDeliver("nobody@contoso.example", []byte("Subject: x\r\n\r\n")); err == nil {
		t.Error("delivery to a mailbox the tenant does not have was accepted")
	}

	t.Run("capabilities: XOAUTH2 only, basic authentication off", func(t *testing.T) {
		w := dialIMAP(t, srv)
		un, done := w.cmd("CAPABILITY")
		caps := strings.Join(un, " ")
		if !strings.HasPrefix(done, "OK") || !strings.Contains(caps, "AUTH=XOAUTH2") || !strings.Contains(caps, "SASL-IR") {
			t.Fatalf("CAPABILITY: %q %q", caps, done)
		}
		for _, not := range []string{"AUTH=PLAIN", "AUTH=OAUTHBEARER", "STARTTLS"} {
			if strings.Contains(caps, not) {
				t.Errorf("advertises %s: %q", not, caps)
			}
		}
		if _, done := w.cmd(`LOGIN %s "%s"`, DemoUser, DemoUserPassword); done != "NO LOGIN failed." {
			t.Errorf("LOGIN with the right password: %q, want NO LOGIN failed. (basic auth is off)", done)
		}
	})

	refused := []struct {
		name, user, token string
	}{
		{"a mailbox the app was never granted", DemoRestrictedMailbox, exo},
		{"a Graph token", DemoSharedMailbox, graphToken(t, srv)},
		{"a forged token", DemoSharedMailbox, exo[:len(exo)-4] + "AAAA"},
		{"a mailbox that does not exist", "nobody@contoso.example", exo},
	}
	for _, c := range refused {
		t.Run("refused: "+c.name, func(t *testing.T) {
			w := dialIMAP(t, srv)
			un, done := w.cmd("AUTHENTICATE XOAUTH2 %s", xoauth2(c.user, c.token))
			if done != "NO AUTHENTICATE failed." || len(un) != 0 {
				t.Fatalf("got %q then %q, want only NO AUTHENTICATE failed. (Exchange gives no challenge, no detail)", un, done)
			}
			if _, done := w.cmd("SELECT INBOX"); !strings.HasPrefix(done, "BAD") && !strings.HasPrefix(done, "NO") {
				t.Errorf("SELECT after a failed AUTHENTICATE: %q", done)
			}
		})
	}
	t.Run("refused: malformed XOAUTH2", func(t *testing.T) {
		w := dialIMAP(t, srv)
		if _, done := w.cmd("AUTHENTICATE XOAUTH2 %s", base64.StdEncoding.EncodeToString([]byte("user=x"))); done != "NO AUTHENTICATE failed." {
			t.Fatalf("got %q", done)
		}
	})

	t.Run("app-only token reads and marks the shared mailbox", func(t *testing.T) {
		w := dialIMAP(t, srv)
		un, done := w.cmd("AUTHENTICATE XOAUTH2 %s", xoauth2(DemoSharedMailbox, exo))
		if !strings.HasPrefix(done, "OK") {
			t.Fatalf("AUTHENTICATE: %q %q", un, done)
		}
		un, done = w.cmd("SELECT INBOX")
		if !strings.HasPrefix(done, "OK") || !strings.Contains(strings.Join(un, "\n"), "* 3 EXISTS") || !strings.Contains(strings.Join(un, "\n"), "UIDVALIDITY") {
			t.Fatalf("SELECT: %q %q", un, done)
		}
		un, done = w.cmd("UID FETCH 1:* (BODY.PEEK[])")
		all := strings.Join(un, "\n")
		if !strings.HasPrefix(done, "OK") || !strings.Contains(all, "body 0") || !strings.Contains(all, "body 2") {
			t.Fatalf("UID FETCH: %q %q", all, done)
		}
		if _, done := w.cmd(`UID STORE 1:2 +FLAGS.SILENT (\Seen)`); !strings.HasPrefix(done, "OK") {
			t.Fatalf("UID STORE: %q", done)
		}
		n, unseen, err := srv.IMAPStatus(DemoSharedMailbox, "INBOX")
		if err != nil || n != 3 || unseen != 1 {
			t.Fatalf("IMAPStatus = %d, %d, %v; want 3 messages, 1 unseen", n, unseen, err)
		}
		if _, done := w.cmd("UID MOVE 3 Processed"); !strings.HasPrefix(done, "OK") {
			t.Fatalf("UID MOVE: %q", done)
		}
		if n, _, _ := srv.IMAPStatus(DemoSharedMailbox, "Processed"); n != 1 {
			t.Fatalf("Processed has %d messages after MOVE", n)
		}
	})

	t.Run("IDLE sees new mail", func(t *testing.T) {
		w := dialIMAP(t, srv)
		if _, done := w.cmd("AUTHENTICATE XOAUTH2 %s", xoauth2(DemoInvoicesMailbox, exo)); !strings.HasPrefix(done, "OK") {
			t.Fatalf("AUTHENTICATE: %q", done)
		}
		if _, done := w.cmd("SELECT INBOX"); !strings.HasPrefix(done, "OK") {
			t.Fatalf("SELECT: %q", done)
		}
		w.send("I1 IDLE")
		if l := w.line(); !strings.HasPrefix(l, "+") {
			t.Fatalf("IDLE: %q", l)
		}
		if _, err := srv.IMAPDeliver(DemoInvoicesMailbox, []byte("Subject: new\r\n\r\nx\r\n")); err != nil {
			t.Fatal(err)
		}
		if l := w.line(); l != "* 1 EXISTS" {
			t.Fatalf("during IDLE: %q, want * 1 EXISTS", l)
		}
		w.send("DONE")
		if l := w.line(); !strings.HasPrefix(l, "I1 OK") {
			t.Fatalf("after DONE: %q", l)
		}
	})

	t.Run("without SASL-IR: empty continuation, then the response", func(t *testing.T) {
		w := dialIMAP(t, srv)
		w.n++
		w.send(fmt.Sprintf("A%02d AUTHENTICATE XOAUTH2", w.n))
		if l := w.line(); strings.TrimSpace(l) != "+" {
			t.Fatalf("continuation %q, want an empty one", l)
		}
		w.send(xoauth2(DemoSharedMailbox, exo))
		if l := w.line(); !strings.HasPrefix(l, fmt.Sprintf("A%02d OK", w.n)) {
			t.Fatalf("completion %q", l)
		}
	})

	t.Run("authenticated but not connected, on demand", func(t *testing.T) {
		srv.IMAPNotConnected(1)
		w := dialIMAP(t, srv)
		if _, done := w.cmd("AUTHENTICATE XOAUTH2 %s", xoauth2(DemoSharedMailbox, exo)); !strings.HasPrefix(done, "OK") {
			t.Fatalf("AUTHENTICATE: %q", done)
		}
		if _, done := w.cmd("SELECT INBOX"); done != "BAD User is authenticated but not connected." {
			t.Fatalf("SELECT: %q", done)
		}
		if l := w.line(); l != "* BYE Connection closed." {
			t.Fatalf("then %q, want the BYE", l)
		}
		// only once: the next login works
		w2 := dialIMAP(t, srv)
		w2.cmd("AUTHENTICATE XOAUTH2 %s", xoauth2(DemoSharedMailbox, exo))
		if _, done := w2.cmd("SELECT INBOX"); !strings.HasPrefix(done, "OK") {
			t.Fatalf("SELECT after the quirk: %q", done)
		}
	})

	t.Run("delegated token: the user's own mailbox", func(t *testing.T) {
		user := ropc(t, srv).str("access_token")
		w := dialIMAP(t, srv)
		if _, done := w.cmd("AUTHENTICATE XOAUTH2 %s", xoauth2(DemoUser, user)); !strings.HasPrefix(done, "OK") {
			t.Fatalf("own mailbox: %q", done)
		}
		w2 := dialIMAP(t, srv)
		if _, done := w2.cmd("AUTHENTICATE XOAUTH2 %s", xoauth2(DemoRestrictedMailbox, user)); done != "NO AUTHENTICATE failed." {
			t.Fatalf("someone else's mailbox: %q", done)
		}
	})
}

func FuzzParseXOAUTH2(f *testing.F) {
	f.Add([]byte("user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01"))
	f.Add([]byte("user=\x01auth=Bearer \x01\x01"))
	f.Add([]byte("auth=MAC x\x01user=a\x01\x01"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, msg []byte) {
		user, token, err := parseXOAUTH2(msg)
		if err == nil && (user == "" || token == "") {
			t.Fatalf("accepted %q with an empty user or token", msg)
		}
	})
}
