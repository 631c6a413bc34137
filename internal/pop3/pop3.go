// Package pop3 is a small POP3 client (RFC 1939) with the extensions a
// mail gateway needs: CAPA (RFC 2449), STLS (RFC 2595), SASL AUTH (RFC 5034)
// for XOAUTH2 and OAUTHBEARER, and extended response codes ([AUTH],
// [IN-USE], [SYS/TEMP], [SYS/PERM]). RETR streams the message's exact
// bytes (dot-unstuffed, CRLF kept), so a large message never sits in
// memory. No maintained Go POP3 client speaks SASL, hence this one.
//
// Use: Dial, Authenticate with a sasl.Client (the token goes in a
// continuation line, never on the AUTH line: RFC 5034 limits it to 255
// octets), UIDL, Retr, Dele, Quit (deletions take effect at QUIT).
package pop3

import (
	"bufio"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	gosasl "github.com/emersion/go-sasl"

	"github.com/mailgate/mailgate/internal/loopback"
)

// DefaultSecurity is the Security an empty Options.Security means:
// implicit TLS (port 995).
const DefaultSecurity = "tls"

// Options configure Dial.
type Options struct {
	Security  string      // "tls" (port 995), "starttls" (STLS on 110) or "none"; "" is DefaultSecurity
	TLSConfig *tls.Config // verification on; nil = system roots, host of addr
	Timeout   time.Duration
}

// Error is a -ERR answer.
type Error struct {
	Command string // the command, without arguments
	Code    string // extended response code, e.g. AUTH, IN-USE, SYS/TEMP
	Text    string
}

func (e *Error) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("pop3: %s: -ERR [%s] %s", e.Command, e.Code, e.Text)
	}
	return fmt.Sprintf("pop3: %s: -ERR %s", e.Command, e.Text)
}

// Temporary reports a failure that may pass: IN-USE or SYS/TEMP.
func (e *Error) Temporary() bool { return e.Code == "IN-USE" || e.Code == "SYS/TEMP" }

// Client is one POP3 session.
type Client struct {
	conn net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
	busy bool // a multi-line response is being read
}

// Dial connects and reads the greeting.
func Dial(ctx context.Context, addr string, o *Options) (*Client, error) {
	if o == nil {
		o = &Options{}
	}
	sec := loopback.Security(cmp.Or(o.Security, DefaultSecurity))
	conn, err := loopback.Connect(ctx, addr, sec, o.TLSConfig, o.Timeout)
	if err != nil {
		return nil, fmt.Errorf("pop3: %w", err)
	}
	c := New(conn.Conn)
	if _, err := c.response("greeting"); err != nil {
		conn.Close()
		return nil, err
	}
	if sec == loopback.StartTLS {
		if err := c.StartTLS(conn.TLSConfig); err != nil {
			conn.Close()
			return nil, err
		}
	}
	conn.Ready()
	return c, nil
}

// New wraps an established connection (the greeting is not read).
func New(conn net.Conn) *Client {
	return &Client{conn: conn, r: bufio.NewReaderSize(conn, 32<<10), w: bufio.NewWriter(conn)}
}

