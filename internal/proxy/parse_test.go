package proxy

import (
	"bufio"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestReadIMAPCommand(t *testing.T) {
	tests := []struct {
		name, in   string
		tag, cmd   string
		args       []string
		conts      int
		wantSyntax bool
	}{
		{"atoms", "a1 login scanner secret\r\n", "a1", "LOGIN", []string{"scanner", "secret"}, 0, false},
		{"quoted", `a2 LOGIN "scan ner" "p\"w\\d"` + "\r\n", "a2", "LOGIN", []string{"scan ner", `p"w\d`}, 0, false},
		{"literal", "a3 LOGIN {4}\r\nscan {2}\r\npw\r\n", "a3", "LOGIN", []string{"scan", "pw"}, 2, false},
		{"literal+", "a4 LOGIN {4+}\r\nscan {2+}\r\npw\r\n", "a4", "LOGIN", []string{"scan", "pw"}, 0, false},
		{"empty quoted", `a5 LOGIN "" ""` + "\r\n", "a5", "LOGIN", []string{"", ""}, 0, false},
		{"LF only", "a6 CAPABILITY\n", "a6", "CAPABILITY", nil, 0, false},
		{"authenticate", "a7 AUTHENTICATE PLAIN AHNjYW4AcHc=\r\n", "a7", "AUTHENTICATE", []string{"PLAIN", "AHNjYW4AcHc="}, 0, false},
		{"no command", "a8\r\n", "a8", "", nil, 0, true},
		{"unterminated quote", `a9 LOGIN "x` + "\r\n", "a9", "LOGIN", nil, 0, true},
		{"bad escape", `b1 LOGIN "\x"` + "\r\n", "b1", "LOGIN", nil, 0, true},
		{"literal not last", "b2 LOGIN {3} x\r\n", "b2", "LOGIN", nil, 0, true},
		{"bad tag", "+ LOGIN a b\r\n", "", "", nil, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conts := 0
			cmd, err := readIMAPCommand(bufio.NewReader(strings.NewReader(tt.in)), func() error { conts++; return nil })
			var se *syntaxError
			if tt.wantSyntax {
				if !errors.As(err, &se) {
					t.Fatalf("err %v, want a syntax error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cmd.tag != tt.tag || cmd.name != tt.cmd || !slices.Equal(cmd.args, tt.args) || conts != tt.conts {
				t.Errorf("got %q %q %q (%d continuations), want %q %q %q (%d)", cmd.tag, cmd.name, cmd.args, conts, tt.tag, tt.cmd, tt.args, tt.conts)
			}
		})
	}
	// a literal over the limit is refused before it is read
	_, err := readIMAPCommand(bufio.NewReader(strings.NewReader("a LOGIN {99999999}\r\n")), func() error { t.Error("continuation sent"); return nil })
	if !errors.Is(err, errLineTooLong) {
		t.Errorf("huge literal: %v", err)
	}
}

func TestDecodePlain(t *testing.T) {
	tests := []struct {
		in, user, pass string
		ok             bool
	}{
		{plain("scanner", "pw"), "scanner", "pw", true},
		{"c2Nhbm5lcgBzY2FubmVyAHB3", "scanner", "pw", true}, // authzid = authcid
		{"b3RoZXIAc2Nhbm5lcgBwdw==", "", "", false},         // acting as another
		{"AHB3", "", "", false},                             // one NUL
		{"!!", "", "", false},
		{"=", "", "", false},
	}
	for _, tt := range tests {
		u, p, err := decodePlain(tt.in)
		if (err == nil) != tt.ok || u != tt.user || p != tt.pass {
			t.Errorf("decodePlain(%q) = %q %q %v", tt.in, u, p, err)
		}
	}
}

func TestRedactLine(t *testing.T) {
	for in, want := range map[string]string{
		"a LOGIN scanner secret":    "a LOGIN ***",
		"PASS secret":               "PASS ***",
		"AUTH PLAIN AHNjYW4AcHc=":   "AUTH ***",
		"a1 AUTHENTICATE PLAIN xyz": "a1 AUTHENTICATE ***",
		"USER scanner":              "USER scanner",
		"a SELECT INBOX":            "a SELECT INBOX",
	} {
		if got := redactLine(in, false); got != want {
			t.Errorf("redactLine(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAllowed(t *testing.T) {
	tests := []struct {
		addr string
		list []string
		ok   bool
	}{
		{"scanner@contoso.com", nil, true},
		{"Scanner@Contoso.com", nil, true},
		{"boss@contoso.com", nil, false},
		{"a@reports.contoso.com", []string{"@reports.contoso.com"}, true},
		{"a@evil.com", []string{"@reports.contoso.com"}, false},
		{"a@x.reports.contoso.com", []string{"@reports.contoso.com"}, false},
	}
	for _, tt := range tests {
		if got := allowed(tt.addr, "scanner@contoso.com", tt.list); got != tt.ok {
			t.Errorf("allowed(%q, %v) = %v", tt.addr, tt.list, got)
		}
	}
}

func TestCheckFrom(t *testing.T) {
	a := &Account{Username: "scanner", Mailbox: "scanner@contoso.com"}
	for raw, ok := range map[string]bool{
		"From: Scanner <scanner@contoso.com>\r\n\r\nx":                      true,
		"From: boss@contoso.com\r\n\r\nx":                                   false,
		"From: scanner@contoso.com, boss@contoso.com\r\n\r\nx":              false,
		"To: a@b.example\r\n\r\nx":                                          false,
		"Subject: no header end":                                            false,
		"From: =?utf-8?q?Scanner?= <scanner@contoso.com>\r\nTo: x\r\n\r\nx": true,
	} {
		if err := checkFrom([]byte(raw), a); (err == nil) != ok {
			t.Errorf("checkFrom(%q) = %v", raw, err)
		}
	}
}

func TestThrottle(t *testing.T) {
	now := time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC)
	th := NewThrottle(3, 10*time.Minute)
	th.now = func() time.Time { return now }
	for range 3 {
		if !th.Allow("scanner", "10.0.0.1") {
			t.Fatal("refused before the limit")
		}
		th.Failed("scanner", "10.0.0.1")
	}
	if th.Allow("scanner", "10.0.0.1") {
		t.Error("allowed after 3 failures")
	}
	if !th.Allow("scanner", "10.0.0.2") || !th.Allow("fax", "10.0.0.1") {
		t.Error("another address or account is throttled too")
	}
	now = now.Add(11 * time.Minute)
	if !th.Allow("scanner", "10.0.0.1") {
		t.Error("still refused after the window")
	}
	th.Failed("scanner", "10.0.0.1")
	th.Succeeded("scanner", "10.0.0.1")
	if _, ok := th.fails[[2]string{"scanner", "10.0.0.1"}]; ok {
		t.Error("a success keeps the failures")
	}
}

func TestPassword(t *testing.T) {
	h, err := HashPassword(scannerPassword)
	if err != nil {
		t.Fatal(err)
	}
	if !IsHash(h) || IsHash(scannerPassword) {
		t.Error("IsHash")
	}
	if !CheckPassword(h, scannerPassword) || CheckPassword(h, "wrong") || CheckPassword("", "") {
		t.Error("CheckPassword")
	}
	if _, err := HashPassword(strings.Repeat("x", MaxPasswordLen+1)); err == nil {
		t.Error("a password over 72 bytes was hashed")
	}
}
