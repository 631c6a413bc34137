package proxy

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	gosasl "github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/mailgate/mailgate/internal/dovecot"
	"github.com/mailgate/mailgate/internal/emulator"
)

// TestPOP3Logins: CAPA from the proxy, then USER/PASS, AUTH PLAIN inline
// and after the continuation (over STLS), each reaching Dovecot's POP3
// with XOAUTH2; RETR returns the seeded message byte for byte.
func TestPOP3Logins(t *testing.T) {
	f := newFixture(t, false)
	if err := f.dv.Seed(emulator.DemoSharedMailbox, 2, 3000); err != nil {
		t.Fatal(err)
	}
	addr := f.listen(t, POP3, "starttls", "pop3s")
	tests := []struct {
		name  string
		stls  bool
		login func(cv *conv)
	}{
		{"USER PASS", false, func(cv *conv) {
			cv.send("USER scanner")
			if l := cv.line(); !strings.HasPrefix(l, "+OK") {
				t.Fatalf("USER: %q", l)
			}
			cv.send("PASS " + scannerPassword)
		}},
		{"AUTH PLAIN inline", false, func(cv *conv) { cv.send("AUTH PLAIN " + plain("fax", faxPassword)) }},
		{"AUTH PLAIN after STLS", true, func(cv *conv) {
			cv.send("AUTH PLAIN")
			if l := cv.line(); !strings.HasPrefix(l, "+") {
				t.Fatalf("no continuation: %q", l)
			}
			cv.send(plain("scanner", scannerPassword))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cv := dial(t, addr)
			cv.t = t
			cv.line()
			cv.send("CAPA")
			capa := strings.Join(cv.until("."), "\n")
			if !strings.Contains(capa, "USER") || !strings.Contains(capa, "SASL PLAIN") || !strings.Contains(capa, "STLS") {
				t.Errorf("CAPA: %q", capa)
			}
			if tt.stls {
				cv.send("STLS")
				if l := cv.line(); !strings.HasPrefix(l, "+OK") {
					t.Fatalf("STLS: %q", l)
				}
				cv.starttls(f.roots)
			}
			tt.login(cv)
			if l := cv.line(); !strings.HasPrefix(l, "+OK") {
				t.Fatalf("login: %q", l)
			}
			cv.send("STAT")
			if l := cv.line(); !strings.HasPrefix(l, "+OK 2 ") {
				t.Fatalf("STAT: %q", l)
			}
			cv.send("RETR 1")
			lines := cv.until(".")
			got := strings.Join(lines[1:len(lines)-1], "\r\n") + "\r\n"
			want := string(dovecot.SeedBody(emulator.DemoSharedMailbox, 1, 3000))
			want2 := string(dovecot.SeedBody(emulator.DemoSharedMailbox, 2, 3000))
			if got != want && got != want2 {
				t.Fatalf("RETR 1 is not a seeded message: %q", got[:min(len(got), 200)])
			}
			cv.send("QUIT")
			cv.line()
		})
	}
	cv := dial(t, addr)
	cv.line()
	cv.send("USER scanner")
	cv.line()
	cv.send("PASS wrong")
	if l := cv.line(); !strings.HasPrefix(l, "-ERR [AUTH]") {
		t.Errorf("wrong password: %q", l)
	}
}