// readLine reads one CRLF line without its end; lines are capped at 64 KB.
func (c *Client) readLine() (string, error) {
	var b []byte
	for {
		chunk, err := c.r.ReadSlice('\n')
		b = append(b, chunk...)
		if err == nil {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return "", err
		}
		if len(b) > 64<<10 {
			return "", errors.New("response line too long")
		}
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// ParseResponse splits a status line: ok, extended code, text.
func ParseResponse(line string) (ok bool, code, text string, err error) {
	switch {
	case strings.HasPrefix(line, "+OK"):
		return true, "", strings.TrimSpace(line[3:]), nil
	case strings.HasPrefix(line, "-ERR"):
		text = strings.TrimSpace(line[4:])
		if strings.HasPrefix(text, "[") {
			if i := strings.IndexByte(text, ']'); i > 0 {
				code, text = text[1:i], strings.TrimSpace(text[i+1:])
			}
		}
		return false, code, text, nil
	}
	return false, "", "", fmt.Errorf("pop3: unexpected response %q", trunc(line))
}

func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

func (c *Client) response(cmd string) (string, error) {
	line, err := c.readLine()
	if err != nil {
		return "", fmt.Errorf("pop3: %s: %w", cmd, err)
	}
	ok, code, text, err := ParseResponse(line)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", &Error{Command: cmd, Code: code, Text: text}
	}
	return text, nil
}

// Cmd sends a command and reads its single-line answer.
func (c *Client) Cmd(format string, args ...any) (string, error) {
	if c.busy {
		return "", errors.New("pop3: the previous message has not been read to its end")
	}
	line := fmt.Sprintf(format, args...)
	name, _, _ := strings.Cut(line, " ")
	if _, err := c.w.WriteString(line + "\r\n"); err != nil {
		return "", fmt.Errorf("pop3: %s: %w", name, err)
	}
	if err := c.w.Flush(); err != nil {
		return "", fmt.Errorf("pop3: %s: %w", name, err)
	}
	return c.response(name)
}

// lines reads a dot-terminated multi-line body as lines (CAPA, UIDL, LIST:
// cmd).
func (c *Client) lines(cmd string) ([]string, error) {
	var out []string
	for {
		l, err := c.readLine()
		if err != nil {
			return nil, fmt.Errorf("pop3: %s: %w", cmd, err)
		}
		if l == "." {
			return out, nil
		}
		out = append(out, strings.TrimPrefix(l, "."))
	}
}

// Capabilities runs CAPA.
func (c *Client) Capabilities() ([]string, error) {
	if _, err := c.Cmd("CAPA"); err != nil {
		return nil, err
	}
	return c.lines("CAPA")
}

// StartTLS runs STLS and the handshake.
func (c *Client) StartTLS(tc *tls.Config) error {
	if _, err := c.Cmd("STLS"); err != nil {
		return fmt.Errorf("pop3: the server refused STLS, refusing to log in without TLS: %w", err)
	}
	t := tls.Client(c.conn, tc)
	if err := t.Handshake(); err != nil {
		return fmt.Errorf("pop3: tls: %w", err)
	}
	c.conn = t
	c.r.Reset(t)
	c.w.Reset(t)
	return nil
}

// Authenticate runs AUTH with sc (RFC 5034). The initial response goes in
// the first continuation, never on the AUTH line. A server error challenge
// is answered as the mechanism says (sc.Next), then the final -ERR is
// returned.
func (c *Client) Authenticate(sc gosasl.Client) error {
	mech, ir, err := sc.Start()
	if err != nil {
		return fmt.Errorf("pop3: AUTH: %w", err)
	}
	if _, err := c.w.WriteString("AUTH " + mech + "\r\n"); err != nil {
		return fmt.Errorf("pop3: AUTH: %w", err)
	}
	if err := c.w.Flush(); err != nil {
		return fmt.Errorf("pop3: AUTH: %w", err)
	}
	sentIR := false
	for {
		line, err := c.readLine()
		if err != nil {
			return fmt.Errorf("pop3: AUTH: %w", err)
		}
		if strings.HasPrefix(line, "+") && !strings.HasPrefix(line, "+OK") {
			chal, err := base64.StdEncoding.DecodeString(strings.TrimSpace(strings.TrimPrefix(line, "+")))
			if err != nil {
				return fmt.Errorf("pop3: AUTH: bad challenge: %w", err)
			}
			var resp []byte
			if !sentIR && len(chal) == 0 && ir != nil {
				resp, sentIR = ir, true
			} else {
				sentIR = true
				if resp, err = sc.Next(chal); err != nil {
					c.w.WriteString("*\r\n") // cancel the exchange
					c.w.Flush()
					_, _ = c.readLine()
					return fmt.Errorf("pop3: AUTH: %w", err)
				}
			}
			if _, err := c.w.WriteString(base64.StdEncoding.EncodeToString(resp) + "\r\n"); err != nil {
				return fmt.Errorf("pop3: AUTH: %w", err)
			}
			if err := c.w.Flush(); err != nil {
				return fmt.Errorf("pop3: AUTH: %w", err)
			}
			continue
		}
		ok, code, text, err := ParseResponse(line)
		if err != nil {
			return err
		}
		if !ok {
			return &Error{Command: "AUTH", Code: code, Text: text}
		}
		return nil
	}
}

// Stat returns the message count and total size.
func (c *Client) Stat() (count int, size int64, err error) {
	text, err := c.Cmd("STAT")
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(text)
	if len(f) < 2 {
		return 0, 0, fmt.Errorf("pop3: STAT: %q", text)
	}
	count, err1 := strconv.Atoi(f[0])
	size, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("pop3: STAT: %q", text)
	}
	return count, size, nil
}

