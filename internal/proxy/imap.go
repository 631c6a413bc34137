package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/mailgate/mailgate/internal/loopback"
	"github.com/mailgate/mailgate/internal/sasl"
)

// imapCaps is what the proxy announces before login: LOGIN is allowed
// (never LOGINDISABLED where a login is allowed), AUTH=PLAIN with SASL-IR,
// LITERAL+ for clients that send the password as a literal.
func (s *Server) imapCaps(c net.Conn) string {
	caps := "IMAP4rev1 LITERAL+ SASL-IR ID"
	if s.o.Security == "starttls" && !isTLS(c) {
		caps += " STARTTLS"
	}
	if loginAllowed(c) {
		return caps + " AUTH=PLAIN"
	}
	return caps + " LOGINDISABLED"
}

// frontConn is the client side of a session before login: the connection
// (replaced by STARTTLS) and its reader.
type frontConn struct {
	net.Conn
	br *bufio.Reader
}

func (f *frontConn) printf(format string, args ...any) error {
	_, err := fmt.Fprintf(f.Conn, format+"\r\n", args...)
	return err
}

// starttls upgrades the client's connection; bytes the client sent after
// the command before the handshake are refused (RFC 3207's injection).
func (s *Server) starttls(f *frontConn) error {
	tc := tls.Server(f.Conn, s.o.TLSConfig)
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("proxy: client TLS handshake: %w", err)
	}
	f.Conn, f.br = tc, bufio.NewReader(tc)
	return nil
}

func (s *Server) trace(dir, line string) {
	if s.o.Trace {
		s.o.Log.Debug("proxy: trace", "dir", dir, "line", line)
	}
}

func (s *Server) imapSession(ctx context.Context, c net.Conn) error {
	f := &frontConn{Conn: c, br: bufio.NewReader(c)}
	if err := f.printf("* OK [CAPABILITY %s] mailgate proxy ready", s.imapCaps(f.Conn)); err != nil {
		return err
	}
	for {
		cmd, err := readIMAPCommand(f.br, func() error { return f.printf("+ Ready for literal data") })
		var se *syntaxError
		switch {
		case errors.As(err, &se):
			tag := "*"
			if cmd != nil && cmd.tag != "" {
				tag = cmd.tag
			}
			if err := f.printf("%s BAD %s", tag, oneLine(se.Error())); err != nil {
				return err
			}
			continue
		case errors.Is(err, errLineTooLong):
			_ = f.printf("* BYE command line too long")
			return err
		case err != nil:
			return err
		}
		if cmd.name == "LOGIN" || cmd.name == "AUTHENTICATE" {
			s.trace("C", cmd.tag+" "+cmd.name+" ***")
		} else {
			s.trace("C", strings.TrimSpace(cmd.tag+" "+cmd.name+" "+strings.Join(cmd.args, " ")))
		}
		done, err := s.imapCommand(ctx, f, cmd)
		if done || err != nil {
			return err
		}
	}
}

// imapCommand answers one command before login; done says the session
// is over (logged out, or relayed to its end).
func (s *Server) imapCommand(ctx context.Context, f *frontConn, cmd *imapCommand) (done bool, err error) {
	switch cmd.name {
	case "CAPABILITY":
		if err := f.printf("* CAPABILITY %s", s.imapCaps(f.Conn)); err != nil {
			return true, err
		}
		return false, f.printf("%s OK CAPABILITY completed", cmd.tag)
	case "ID":
		if err := f.printf("* ID NIL"); err != nil {
			return true, err
		}
		return false, f.printf("%s OK ID completed", cmd.tag)
	case "NOOP":
		return false, f.printf("%s OK NOOP completed", cmd.tag)
	case "LOGOUT":
		_ = f.printf("* BYE mailgate proxy logging out")
		return true, f.printf("%s OK LOGOUT completed", cmd.tag)
	case "STARTTLS":
		if s.o.Security != "starttls" || isTLS(f.Conn) {
			return false, f.printf("%s BAD STARTTLS is not available", cmd.tag)
		}
		if f.br.Buffered() > 0 {
			return true, f.printf("%s BAD nothing may follow STARTTLS before the handshake", cmd.tag)
		}
		if err := f.printf("%s OK Begin TLS negotiation now", cmd.tag); err != nil {
			return true, err
		}
		return false, s.starttls(f)
	case "LOGIN":
		if len(cmd.args) != 2 {
			return false, f.printf("%s BAD LOGIN takes a user name and a password", cmd.tag)
		}
		return s.imapLogin(ctx, f, cmd.tag, cmd.args[0], cmd.args[1])
	case "AUTHENTICATE":
		if len(cmd.args) < 1 || len(cmd.args) > 2 || !strings.EqualFold(cmd.args[0], "PLAIN") {
			return false, f.printf("%s NO [CANNOT] only AUTHENTICATE PLAIN is supported", cmd.tag)
		}
		resp := ""
		if len(cmd.args) == 2 {
			resp = cmd.args[1]
		} else {
			if err := f.printf("+ "); err != nil {
				return true, err
			}
			if resp, err = readLine(f.br); err != nil {
				return true, err
			}
			if resp == "*" {
				return false, f.printf("%s BAD AUTHENTICATE cancelled", cmd.tag)
			}
		}
		user, pass, err := decodePlain(resp)
		if err != nil {
			return false, f.printf("%s BAD %s", cmd.tag, oneLine(err.Error()))
		}
		return s.imapLogin(ctx, f, cmd.tag, user, pass)
	}
	return false, f.printf("%s BAD %s is not available before login (LOGIN or AUTHENTICATE PLAIN first)", cmd.tag, cmd.name)
}

