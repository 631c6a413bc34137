package proxy

import (
	"bufio"
	"strings"
	"testing"
)

// FuzzIMAPCommand: the pre-login IMAP parser (LOGIN, AUTHENTICATE, their
// literals) never panics, never reads a literal over the limit, and gives
// back what a quoted argument quoted.
func FuzzIMAPCommand(f *testing.F) {
	for _, s := range []string{
		"a1 LOGIN scanner secret\r\n", `a2 LOGIN "scan ner" "p\"w\\d"` + "\r\n", "a3 LOGIN {4}\r\nscan {2}\r\npw\r\n",
		"a4 LOGIN {4+}\r\nscan {2+}\r\npw\r\n", "a7 AUTHENTICATE PLAIN AHNjYW4AcHc=\r\n", "a {99999999}\r\n", "* OK\r\n", "a LOGIN {3}x\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		cmd, err := readIMAPCommand(bufio.NewReader(strings.NewReader(in)), func() error { return nil })
		if err != nil {
			return
		}
		total := 0
		for _, a := range cmd.args {
			total += len(a)
		}
		if total > maxLine {
			t.Fatalf("arguments of %d bytes", total)
		}
		if cmd.name != strings.ToUpper(cmd.name) || cmd.tag == "" {
			t.Fatalf("tag %q name %q", cmd.tag, cmd.name)
		}
	})
}

// FuzzDecodePlain: a SASL PLAIN response never panics and never yields an
// empty user name.
func FuzzDecodePlain(f *testing.F) {
	for _, s := range []string{"AHNjYW5uZXIAcHc=", "c2Nhbm5lcgBzY2FubmVyAHB3", "=", "", "!!"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		u, _, err := decodePlain(in)
		if err == nil && u == "" {
			t.Fatal("empty user name accepted")
		}
	})
}

// FuzzCommandLine: POP3/SMTP command lines split and redact without a
// panic, and a redacted PASS or AUTH line shows no argument.
func FuzzCommandLine(f *testing.F) {
	for _, s := range []string{"USER scanner", "PASS secret", "AUTH PLAIN AHNjYW4AcHc=", "STLS", "a LOGIN x y", "", " "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		cmd, rest := splitPOP3(in)
		if cmd != "PASS" && cmd != "AUTH" {
			cmd, _ = splitPOP3(rest)
		}
		if cmd != "PASS" && cmd != "AUTH" && cmd != "LOGIN" && cmd != "AUTHENTICATE" {
			return
		}
		// what is shown is the line up to and including the verb, then ***
		got := redactLine(in, false)
		head, ok := strings.CutSuffix(got, " ***")
		if got != "***" && (!ok || !strings.HasPrefix(in, head) || !strings.EqualFold(head[len(head)-len(cmd):], cmd)) {
			t.Fatalf("redactLine(%q) = %q shows more than the line up to %s", in, got, cmd)
		}
	})
}

// TestRedactLineNonASCII: text before the verb whose upper case is longer
// (ɐ is 2 bytes, Ɐ 3) does not move the cut into the credentials.
func TestRedactLineNonASCII(t *testing.T) {
	for _, in := range []string{
		"ɐɐɐɐɐɐɐɐɐɐɐɐɐɐɐɐɐɐɐɐ LOGIN scanner hunter2",
		"ɐɐɐɐɐɐɐɐɐɐɐɐɐɐɐɐɐɐɐɐ AUTHENTICATE PLAIN AHNjYW5uZXIAaHVudGVyMg==",
		"PaSS hunter2",
	} {
		got := redactLine(in, false)
		if strings.Contains(got, "hunter2") || strings.Contains(got, "scanner") || strings.Contains(got, "AHNj") || !strings.HasSuffix(got, " ***") {
			t.Errorf("redactLine(%q) = %q", in, got)
		}
	}
}
