package smtp

import (
	"bufio"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// scriptedServer answers nothing of a transaction until it has read MAIL,
// every RCPT and DATA: only a client that pipelines gets through (one that
// waits for MAIL's reply first gets a 421 after a few seconds). Recipients
// starting with "nobody" are refused with 550 5.1.1; got receives each
// message's envelope and content.
func scriptedServer(t *testing.T, got chan<- string) string {
	t.Helper()
	return scriptedServerLines(t, got, nil)
}

// scriptedServerLines is scriptedServer that also hands each line of
// content to lines as soon as it is read (nil: not).
func scriptedServerLines(t *testing.T, got, lines chan<- string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		r, w := bufio.NewReader(conn), bufio.NewWriter(conn)
		say := func(s string) { w.WriteString(s + "\r\n"); w.Flush() }
		say("220 scripted ESMTP")
		for {
			_ = conn.SetReadDeadline(time.Time{})
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimSpace(line)
			switch {
			case strings.HasPrefix(line, "EHLO"):
				say("250-scripted\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES")
			case strings.HasPrefix(line, "QUIT"):
				say("221 2.0.0 bye")
				return
			case strings.HasPrefix(line, "RSET"), strings.HasPrefix(line, "NOOP"):
				say("250 2.0.0 ok")
			case strings.HasPrefix(line, "MAIL FROM:"):
				env := []string{line}
				_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
				for !strings.HasPrefix(env[len(env)-1], "DATA") {
					l, err := r.ReadString('\n')
					if err != nil {
						say("421 4.4.2 the client did not pipeline")
						return
					}
					env = append(env, strings.TrimSpace(l))
				}
				_ = conn.SetReadDeadline(time.Time{})
				w.WriteString("250 2.1.0 sender ok\r\n")
				ok := 0
				for _, l := range env[1 : len(env)-1] {
					if strings.HasPrefix(l, "RCPT TO:<nobody") {
						w.WriteString("550 5.1.1 " + strings.TrimPrefix(l, "RCPT TO:") + " unknown\r\n")
					} else {
						w.WriteString("250 2.1.5 ok\r\n")
						ok++
					}
				}
				if ok == 0 {
					say("554 5.5.1 no valid recipients")
					continue
				}
				say("354 go ahead")
				var body strings.Builder
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if l == ".\r\n" {
						break
					}
					if lines != nil {
						lines <- l
					}
					body.WriteString(l)
				}
				got <- strings.Join(env, "|") + "\n" + body.String()
				say("250 2.0.0 queued")
			default:
				say("500 5.5.2 what")
			}
		}
	}()
	return ln.Addr().String()
}