// imapLogin checks the local login, logs in upstream and relays.
func (s *Server) imapLogin(ctx context.Context, f *frontConn, tag, user, pass string) (bool, error) {
	if !loginAllowed(f.Conn) {
		return false, f.printf("%s NO [PRIVACYREQUIRED] use STARTTLS first", tag)
	}
	auth, err := s.localLogin(ctx, f.Conn, user, pass)
	switch {
	case errors.Is(err, ErrThrottled), errors.Is(err, ErrTooManySessions):
		return false, f.printf("%s NO [UNAVAILABLE] %s", tag, strings.TrimPrefix(err.Error(), "proxy: "))
	case err != nil:
		return false, f.printf("%s NO [AUTHENTICATIONFAILED] Authentication failed", tag)
	}
	defer auth.release()
	up, err := s.imapUpstream(ctx, auth.acct)
	if err != nil {
		return false, f.printf("%s NO [AUTHENTICATIONFAILED] %s", tag, s.upstreamFailed(ctx, f.Conn, auth.acct, err))
	}
	s.loggedIn(ctx, f.Conn, auth.acct)
	// the server's tagged OK, its capabilities included, under the
	// client's tag
	if err := f.printf("%s %s", tag, up.ok); err != nil {
		up.Close()
		return true, err
	}
	s.relay(ctx, f.Conn, f.br, up.Conn, up.br)
	return true, nil
}

// upstreamConn is a logged-in connection to the server: what was read
// past the login stays in br; ok is the server's final answer without
// its tag.
type upstreamConn struct {
	net.Conn
	br *bufio.Reader
	ok string
}

func (u *upstreamConn) printf(format string, args ...any) error {
	_, err := fmt.Fprintf(u.Conn, format+"\r\n", args...)
	return err
}

// dialUpstream connects to the server (TLS for tls).
func (s *Server) dialUpstream(ctx context.Context) (*loopback.Conn, *upstreamConn, error) {
	lc, err := loopback.Connect(ctx, s.o.Upstream.Addr, loopback.Security(s.o.Upstream.Security), s.o.Upstream.TLSConfig, 0)
	if err != nil {
		return nil, nil, &UpstreamError{Step: "connect", Err: err}
	}
	return lc, &upstreamConn{Conn: lc.Conn, br: bufio.NewReader(lc.Conn)}, nil
}

// upgrade is the upstream STARTTLS handshake after the server said go.
func (u *upstreamConn) upgrade(ctx context.Context, lc *loopback.Conn) error {
	tc := tls.Client(u.Conn, lc.TLSConfig)
	if err := tc.HandshakeContext(ctx); err != nil {
		return &UpstreamError{Step: "connect", Err: fmt.Errorf("starttls: %w", err)}
	}
	u.Conn, u.br = tc, bufio.NewReader(tc)
	return nil
}

// XOAuth2 is the XOAUTH2 initial response for mailbox and token, base64.
func XOAuth2(mailbox, token string) string {
	return base64.StdEncoding.EncodeToString([]byte("user=" + mailbox + "\x01auth=Bearer " + token + "\x01\x01"))
}

// imapUpstream logs in to the IMAP server as a's mailbox with XOAUTH2.
func (s *Server) imapUpstream(ctx context.Context, a *Account) (*upstreamConn, error) {
	tok, err := token(ctx, a)
	if err != nil {
		return nil, err
	}
	lc, u, err := s.dialUpstream(ctx)
	if err != nil {
		return nil, err
	}
	if err := u.imapLogin(ctx, lc, s.o.Upstream.Security, a.Mailbox, tok); err != nil {
		u.Close()
		return nil, err
	}
	lc.Ready()
	return u, nil
}