// Listing is one line of UIDL or LIST.
type Listing struct {
	Num  int
	UIDL string
	Size int64
}

// UIDL lists every message's number and unique id, with sizes from LIST.
func (c *Client) UIDL() ([]Listing, error) {
	if _, err := c.Cmd("UIDL"); err != nil {
		return nil, err
	}
	ls, err := c.lines("UIDL")
	if err != nil {
		return nil, err
	}
	out := make([]Listing, 0, len(ls))
	for _, l := range ls {
		f := strings.Fields(l)
		n, err := strconv.Atoi(f0(f))
		if len(f) != 2 || err != nil {
			return nil, fmt.Errorf("pop3: UIDL: bad line %q", trunc(l))
		}
		out = append(out, Listing{Num: n, UIDL: f[1], Size: -1})
	}
	if _, err := c.Cmd("LIST"); err != nil {
		return out, nil
	}
	ls, err = c.lines("LIST")
	if err != nil {
		return nil, err
	}
	sizes := map[int]int64{}
	for _, l := range ls {
		f := strings.Fields(l)
		if len(f) == 2 {
			n, _ := strconv.Atoi(f[0])
			s, _ := strconv.ParseInt(f[1], 10, 64)
			sizes[n] = s
		}
	}
	for i := range out {
		if s, ok := sizes[out[i].Num]; ok {
			out[i].Size = s
		}
	}
	return out, nil
}

func f0(f []string) string {
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// Retr starts RETR n; the reader yields the message's exact bytes and must
// be read to EOF before the next command.
func (c *Client) Retr(n int) (io.Reader, error) {
	if _, err := c.Cmd("RETR %d", n); err != nil {
		return nil, err
	}
	c.busy = true
	return &dotReader{c: c, bol: true}, nil
}

// Dele marks message n for deletion at QUIT.
func (c *Client) Dele(n int) error {
	_, err := c.Cmd("DELE %d", n)
	return err
}

// Noop sends NOOP.
func (c *Client) Noop() error { _, err := c.Cmd("NOOP"); return err }

// Quit ends the session; deletions take effect now.
func (c *Client) Quit() error {
	_, err := c.Cmd("QUIT")
	c.conn.Close()
	return err
}

// Close drops the connection without QUIT (deletions are rolled back).
func (c *Client) Close() error { return c.conn.Close() }

// dotReader decodes a dot-stuffed multi-line body (RFC 1939 §3) into its
// exact bytes: CRLF line ends are kept (textproto.DotReader would turn them
// into LF) and the terminating ".\r\n" ends the stream.
type dotReader struct {
	c    *Client
	bol  bool // at the beginning of a line
	done bool
	line []byte // pending bytes of the current line
}

func (d *dotReader) Read(p []byte) (int, error) {
	if d.done {
		return 0, io.EOF
	}
	for len(d.line) == 0 {
		chunk, err := d.c.r.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, fmt.Errorf("pop3: RETR: %w", err)
		}
		if d.bol && len(chunk) > 0 && chunk[0] == '.' {
			rest := chunk[1:]
			if string(rest) == "\r\n" || string(rest) == "\n" {
				d.done, d.c.busy = true, false
				return 0, io.EOF
			}
			chunk = rest // unstuff
		}
		d.bol = len(chunk) > 0 && chunk[len(chunk)-1] == '\n'
		if err == nil || len(chunk) > 0 {
			d.line = chunk
		}
		if !d.bol && len(chunk) == 0 {
			continue
		}
	}
	n := copy(p, d.line)
	d.line = d.line[n:]
	return n, nil
}
