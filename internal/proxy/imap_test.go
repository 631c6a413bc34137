package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/emulator"
)

// quote writes s as an IMAP quoted string.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// TestIMAPLogins: every way a legacy client logs in reaches the real
// Dovecot with XOAUTH2, the tagged OK carries the server's capabilities,
// and the session is the server's (SELECT sees its messages). A wrong
// password, the first thing this fixture does, is refused without a token
// request.
func TestIMAPLogins(t *testing.T) {
	f := newFixture(t, false)
	if err := f.dv.Seed(emulator.DemoSharedMailbox, 3, 2000); err != nil {
		t.Fatal(err)
	}
	addr := f.listen(t, IMAP, "starttls", "imaps")

	// a wrong password: NO, and the token endpoint is not asked
	before := f.emu.TokenRequests()
	cv := dial(t, addr)
	greeting := cv.line()
	if !strings.Contains(greeting, "AUTH=PLAIN") || strings.Contains(greeting, "LOGINDISABLED") || !strings.Contains(greeting, "STARTTLS") {
		t.Errorf("greeting %q", greeting)
	}
	cv.send("a1 LOGIN scanner wrong")
	if l := cv.line(); !strings.HasPrefix(l, "a1 NO [AUTHENTICATIONFAILED]") {
		t.Fatalf("wrong password: %q", l)
	}
	cv.send("a2 LOGIN nobody " + quote(scannerPassword))
	if l := cv.line(); !strings.HasPrefix(l, "a2 NO [AUTHENTICATIONFAILED]") {
		t.Fatalf("unknown user: %q", l)
	}
	if n := f.emu.TokenRequests(); n != before {
		t.Fatalf("a refused login asked the token endpoint %d times", n-before)
	}

	lit := func(s string) string { return fmt.Sprintf("{%d}", len(s)) }
	tests := []struct {
		name   string
		script func(cv *conv) string // returns the tag whose OK ends the login
	}{
		{"LOGIN quoted", func(cv *conv) string {
			cv.send("a LOGIN " + quote("scanner") + " " + quote(scannerPassword))
			return "a"
		}},
		{"LOGIN atoms", func(cv *conv) string {
			cv.send("b LOGIN fax " + faxPassword)
			return "b"
		}},
		{"LOGIN literals", func(cv *conv) string {
			cv.send("c LOGIN " + lit("scanner"))
			if l := cv.line(); !strings.HasPrefix(l, "+") {
				t.Fatalf("no continuation: %q", l)
			}
			cv.send("scanner " + lit(scannerPassword))
			if l := cv.line(); !strings.HasPrefix(l, "+") {
				t.Fatalf("no continuation: %q", l)
			}
			cv.send(scannerPassword)
			return "c"
		}},
		{"LOGIN LITERAL+", func(cv *conv) string {
			cv.send(fmt.Sprintf("d LOGIN {7+}\r\nscanner {%d+}\r\n%s", len(scannerPassword), scannerPassword))
			return "d"
		}},
		{"AUTHENTICATE PLAIN inline", func(cv *conv) string {
			cv.send("e AUTHENTICATE PLAIN " + plain("scanner", scannerPassword))
			return "e"
		}},
		{"AUTHENTICATE PLAIN continuation", func(cv *conv) string {
			cv.send("f AUTHENTICATE PLAIN")
			if l := cv.line(); !strings.HasPrefix(l, "+") {
				t.Fatalf("no continuation: %q", l)
			}
			cv.send(plain("fax", faxPassword))
			return "f"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cv := dial(t, addr)
			cv.t = t
			cv.line()
			tag := tt.script(cv)
			ok := cv.until(tag + " ")
			if !strings.HasPrefix(last(ok), tag+" OK") || !strings.Contains(last(ok), "IDLE") {
				t.Fatalf("login: %q (want the server's OK with its capabilities)", ok)
			}
			cv.send("s SELECT INBOX")
			sel := cv.until("s ")
			if !slices.Contains(sel, "* 3 EXISTS") || !strings.HasPrefix(last(sel), "s OK") {
				t.Fatalf("select: %q", sel)
			}
			cv.send("z LOGOUT")
			cv.until("z ")
		})
	}
}

// TestIMAPStartTLSAndRefusals: STARTTLS with the listener's certificate,
// then a login; an upstream refusal comes back as NO with the explanation;
// commands other than the login's are refused before it.
func TestIMAPStartTLSAndRefusals(t *testing.T) {
	f := newFixture(t, false)
	var logs syncBuffer
	addr := f.listen(t, IMAP, "starttls", "imap", func(o *Options) { // STARTTLS upstream too
		o.Log = slog.New(slog.NewTextHandler(&logs, nil))
	})
	cv := dial(t, addr)
	cv.line()
	cv.send("a SELECT INBOX")
	if l := cv.line(); !strings.HasPrefix(l, "a BAD") {
		t.Errorf("SELECT before login: %q", l)
	}
	cv.send("b STARTTLS")
	if l := cv.line(); !strings.HasPrefix(l, "b OK") {
		t.Fatalf("STARTTLS: %q", l)
	}
	cv.starttls(f.roots)
	cv.send("c CAPABILITY")
	caps := cv.until("c ")
	if strings.Contains(caps[0], "STARTTLS") || !strings.Contains(caps[0], "AUTH=PLAIN") || strings.Contains(caps[0], "LOGINDISABLED") {
		t.Errorf("capabilities after STARTTLS: %q", caps)
	}
	cv.send("d LOGIN ceo ceopass")
	l := cv.line()
	if !strings.HasPrefix(l, "d NO [AUTHENTICATIONFAILED]") || !strings.Contains(l, "(explained)") {
		t.Fatalf("upstream refusal: %q", l)
	}
	cv.send("e LOGIN scanner " + quote(scannerPassword))
	if ok := cv.until("e "); !strings.HasPrefix(last(ok), "e OK") {
		t.Fatalf("login after STARTTLS: %q", ok)
	}
	cv.send("f NOOP")
	cv.until("f OK")
	if out := logs.String(); !strings.Contains(out, `msg="proxy: upstream login failed"`) || !strings.Contains(out, `fix1="fix: grant the app `+emulator.DemoRestrictedMailbox) {
		t.Errorf("the refusal is not logged with its fix:\n%s", out)
	}
	want := []string{"ceo:upstream", "scanner:ok"}
	if got := f.rec.results(); !slices.Equal(got, want) {
		t.Errorf("recorded %v, want %v", got, want)
	}
}