// IMAPLogin connects to the IMAP server of up and logs in as mailbox with
// token (XOAUTH2), then logs out: `mailgate test ACCOUNT`.
func IMAPLogin(ctx context.Context, up Upstream, mailbox, token string) error {
	lc, err := loopback.Connect(ctx, up.Addr, loopback.Security(up.Security), up.TLSConfig, 0)
	if err != nil {
		return &UpstreamError{Step: "connect", Err: err}
	}
	defer lc.Close()
	u := &upstreamConn{Conn: lc.Conn, br: bufio.NewReader(lc.Conn)}
	defer func() { u.Close() }()
	if err := u.imapLogin(ctx, lc, up.Security, mailbox, token); err != nil {
		return err
	}
	_ = u.printf("M9 LOGOUT")
	return nil
}

func protocolError(format string, args ...any) error {
	return &UpstreamError{Step: "protocol", Err: fmt.Errorf(format, args...)}
}

func (u *upstreamConn) imapLogin(ctx context.Context, lc *loopback.Conn, security, mailbox, tok string) error {
	greeting, err := readLine(u.br)
	if err != nil {
		return protocolError("greeting: %w", err)
	}
	if !strings.HasPrefix(greeting, "* OK") {
		return protocolError("greeting: %s", oneLine(greeting))
	}
	caps := capsIn(greeting)
	if security == "starttls" {
		if _, err := u.imapTagged("M1", "STARTTLS"); err != nil {
			return err
		}
		if err := u.upgrade(ctx, lc); err != nil {
			return err
		}
		caps = ""
	}
	if caps == "" {
		if caps, err = u.imapTagged("M2", "CAPABILITY"); err != nil {
			return err
		}
	}
	ir := XOAuth2(mailbox, tok)
	if hasCap(caps, "SASL-IR") {
		err = u.printf("M3 AUTHENTICATE XOAUTH2 %s", ir)
	} else {
		err = u.printf("M3 AUTHENTICATE XOAUTH2")
	}
	if err != nil {
		return protocolError("%w", err)
	}
	sent := hasCap(caps, "SASL-IR")
	var challenge *sasl.AuthError
	for {
		line, err := readLine(u.br)
		if err != nil {
			return protocolError("authenticate: %w", err)
		}
		switch {
		case strings.HasPrefix(line, "+"):
			if !sent {
				sent = true
				err = u.printf("%s", ir)
			} else {
				// the error challenge: answer it empty so the server
				// finishes with its NO
				raw, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(strings.TrimPrefix(line, "+")))
				challenge = sasl.ParseChallenge(sasl.XOAuth2, raw)
				err = u.printf("")
			}
			if err != nil {
				return protocolError("%w", err)
			}
		case strings.HasPrefix(line, "M3 OK"):
			u.ok = strings.TrimPrefix(line, "M3 ")
			return nil
		case strings.HasPrefix(line, "M3 "):
			ue := &UpstreamError{Protocol: IMAP, Step: "auth", Reply: strings.TrimPrefix(line, "M3 ")}
			if challenge != nil {
				ue.Err = challenge
			}
			return ue
		}
	}
}

// imapTagged sends one command and reads to its tagged answer; it returns
// the capabilities an untagged CAPABILITY or the OK's code carried.
func (u *upstreamConn) imapTagged(tag, cmd string) (caps string, err error) {
	if err := u.printf("%s %s", tag, cmd); err != nil {
		return "", protocolError("%s: %w", strings.ToLower(cmd), err)
	}
	for {
		line, err := readLine(u.br)
		if err != nil {
			return "", protocolError("%s: %w", strings.ToLower(cmd), err)
		}
		if c, ok := strings.CutPrefix(line, "* CAPABILITY "); ok {
			caps = c
		}
		if rest, ok := strings.CutPrefix(line, tag+" "); ok {
			if !strings.HasPrefix(rest, "OK") {
				return "", protocolError("%s: %s", strings.ToLower(cmd), oneLine(rest))
			}
			if c := capsIn(rest); c != "" {
				caps = c
			}
			return caps, nil
		}
	}
}

// capsIn returns the capabilities of a [CAPABILITY …] response code.
func capsIn(line string) string {
	i := strings.Index(strings.ToUpper(line), "[CAPABILITY ")
	if i < 0 {
		return ""
	}
	rest := line[i+len("[CAPABILITY "):]
	if j := strings.IndexByte(rest, ']'); j >= 0 {
		return rest[:j]
	}
	return ""
}

func hasCap(caps, name string) bool {
	for _, c := range strings.Fields(caps) {
		if strings.EqualFold(c, name) {
			return true
		}
	}
	return false
}
