package pop3

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/mailgate/mailgate/internal/sasl"
)

// serve runs a scripted POP3 server on one end of a pipe: each client
// line must match the next expectation, then the given answer is sent.
func serve(t *testing.T, greeting string, script [][2]string) *Client {
	t.Helper()
	cli, srv := net.Pipe()
	go func() {
		defer srv.Close()
		w := bufio.NewWriter(srv)
		r := bufio.NewReader(srv)
		w.WriteString(greeting)
		w.Flush()
		for _, step := range script {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if got := strings.TrimRight(line, "\r\n"); got != step[0] && step[0] != "*" {
				w.WriteString("-ERR test: expected " + step[0] + ", got " + got + "\r\n")
				w.Flush()
				return
			}
			w.WriteString(step[1])
			w.Flush()
		}
	}()
	c := New(cli)
	if _, err := c.response("greeting"); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRetrExactBytes(t *testing.T) {
	long := strings.Repeat("x", 70000) // longer than the read buffer
	msg := "Subject: dots\r\n\r\n.leading dot\r\n..two\r\nbare\nlf\r\n" + long + "\r\nend\r\n"
	stuffed := strings.ReplaceAll("\r\n"+msg, "\r\n.", "\r\n..")[2:]
	c := serve(t, "+OK ready\r\n", [][2]string{
		{"RETR 1", "+OK " + "message follows\r\n" + stuffed + ".\r\n"},
		{"NOOP", "+OK\r\n"},
	})
	r, err := c.Retr(1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil || string(got) != msg {
		t.Fatalf("%v: got %d bytes, want %d", err, len(got), len(msg))
	}
	if err := c.Noop(); err != nil {
		t.Fatal(err)
	}
}

func TestUIDLAndErrors(t *testing.T) {
	c := serve(t, "+OK ready\r\n", [][2]string{
		{"UIDL", "+OK\r\n1 whqtswO00WBw418f9t5JxYwZ\r\n2 QhdPYR:00WBw1Ph7x7\r\n.\r\n"},
		{"LIST", "+OK 2 messages\r\n1 120\r\n2 200\r\n.\r\n"},
		{"DELE 9", "-ERR [SYS/TEMP] try later\r\n"},
		{"STAT", "-ERR [IN-USE] mailbox locked\r\n"},
	})
	ls, err := c.UIDL()
	if err != nil || len(ls) != 2 || ls[1].UIDL != "QhdPYR:00WBw1Ph7x7" || ls[1].Size != 200 {
		t.Fatalf("%+v %v", ls, err)
	}
	err = c.Dele(9)
	var pe *Error
	if !errors.As(err, &pe) || pe.Code != "SYS/TEMP" || !pe.Temporary() {
		t.Fatalf("%v", err)
	}
	_, _, err = c.Stat()
	if !errors.As(err, &pe) || pe.Code != "IN-USE" || !pe.Temporary() {
		t.Fatalf("%v", err)
	}
}

func TestAuthXOAuth2(t *testing.T) {
	ok := serve(t, "+OK ready\r\n", [][2]string{
		{"AUTH XOAUTH2", "+ \r\n"},
		{"dXNlcj11AWF1dGg9QmVhcmVyIHQBAQ==", "+OK User successfully authenticated.\r\n"},
	})
	if err := ok.Authenticate(sasl.NewXOAuth2Client("u", "t")); err != nil {
		t.Fatal(err)
	}
	// refused: the server's error challenge is answered with an empty line
	bad := serve(t, "+OK ready\r\n", [][2]string{
		{"AUTH XOAUTH2", "+ \r\n"},
		{"*", "+ eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIn0=\r\n"},
		{"", "-ERR [AUTH] Authentication failed.\r\n"},
	})
	sc := sasl.NewXOAuth2Client("u", "t")
	err := bad.Authenticate(sc)
	var pe *Error
	if !errors.As(err, &pe) || pe.Code != "AUTH" {
		t.Fatalf("%v", err)
	}
	if ae := sc.AuthError(); ae == nil || !strings.Contains(ae.Error(), "401") {
		t.Errorf("challenge not kept: %v", ae)
	}
}

func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{"+OK", "+OK 2 320", "-ERR [IN-USE] locked", "-ERR [SYS/TEMP", "garbage", "-ERR"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ok, code, _, err := ParseResponse(s)
		if err == nil && ok && code != "" {
			t.Fatal("code on +OK")
		}
	})
}

// FuzzDotReader: stuffing then reading gives the bytes back, whatever
// they are.
func FuzzDotReader(f *testing.F) {
	f.Add("Subject: x\r\n\r\n.dot\r\n")
	f.Add("..\r\n.\r\n")
	f.Fuzz(func(t *testing.T, body string) {
		if !strings.HasSuffix(body, "\r\n") || strings.Contains(strings.ReplaceAll(body, "\r\n", ""), "\n") || strings.Contains(strings.ReplaceAll(body, "\r\n", ""), "\r") {
			return // POP3 bodies are CRLF lines
		}
		stuffed := strings.ReplaceAll("\r\n"+body, "\r\n.", "\r\n..")[2:]
		cli, srv := net.Pipe()
		go func() { io.WriteString(srv, stuffed+".\r\nTRAILING"); srv.Close() }()
		c := New(cli)
		c.busy = true
		got, err := io.ReadAll(&dotReader{c: c, bol: true})
		if err != nil || string(got) != body {
			t.Fatalf("%q → %q (%v)", body, got, err)
		}
	})
}

// TestErrorsPrefixed: a connection lost in any command is an error that
// names pop3 and the command and still unwraps to the cause.
func TestErrorsPrefixed(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script [][2]string
		run    func(c *Client) error
		prefix string
		cause  error
	}{
		{"UIDL body cut", [][2]string{{"UIDL", "+OK\r\n1 abc\r\n"}}, func(c *Client) error { _, err := c.UIDL(); return err }, "pop3: UIDL: ", io.EOF},
		{"CAPA body cut", [][2]string{{"CAPA", "+OK\r\nSASL XOAUTH2\r\n"}}, func(c *Client) error { _, err := c.Capabilities(); return err }, "pop3: CAPA: ", io.EOF},
		{"RETR body cut", [][2]string{{"RETR 1", "+OK\r\nSubject: x\r\n"}}, func(c *Client) error {
			r, err := c.Retr(1)
			if err != nil {
				return err
			}
			_, err = io.ReadAll(r)
			return err
		}, "pop3: RETR: ", io.ErrUnexpectedEOF},
		{"AUTH answer lost", [][2]string{{"AUTH XOAUTH2", ""}}, func(c *Client) error {
			return c.Authenticate(sasl.NewXOAuth2Client("u@example.com", "tok"))
		}, "pop3: AUTH: ", io.EOF},
		{"command not sent", nil, func(c *Client) error {
			c.conn.Close()
			return c.Noop()
		}, "pop3: NOOP: ", io.ErrClosedPipe},
	} {
		err := tc.run(serve(t, "+OK ready\r\n", tc.script))
		if err == nil || !strings.HasPrefix(err.Error(), tc.prefix) || !errors.Is(err, tc.cause) {
			t.Errorf("%s: %v, want %q… wrapping %v", tc.name, err, tc.prefix, tc.cause)
		}
	}
}