// TestIMAPThrottle: after DefaultMaxFailures wrong passwords from one
// address, even the right one is refused for that account, not for
// another.
func TestIMAPThrottle(t *testing.T) {
	f := newFixture(t, false)
	addr := f.listen(t, IMAP, "none", "imaps")
	cv := dial(t, addr)
	cv.line()
	for i := range DefaultMaxFailures {
		cv.send(fmt.Sprintf("a%d LOGIN scanner wrong", i))
		if l := cv.line(); !strings.Contains(l, "AUTHENTICATIONFAILED") {
			t.Fatalf("attempt %d: %q", i, l)
		}
	}
	cv.send("b LOGIN scanner " + quote(scannerPassword))
	if l := cv.line(); !strings.HasPrefix(l, "b NO [UNAVAILABLE]") {
		t.Fatalf("throttled login: %q", l)
	}
	cv.send("c LOGIN fax " + faxPassword)
	if ok := cv.until("c "); !strings.HasPrefix(last(ok), "c OK") {
		t.Fatalf("another account: %q", ok)
	}
}

// TestIMAPSessionLimits: an account's sessions beyond MaxPerAccount are
// refused until one ends; a relayed session with no traffic for the idle
// timeout is closed.
func TestIMAPSessionLimits(t *testing.T) {
	f := newFixture(t, false)
	addr := f.listen(t, IMAP, "none", "imaps", func(o *Options) {
		o.MaxPerAccount = 1
		o.IdleTimeout = 300 * time.Millisecond
	})
	first := dial(t, addr)
	first.line()
	first.send("a LOGIN fax " + faxPassword)
	if ok := first.until("a "); !strings.HasPrefix(last(ok), "a OK") {
		t.Fatalf("first login: %q", ok)
	}
	second := dial(t, addr)
	second.line()
	second.send("b LOGIN fax " + faxPassword)
	if l := second.line(); !strings.HasPrefix(l, "b NO [UNAVAILABLE]") {
		t.Fatalf("a second session over the cap: %q", l)
	}
	// the first, left idle, is closed (generous wait: loaded machines)
	_ = first.c.SetReadDeadline(time.Now().Add(time.Minute))
	if _, err := first.r.ReadString('\n'); err == nil {
		t.Fatal("the idle session sent a line instead of closing")
	} else if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("the idle session was not closed")
	}
	// its slot is free again
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		third := dial(t, addr)
		third.line()
		third.send("c LOGIN fax " + faxPassword)
		l := last(third.until("c "))
		if strings.HasPrefix(l, "c OK") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the slot was not freed: %q", l)
		}
	}
}

// TestTraceRedactsCredentials: with Trace at debug level, the commands
// before login are logged, the password never.
func TestTraceRedactsCredentials(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h, _ := HashPassword("sekrit-pw")
	accts := testAccounts{"u": {h, &Account{Username: "u", Mailbox: "u@example.com", Bearer: nilBearer{}}}}
	for _, proto := range []string{IMAP, POP3} {
		srv, err := New(Options{Name: "trace", Protocol: proto, Security: "none", Accounts: accts, Log: log, Trace: true,
			Upstream: Upstream{Addr: "127.0.0.1:1", Security: "none"}})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { defer close(done); _ = srv.Serve(ctx, ln) }()
		cv := dial(t, ln.Addr().String())
		cv.line()
		if proto == IMAP {
			cv.send("a LOGIN u wrong-pw")
			cv.line()
			cv.send("b AUTHENTICATE PLAIN " + plain("u", "sekrit-pw"))
			cv.line()
		} else {
			cv.send("USER u")
			cv.line()
			cv.send("PASS sekrit-pw")
			cv.line()
			cv.send("AUTH PLAIN " + plain("u", "wrong-pw"))
			cv.line()
		}
		cancel()
		<-done
	}
	out := buf.String()
	for _, secret := range []string{"sekrit-pw", "wrong-pw", plain("u", "sekrit-pw"), "token-value"} {
		if strings.Contains(out, secret) {
			t.Errorf("the trace shows %q:\n%s", secret, out)
		}
	}
	for _, want := range []string{`line="a LOGIN ***"`, `line="PASS ***"`, `line="USER u"`, `line="AUTH ***"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the trace lacks %s:\n%s", want, out)
		}
	}
}

// nilBearer gives a token that no server takes.
type nilBearer struct{}

func (nilBearer) Token(context.Context) (string, error) { return "token-value", nil }
func (nilBearer) Invalidate()                           {}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
