package smtp

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// PIPELINING (RFC 2920): where the server offers it, SendEach writes MAIL,
// every RCPT and DATA in one go and then reads their replies in order, so
// a message costs two round trips (the envelope, then the content) instead
// of three plus one per recipient. go-smtp's client sends one command at a
// time and hides its connection, so the pipelined exchange runs on the
// connection underneath it (raw): go-smtp reads nothing between commands,
// so no reply is left in its buffer, and its later commands (RSET, NOOP,
// QUIT) find the session where the exchange left it.

// pipe is the session under go-smtp's client.
type pipe struct {
	conn net.Conn
	tcp  net.Conn // the TCP connection under conn (quickAck)
	r    *textproto.Reader
	w    *bufio.Writer
}

func newPipe(conn net.Conn) *pipe {
	tcp := conn
	if t, ok := conn.(*tls.Conn); ok {
		tcp = t.NetConn()
	}
	return &pipe{conn: conn, tcp: tcp, r: textproto.NewReader(bufio.NewReader(conn)), w: bufio.NewWriter(conn)}
}

// greeted is a connection already past its greeting and STARTTLS: go-smtp
// reads a greeting first, so it is handed one.
type greeted struct {
	net.Conn
	hello *strings.Reader
}

func (g *greeted) Read(p []byte) (int, error) {
	if g.hello.Len() > 0 {
		return g.hello.Read(p)
	}
	return g.Conn.Read(p)
}

// startTLS reads the greeting, says EHLO and upgrades the connection with
// STARTTLS (RFC 3207), returning the TLS connection.
func startTLS(conn net.Conn, tc *tls.Config, name string) (*tls.Conn, error) {
	p := newPipe(conn)
	if _, _, err := p.r.ReadResponse(220); err != nil {
		return nil, fmt.Errorf("greeting: %w", err)
	}
	if err := p.cmd("EHLO " + name); err != nil {
		return nil, err
	}
	_, ehlo, err := p.r.ReadResponse(250)
	if err != nil {
		return nil, fmt.Errorf("ehlo: %w", err)
	}
	if !hasExtension(ehlo, "STARTTLS") {
		return nil, errors.New("the server does not offer STARTTLS")
	}
	if err := p.cmd("STARTTLS"); err != nil {
		return nil, err
	}
	if _, _, err := p.r.ReadResponse(220); err != nil {
		return nil, err
	}
	tconn := tls.Client(conn, tc)
	if err := tconn.Handshake(); err != nil {
		return nil, err
	}
	return tconn, nil
}

// hasExtension says whether an EHLO reply's lines (the first is the
// server's name) offer ext.
func hasExtension(ehlo, ext string) bool {
	lines := strings.Split(ehlo, "\n")
	for _, l := range lines[1:] {
		kw, _, _ := strings.Cut(strings.TrimSpace(l), " ")
		if strings.EqualFold(kw, ext) {
			return true
		}
	}
	return false
}

func (p *pipe) cmd(line string) error {
	if _, err := p.w.WriteString(line + "\r\n"); err != nil {
		return err
	}
	return p.w.Flush()
}

// reply reads one reply; a code other than want is an *Error of step.
func (p *pipe) reply(step string, want int) error {
	quickAck(p.tcp)
	_, _, err := p.r.ReadResponse(want)
	var te *textproto.Error
	if errors.As(err, &te) {
		se := &gosmtp.SMTPError{Code: te.Code, Message: te.Msg}
		if code, msg, ok := enhanced(te.Msg); ok {
			se.EnhancedCode, se.Message = code, msg
		}
		return replyError(step, se)
	}
	if err != nil {
		return &Error{Step: step, Err: err}
	}
	return nil
}

// enhanced splits a reply's text into its enhanced status code (RFC 3463:
// class 2, 4 or 5, subject and detail of 1–3 digits) and the rest, with
// the code repeated on continuation lines removed (RFC 2034).
func enhanced(msg string) (gosmtp.EnhancedCode, string, bool) {
	first, rest, ok := strings.Cut(msg, " ")
	if !ok {
		return gosmtp.EnhancedCode{}, "", false
	}
	parts := strings.Split(first, ".")
	if len(parts) != 3 {
		return gosmtp.EnhancedCode{}, "", false
	}
	var code gosmtp.EnhancedCode
	for i, s := range parts {
		n, err := strconv.Atoi(s)
		if err != nil || len(s) == 0 || len(s) > 3 || s[0] == '+' || s[0] == '-' {
			return gosmtp.EnhancedCode{}, "", false
		}
		code[i] = n
	}
	if code[0] != 2 && code[0] != 4 && code[0] != 5 {
		return gosmtp.EnhancedCode{}, "", false
	}
	return code, strings.ReplaceAll(rest, "\n"+first+" ", "\n"), true
}