// sendThrough submits one message through the SMTP listener with
// authentication auth (nil: none).
func sendThrough(t *testing.T, f *fixture, addr string, auth gosasl.Client, tls bool, from string, to []string, msg []byte) error {
	t.Helper()
	var c *gosmtp.Client
	var err error
	if tls {
		c, err = gosmtp.DialStartTLS(addr, f.certClient())
	} else {
		c, err = gosmtp.Dial(addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if auth != nil {
		if err := c.Auth(auth); err != nil {
			return err
		}
	}
	if err := c.SendMail(from, to, bytes.NewReader(msg)); err != nil {
		return err
	}
	return c.Quit()
}

// TestSMTPSubmission: AUTH PLAIN and AUTH LOGIN (over STARTTLS with the
// listener's certificate) submit through Dovecot's submission service
// with XOAUTH2 and the messages arrive byte for byte; a From or MAIL FROM
// outside allowed_from is refused with 550 5.7.1 and never sent; no AUTH,
// no MAIL FROM.
func TestSMTPSubmission(t *testing.T) {
	f := newFixture(t, true)
	addr := f.listen(t, SMTP, "starttls", "submission")
	to := emulator.DemoSharedMailbox
	msg := func(from, subject string) []byte {
		return []byte("From: " + from + "\r\nTo: " + to + "\r\nSubject: " + subject + "\r\nMessage-ID: <" + subject + "@proxy.test>\r\n\r\nscanned page\r\n")
	}
	sender := emulator.DemoSenderMailbox
	ok1, ok2 := msg(sender, "plain"), msg(sender, "login")
	if err := sendThrough(t, f, addr, gosasl.NewPlainClient("", "sender", "sendpass"), false, sender, []string{to}, ok1); err != nil {
		t.Fatalf("AUTH PLAIN: %v\n%s", err, f.dv.Log())
	}
	if err := sendThrough(t, f, addr, gosasl.NewLoginClient("sender", "sendpass"), true, sender, []string{to}, ok2); err != nil {
		t.Fatalf("AUTH LOGIN over STARTTLS: %v", err)
	}
	var se *gosmtp.SMTPError
	err := sendThrough(t, f, addr, gosasl.NewPlainClient("", "sender", "sendpass"), false, "boss@contoso.example", []string{to}, msg("boss@contoso.example", "envelope"))
	if !errors.As(err, &se) || se.Code != 550 || se.EnhancedCode != (gosmtp.EnhancedCode{5, 7, 1}) {
		t.Errorf("MAIL FROM outside allowed_from: %v", err)
	}
	err = sendThrough(t, f, addr, gosasl.NewPlainClient("", "sender", "sendpass"), false, sender, []string{to}, msg("boss@contoso.example", "header"))
	if !errors.As(err, &se) || se.Code != 550 || se.EnhancedCode != (gosmtp.EnhancedCode{5, 7, 1}) || !strings.Contains(se.Message, "boss@contoso.example") {
		t.Errorf("From header outside allowed_from: %v", err)
	}
	err = sendThrough(t, f, addr, nil, false, sender, []string{to}, ok1)
	if !errors.As(err, &se) || se.Code != 530 {
		t.Errorf("no AUTH: %v", err)
	}
	err = sendThrough(t, f, addr, gosasl.NewPlainClient("", "sender", "wrong"), false, sender, []string{to}, ok1)
	if !errors.As(err, &se) || se.Code != 535 {
		t.Errorf("wrong password: %v", err)
	}
	// the server refuses the mailbox's token: its code, mailgate's explanation
	err = sendThrough(t, f, addr, gosasl.NewPlainClient("", "ceo", "ceopass"), false, emulator.DemoRestrictedMailbox, []string{to}, ok1)
	if !errors.As(err, &se) || se.Code != 535 || !strings.Contains(se.Message, "(explained)") {
		t.Errorf("upstream refusal: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, _ := f.dv.Messages(to, "")
		if len(got) >= 2 {
			var seen int
			for _, b := range got {
				for _, want := range [][]byte{ok1, ok2} {
					// Dovecot's maildir keeps LF line ends
					if bytes.HasSuffix(b, bytes.ReplaceAll(want, []byte("\r\n"), []byte("\n"))) {
						seen++
					}
				}
				if bytes.Contains(b, []byte("boss@contoso.example")) {
					t.Errorf("a refused message arrived:\n%s", b)
				}
			}
			if seen != 2 || len(got) != 2 {
				t.Fatalf("%d messages arrived, %d of them byte for byte the ones sent", len(got), seen)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d messages arrived\n%s", len(got), f.dv.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fakePacer lets the first turn through and refuses the next ones with a
// wait of retry; it keeps the outcomes done was called with.
type fakePacer struct {
	mu       sync.Mutex
	turns    int
	outcomes []error
	retry    time.Duration
	upstream string
}

type pacedErr struct{ wait time.Duration }

func (e *pacedErr) Error() string          { return "paced" }
func (e *pacedErr) RetryIn() time.Duration { return e.wait }

func (p *fakePacer) Turn(_ context.Context, _ *Account, upstream string, patience time.Duration) (func(error), error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.turns++
	p.upstream = upstream
	if p.turns > 1 && p.retry > patience {
		return nil, &pacedErr{p.retry}
	}
	return func(err error) {
		p.mu.Lock()
		p.outcomes = append(p.outcomes, err)
		p.mu.Unlock()
	}, nil
}

// TestSMTPPaced: each message takes a turn of the Pacer for the
// listener's upstream and reports the server's answer; a turn further
// away than the client's patience is answered 451 4.7.0 with the wait in
// seconds (a retry, never a refusal) and the message is not sent.
func TestSMTPPaced(t *testing.T) {
	f := newFixture(t, true)
	pacer := &fakePacer{retry: 90*time.Second + 300*time.Millisecond}
	addr := f.listen(t, SMTP, "none", "submission", func(o *Options) { o.Pacer = pacer })
	to := emulator.DemoSharedMailbox
	sender := emulator.DemoSenderMailbox
	msg := func(subject string) []byte {
		return []byte("From: " + sender + "\r\nTo: " + to + "\r\nSubject: " + subject + "\r\n\r\npaced\r\n")
	}
	if err := sendThrough(t, f, addr, gosasl.NewPlainClient("", "sender", "sendpass"), false, sender, []string{to}, msg("first")); err != nil {
		t.Fatalf("first message: %v\n%s", err, f.dv.Log())
	}
	err := sendThrough(t, f, addr, gosasl.NewPlainClient("", "sender", "sendpass"), false, sender, []string{to}, msg("second"))
	var se *gosmtp.SMTPError
	if !errors.As(err, &se) || se.Code != 451 || se.EnhancedCode != (gosmtp.EnhancedCode{4, 7, 0}) || se.Message != "rate limit, try again in 91 s" {
		t.Fatalf("paced message: %v, want 451 4.7.0 rate limit, try again in 91 s", err)
	}
	pacer.mu.Lock()
	outcomes, up := pacer.outcomes, pacer.upstream
	pacer.mu.Unlock()
	if len(outcomes) != 1 || outcomes[0] != nil {
		t.Errorf("outcomes reported to the pacer: %v, want one nil (accepted)", outcomes)
	}
	if up != f.dv.Addr("submission") {
		t.Errorf("pacer asked for upstream %q, want %q", up, f.dv.Addr("submission"))
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, _ := f.dv.Messages(to, "")
		if len(got) >= 1 {
			for _, b := range got {
				if bytes.Contains(b, []byte("Subject: second")) {
					t.Error("the paced message reached the server")
				}
			}
			if len(got) != 1 {
				t.Errorf("%d messages arrived, want 1", len(got))
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the first message did not arrive\n%s", f.dv.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
