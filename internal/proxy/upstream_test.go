package proxy

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/mailgate/mailgate/internal/sasl"
)

// fakeIMAP is a scripted upstream IMAP server without SASL-IR: it checks
// that the token comes after the continuation, and refuses it with an
// error challenge when refuse is set.
func fakeIMAP(t *testing.T, refuse bool) (addr string, got chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got = make(chan string, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				say := func(s string) { _, _ = c.Write([]byte(s + "\r\n")) }
				say("* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2] fake ready")
				line, _ := readLine(br)
				got <- line
				if !strings.HasSuffix(line, "AUTHENTICATE XOAUTH2") {
					say("M3 BAD want no initial response")
					return
				}
				say("+ ")
				resp, _ := readLine(br)
				raw, _ := base64.StdEncoding.DecodeString(resp)
				got <- string(raw)
				if refuse {
					say("+ " + base64.StdEncoding.EncodeToString([]byte(`{"status":"401","schemes":"bearer","scope":"https://outlook.office365.com/.default"}`)))
					empty, _ := readLine(br)
					got <- "answer:" + empty
					say("M3 NO [AUTHENTICATIONFAILED] AUTHENTICATE failed.")
					return
				}
				say("M3 OK [CAPABILITY IMAP4rev1 IDLE FAKE] Logged in")
				for {
					l, err := readLine(br)
					if err != nil {
						return
					}
					tag, _, _ := strings.Cut(l, " ")
					say("* FAKE " + l)
					say(tag + " OK done")
				}
			}()
		}
	}()
	return ln.Addr().String(), got
}

type fixedBearer struct {
	mu          sync.Mutex
	invalidated int
}

func (b *fixedBearer) Token(context.Context) (string, error) { return "tok-123", nil }
func (b *fixedBearer) Invalidate()                           { b.mu.Lock(); b.invalidated++; b.mu.Unlock() }

func (b *fixedBearer) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.invalidated
}

// TestIMAPUpstreamWithoutSASLIR: against a server without SASL-IR the
// token goes after the continuation; the server's capabilities come back
// in the tagged OK; then bytes are relayed. A refusal's error challenge
// is answered empty, kept, and the token invalidated.
func TestIMAPUpstreamWithoutSASLIR(t *testing.T) {
	for _, refuse := range []bool{false, true} {
		up, got := fakeIMAP(t, refuse)
		h, _ := HashPassword("pw")
		bearer := &fixedBearer{}
		rec := &recorder{}
		exCh := make(chan error, 1)
		srv, err := New(Options{Name: "fake", Protocol: IMAP, Security: "none", Recorder: rec,
			Accounts: testAccounts{"u": {h, &Account{Username: "u", Mailbox: "u@example.com", Bearer: bearer}}},
			Upstream: Upstream{Addr: up, Security: "none"},
			Explain:  func(_ *Account, err error) []string { exCh <- err; return []string{"fix: grant it"} }})
		if err != nil {
			t.Fatal(err)
		}
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { defer close(done); _ = srv.Serve(ctx, ln) }()
		cv := dial(t, ln.Addr().String())
		cv.line()
		cv.send("a1 LOGIN u pw")
		reply := cv.line()
		if cmd := <-got; cmd != "M3 AUTHENTICATE XOAUTH2" {
			t.Errorf("upstream command %q", cmd)
		}
		if tok := <-got; tok != "user=u@example.com\x01auth=Bearer tok-123\x01\x01" {
			t.Errorf("upstream XOAUTH2 response %q", tok)
		}
		if !refuse {
			if reply != "a1 OK [CAPABILITY IMAP4rev1 IDLE FAKE] Logged in" {
				t.Fatalf("login reply %q", reply)
			}
			cv.send("b2 SELECT INBOX")
			if l := cv.until("b2 "); len(l) != 2 || l[0] != "* FAKE b2 SELECT INBOX" {
				t.Errorf("relayed: %q", l)
			}
		} else {
			if !strings.HasPrefix(reply, "a1 NO [AUTHENTICATIONFAILED] fix: grant it") {
				t.Errorf("refusal %q", reply)
			}
			if a := <-got; a != "answer:" {
				t.Errorf("the error challenge was answered %q", a)
			}
			var ae *sasl.AuthError
			var ue *UpstreamError
			explained := <-exCh
			if !errors.As(explained, &ue) || ue.Step != "auth" || ue.Protocol != IMAP || !errors.As(explained, &ae) || ae.Status != "401" {
				t.Errorf("explained %v", explained)
			}
			if n := bearer.count(); n != 1 {
				t.Errorf("the refused token was invalidated %d times", n)
			}
			if r := rec.results(); len(r) != 1 || r[0] != "u:upstream" {
				t.Errorf("recorded %v", r)
			}
		}
		cancel()
		<-done
	}
}

// TestPOP3UpstreamRefusal: POP3 upstream gets AUTH XOAUTH2 with the token
// after the +; a refusal's error challenge is answered empty and the
// client gets -ERR with the explanation.
func TestPOP3UpstreamRefusal(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 10)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		say := func(s string) { _, _ = c.Write([]byte(s + "\r\n")) }
		say("+OK fake POP3")
		for _, reply := range []string{"+ ", "+ " + base64.StdEncoding.EncodeToString([]byte(`{"status":"401"}`)), "-ERR [AUTH] Authentication failed."} {
			l, _ := readLine(br)
			got <- l
			say(reply)
		}
	}()
	h, _ := HashPassword("pw")
	bearer := &fixedBearer{}
	srv, err := New(Options{Name: "fake", Protocol: POP3, Security: "none",
		Accounts: testAccounts{"u": {h, &Account{Username: "u", Mailbox: "u@example.com", Bearer: bearer}}},
		Upstream: Upstream{Addr: ln.Addr().String(), Security: "none"},
		Explain:  func(_ *Account, err error) []string { return []string{"fix: POP.AccessAsApp"} }})
	if err != nil {
		t.Fatal(err)
	}
	pl, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ctx, pl) }()
	defer func() { cancel(); <-done }()
	cv := dial(t, pl.Addr().String())
	cv.line()
	cv.send("AUTH PLAIN " + plain("u", "pw"))
	if l := cv.line(); l != "-ERR [AUTH] fix: POP.AccessAsApp" {
		t.Errorf("client got %q", l)
	}
	want := []string{"AUTH XOAUTH2", XOAuth2("u@example.com", "tok-123"), ""}
	for i, w := range want {
		if l := <-got; l != w {
			t.Errorf("upstream line %d: %q, want %q", i, l, w)
		}
	}
	if n := bearer.count(); n != 1 {
		t.Errorf("invalidated %d times", n)
	}
}