// sendPipelined is SendEachAfter over PIPELINING: MAIL, every RCPT and
// DATA in one write, their replies read in order (each recipient's own
// reply kept), then the content, its final dot held back until ready.
func (c *Client) sendPipelined(from string, to []string, r io.Reader, ready <-chan struct{}) ([]RcptError, error) {
	for _, a := range append([]string{from}, to...) {
		if strings.ContainsAny(a, "\r\n") {
			return nil, &Error{Step: "mail", Err: errors.New("an address contains a line break")}
		}
	}
	p := c.raw
	_ = p.conn.SetDeadline(time.Now().Add(c.c.CommandTimeout))
	defer p.conn.SetDeadline(time.Time{})
	var b strings.Builder
	b.WriteString("MAIL FROM:<" + from + ">")
	if ok, _ := c.c.Extension("8BITMIME"); ok {
		b.WriteString(" BODY=8BITMIME")
	}
	b.WriteString("\r\n")
	for _, rc := range to {
		b.WriteString("RCPT TO:<" + rc + ">\r\n")
	}
	b.WriteString("DATA")
	if err := p.cmd(b.String()); err != nil {
		return nil, &Error{Step: "mail", Err: err}
	}
	mailErr := p.reply("mail", 250)
	if isNetwork(mailErr) {
		return nil, mailErr
	}
	var refused []RcptError
	for _, rc := range to {
		err := p.reply("rcpt", 250)
		var e *Error
		if errors.As(err, &e) {
			if e.Code == 0 {
				return refused, err
			}
			refused = append(refused, RcptError{Rcpt: rc, Err: e})
		}
	}
	dataErr := p.reply("data", 354)
	if isNetwork(dataErr) {
		return refused, dataErr
	}
	if mailErr != nil || len(refused) == len(to) || dataErr != nil {
		if dataErr == nil {
			// a server that took DATA without a recipient: end it empty
			if err := p.cmd("."); err != nil {
				return refused, &Error{Step: "data", Err: err}
			}
			_ = p.reply("data", 250)
		}
		_ = c.c.Reset()
		switch {
		case mailErr != nil:
			return nil, mailErr
		case len(refused) == len(to):
			return refused, refused[0].Err
		}
		return refused, dataErr
	}
	_ = p.conn.SetDeadline(time.Now().Add(c.c.SubmissionTimeout))
	if err := p.content(r, ready); err != nil {
		return refused, &Error{Step: "data", Err: err}
	}
	return refused, p.reply("data", 250)
}

// content writes a message's content dot-stuffed; with ready set, all of
// it but the final ".\r\n" goes out first, and that only once ready is
// closed.
func (p *pipe) content(r io.Reader, ready <-chan struct{}) error {
	out := io.Writer(p.w)
	var held *holdBack
	if ready != nil {
		held = &holdBack{w: p.w}
		out = held
	}
	bw := bufio.NewWriter(out)
	dw := textproto.NewWriter(bw).DotWriter()
	if _, err := io.Copy(dw, r); err != nil {
		return err
	}
	if err := dw.Close(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if held != nil {
		if err := p.w.Flush(); err != nil {
			return err
		}
		<-ready
		if _, err := p.w.Write(held.tail); err != nil {
			return err
		}
	}
	return p.w.Flush()
}

// holdBack passes on everything written to it except the last len(".\r\n")
// bytes, kept in tail.
type holdBack struct {
	w    io.Writer
	tail []byte
}

func (h *holdBack) Write(b []byte) (int, error) {
	all := append(h.tail, b...)
	keep := min(len(all), len(".\r\n"))
	if _, err := h.w.Write(all[:len(all)-keep]); err != nil {
		return 0, err
	}
	h.tail = append([]byte(nil), all[len(all)-keep:]...)
	return len(b), nil
}

// isNetwork says err is a failure of the connection, not a reply.
func isNetwork(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == 0
}