// TestPipelinedSendEach: against a server that offers PIPELINING and
// answers only once the whole envelope arrived, SendEach sends MAIL, the
// RCPTs and DATA at once, keeps each recipient's own reply (the refused
// one with its enhanced code), dot-stuffs the content, refuses a message
// whose recipients were all refused, and the session goes on.
func TestPipelinedSendEach(t *testing.T) {
	got := make(chan string, 10)
	addr := scriptedServer(t, got)
	c, err := Dial(t.Context(), addr, &Options{Security: "none"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.Pipelining() {
		t.Fatal("PIPELINING offered but not used")
	}
	refused, err := c.SendEach("a@example.com", []string{"b@example.com", "nobody@example.com", "c@example.com"},
		strings.NewReader("Subject: x\r\n\r\n.leading dot\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(refused) != 1 || refused[0].Rcpt != "nobody@example.com" || refused[0].Err.Code != 550 || refused[0].Err.Enhanced != "5.1.1" {
		t.Fatalf("refused %+v", refused)
	}
	want := "MAIL FROM:<a@example.com>|RCPT TO:<b@example.com>|RCPT TO:<nobody@example.com>|RCPT TO:<c@example.com>|DATA\nSubject: x\r\n\r\n..leading dot\r\n"
	if m := <-got; m != want {
		t.Errorf("server got %q, want %q", m, want)
	}
	refused, err = c.SendEach("a@example.com", []string{"nobody1@example.com", "nobody2@example.com"}, strings.NewReader("Subject: y\r\n\r\ny\r\n"))
	var se *Error
	if len(refused) != 2 || !errors.As(err, &se) || se.Code != 550 {
		t.Fatalf("all refused: %+v, %v", refused, err)
	}
	if _, err := c.SendEach("a@example.com", []string{"d@example.com"}, strings.NewReader("Subject: z\r\n\r\nz\r\n")); err != nil {
		t.Fatalf("the session after a refused message: %v", err)
	}
	if m := <-got; !strings.Contains(m, "RCPT TO:<d@example.com>") {
		t.Errorf("third message: %q", m)
	}
	if err := c.Quit(); err != nil {
		t.Errorf("quit: %v", err)
	}
}

// TestSendEachAfter: with PIPELINING, the envelope and the whole content
// (dot-stuffed) reach the server while ready is open, and the final dot,
// which makes the server take the message, only once it is closed; a nil
// ready sends at once.
func TestSendEachAfter(t *testing.T) {
	got, lines := make(chan string, 10), make(chan string, 100)
	addr := scriptedServerLines(t, got, lines)
	c, err := Dial(t.Context(), addr, &Options{Security: "none"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ready := make(chan struct{})
	sent := make(chan error, 1)
	go func() {
		_, err := c.SendEachAfter("a@example.com", []string{"b@example.com"}, strings.NewReader("Subject: x\r\n\r\n.dot\r\nlast line"), ready)
		sent <- err
	}()
	for _, want := range []string{"Subject: x\r\n", "\r\n", "..dot\r\n", "last line\r\n"} {
		select {
		case l := <-lines:
			if l != want {
				t.Fatalf("server read %q, want %q", l, want)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("the content did not reach the server before ready (waiting for %q)", want)
		}
	}
	select {
	case m := <-got:
		t.Fatalf("the server took the message before ready: %q", m)
	case err := <-sent:
		t.Fatalf("SendEachAfter returned before ready: %v", err)
	default:
	}
	close(ready)
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	want := "MAIL FROM:<a@example.com>|RCPT TO:<b@example.com>|DATA\nSubject: x\r\n\r\n..dot\r\nlast line\r\n"
	if m := <-got; m != want {
		t.Errorf("server got %q, want %q", m, want)
	}
	if _, err := c.SendEachAfter("a@example.com", []string{"c@example.com"}, strings.NewReader("Subject: y\r\n\r\ny\r\n"), nil); err != nil {
		t.Fatalf("nil ready: %v", err)
	}
	if m := <-got; !strings.Contains(m, "RCPT TO:<c@example.com>") || !strings.HasSuffix(m, "\ny\r\n") {
		t.Errorf("second message: %q", m)
	}
}

// TestHoldBack: whatever the writes' sizes, holdBack passes on all but the
// last three bytes.
func TestHoldBack(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writes []string
	}{
		{"one write", []string{"abc\r\n.\r\n"}},
		{"byte by byte", []string{"a", "b", "\r", "\n", ".", "\r", "\n"}},
		{"short then long", []string{"ab", "c\r\n.\r\n"}},
		{"empty writes", []string{"", "abc\r\n.\r", "", "\n"}},
		{"only the dot", []string{".\r\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			h := &holdBack{w: &out}
			all := ""
			for _, w := range tc.writes {
				if n, err := h.Write([]byte(w)); err != nil || n != len(w) {
					t.Fatalf("write %q: %d, %v", w, n, err)
				}
				all += w
			}
			if out.String() != all[:len(all)-3] || string(h.tail) != all[len(all)-3:] {
				t.Errorf("passed %q, held %q; want %q and %q", out.String(), h.tail, all[:len(all)-3], all[len(all)-3:])
			}
		})
	}
}

// TestEnhanced: enhanced status codes are read from a reply's text, with
// the code repeated on continuation lines removed.
func TestEnhanced(t *testing.T) {
	tests := []struct {
		in   string
		code gosmtp.EnhancedCode
		msg  string
		ok   bool
	}{
		{"4.7.500 Server busy", gosmtp.EnhancedCode{4, 7, 500}, "Server busy", true},
		{"5.1.1 <x@y> unknown\n5.1.1 try again", gosmtp.EnhancedCode{5, 1, 1}, "<x@y> unknown\ntry again", true},
		{"2.0.0 ok", gosmtp.EnhancedCode{2, 0, 0}, "ok", true},
		{"Server busy", gosmtp.EnhancedCode{}, "", false},
		{"3.0.0 no", gosmtp.EnhancedCode{}, "", false},
		{"4.7.5000 too long", gosmtp.EnhancedCode{}, "", false},
		{"4.+7.5 sign", gosmtp.EnhancedCode{}, "", false},
		{"4..5 empty", gosmtp.EnhancedCode{}, "", false},
	}
	for _, tc := range tests {
		code, msg, ok := enhanced(tc.in)
		if ok != tc.ok || code != tc.code || msg != tc.msg {
			t.Errorf("enhanced(%q) = %v, %q, %v; want %v, %q, %v", tc.in, code, msg, ok, tc.code, tc.msg, tc.ok)
		}
	}
}

func FuzzEnhanced(f *testing.F) {
	for _, s := range []string{"4.7.500 Server busy", "5.1.1 <x@y> unknown\n5.1.1 again", "2.0.0 ok", "250 ok", "", " ", "5.5.5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		code, msg, ok := enhanced(s)
		if !ok {
			return
		}
		if code[0] != 2 && code[0] != 4 && code[0] != 5 || code[1] < 0 || code[1] > 999 || code[2] < 0 || code[2] > 999 {
			t.Fatalf("enhanced(%q) = %v", s, code)
		}
		if len(msg) >= len(s) {
			t.Fatalf("enhanced(%q): message %q not shorter", s, msg)
		}
	})
}

// TestHasExtension: an EHLO reply's keywords, case-insensitively, never
// the server's name on the first line.
func TestHasExtension(t *testing.T) {
	ehlo := "mx.example.com greets you\nPIPELINING\nsize 1000\nSTARTTLS"
	for ext, want := range map[string]bool{"PIPELINING": true, "SIZE": true, "starttls": true, "mx.example.com": false, "AUTH": false} {
		if got := hasExtension(ehlo, ext); got != want {
			t.Errorf("hasExtension(%q) = %v, want %v", ext, got, want)
		}
	}
}

func FuzzHasExtension(f *testing.F) {
	f.Add("mx.example.com\nPIPELINING\nSTARTTLS", "STARTTLS")
	f.Add("", "")
	f.Add("x\n\n \n", " ")
	f.Fuzz(func(t *testing.T, ehlo, ext string) {
		if hasExtension(ehlo, ext) && !strings.Contains(strings.ToUpper(ehlo), strings.ToUpper(ext)) && ext != "" {
			t.Fatalf("hasExtension(%q, %q) found what is not there", ehlo, ext)
		}
	})
}
