package proxy

import (
	"fmt"
	"slices"
	"strings"
	"testing"

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
	addr := f.listen(t, IMAP, "starttls", "imap") // STARTTLS upstream too
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
