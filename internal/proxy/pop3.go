package proxy

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"net"
	"strings"

	"github.com/mailgate/mailgate/internal/loopback"
	"github.com/mailgate/mailgate/internal/sasl"
)

func (s *Server) pop3Capa(f *frontConn) string {
	capa := "+OK capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\n"
	if loginAllowed(f.Conn) {
		capa += "USER\r\nSASL PLAIN\r\n"
	}
	if s.o.Security == "starttls" && !isTLS(f.Conn) {
		capa += "STLS\r\n"
	}
	return capa + "IMPLEMENTATION mailgate\r\n."
}

func (s *Server) pop3Session(ctx context.Context, c net.Conn) error {
	f := &frontConn{Conn: c, br: bufio.NewReader(c)}
	if err := f.printf("+OK mailgate proxy ready"); err != nil {
		return err
	}
	var user string
	for {
		line, err := readLine(f.br)
		if errors.Is(err, errLineTooLong) {
			_ = f.printf("-ERR command line too long")
			return err
		}
		if err != nil {
			return err
		}
		s.trace("C", redactLine(line, false))
		cmd, arg := splitPOP3(line)
		switch cmd {
		case "CAPA":
			err = f.printf("%s", s.pop3Capa(f))
		case "NOOP":
			err = f.printf("+OK")
		case "QUIT":
			return f.printf("+OK mailgate proxy signing off")
		case "STLS":
			if s.o.Security != "starttls" || isTLS(f.Conn) {
				err = f.printf("-ERR STLS is not available")
				break
			}
			if f.br.Buffered() > 0 {
				return f.printf("-ERR nothing may follow STLS before the handshake")
			}
			if err = f.printf("+OK begin TLS negotiation"); err == nil {
				err = s.starttls(f)
			}
		case "USER":
			if !loginAllowed(f.Conn) {
				err = f.printf("-ERR [AUTH] use STLS first")
				break
			}
			if user = arg; user == "" {
				err = f.printf("-ERR USER needs a name")
				break
			}
			err = f.printf("+OK send PASS")
		case "PASS":
			if user == "" {
				err = f.printf("-ERR USER first")
				break
			}
			if done, err := s.pop3Login(ctx, f, user, arg); done || err != nil {
				return err
			}
			user = ""
		case "AUTH":
			done, err := s.pop3Auth(ctx, f, arg)
			if done || err != nil {
				return err
			}
		default:
			err = f.printf("-ERR %s is not available before login (USER/PASS or AUTH PLAIN first)", oneLine(cmd))
		}
		if err != nil {
			return err
		}
	}
}

// pop3Auth is AUTH: only PLAIN, inline or after the continuation.
func (s *Server) pop3Auth(ctx context.Context, f *frontConn, arg string) (bool, error) {
	mech, resp, hasIR := strings.Cut(arg, " ")
	if mech == "" {
		// RFC 5034: AUTH alone lists the mechanisms
		return false, f.printf("+OK\r\nPLAIN\r\n.")
	}
	if !strings.EqualFold(mech, "PLAIN") {
		return false, f.printf("-ERR only AUTH PLAIN is supported")
	}
	if !loginAllowed(f.Conn) {
		return false, f.printf("-ERR [AUTH] use STLS first")
	}
	if !hasIR {
		if err := f.printf("+ "); err != nil {
			return true, err
		}
		var err error
		if resp, err = readLine(f.br); err != nil {
			return true, err
		}
		if resp == "*" {
			return false, f.printf("-ERR AUTH cancelled")
		}
	}
	user, pass, err := decodePlain(resp)
	if err != nil {
		return false, f.printf("-ERR %s", oneLine(err.Error()))
	}
	return s.pop3Login(ctx, f, user, pass)
}

func (s *Server) pop3Login(ctx context.Context, f *frontConn, user, pass string) (bool, error) {
	auth, err := s.localLogin(ctx, f.Conn, user, pass)
	switch {
	case errors.Is(err, ErrThrottled), errors.Is(err, ErrTooManySessions):
		return false, f.printf("-ERR [SYS/TEMP] %s", strings.TrimPrefix(err.Error(), "proxy: "))
	case err != nil:
		return false, f.printf("-ERR [AUTH] Authentication failed")
	}
	defer auth.release()
	tok, err := token(ctx, auth.acct)
	var u *upstreamConn
	if err == nil {
		u, err = s.pop3Upstream(ctx, auth.acct.Mailbox, tok)
	}
	if err != nil {
		return false, f.printf("-ERR [AUTH] %s", s.upstreamFailed(ctx, f.Conn, auth.acct, err))
	}
	s.loggedIn(ctx, f.Conn, auth.acct)
	if err := f.printf("%s", u.ok); err != nil {
		u.Close()
		return true, err
	}
	s.relay(ctx, f.Conn, f.br, u.Conn, u.br)
	return true, nil
}

func (s *Server) pop3Upstream(ctx context.Context, mailbox, tok string) (*upstreamConn, error) {
	lc, u, err := s.dialUpstream(ctx)
	if err != nil {
		return nil, err
	}
	if err := u.pop3Login(ctx, lc, s.o.Upstream.Security, mailbox, tok); err != nil {
		u.Close()
		return nil, err
	}
	lc.Ready()
	return u, nil
}

// POP3Login connects to the POP3 server of up and logs in as mailbox
// with token (XOAUTH2), then quits: `mailgate test ACCOUNT`.
func POP3Login(ctx context.Context, up Upstream, mailbox, token string) error {
	lc, err := loopback.Connect(ctx, up.Addr, loopback.Security(up.Security), up.TLSConfig, 0)
	if err != nil {
		return &UpstreamError{Step: "connect", Err: err}
	}
	u := &upstreamConn{Conn: lc.Conn, br: bufio.NewReader(lc.Conn)}
	defer func() { u.Close() }()
	if err := u.pop3Login(ctx, lc, up.Security, mailbox, token); err != nil {
		return err
	}
	_ = u.printf("QUIT")
	return nil
}

// pop3Reply reads one +OK/-ERR line.
func (u *upstreamConn) pop3Reply(step string) (string, error) {
	line, err := readLine(u.br)
	if err != nil {
		return "", protocolError("%s: %w", step, err)
	}
	if !strings.HasPrefix(line, "+OK") {
		return line, protocolError("%s: %s", step, oneLine(line))
	}
	return line, nil
}

func (u *upstreamConn) pop3Login(ctx context.Context, lc *loopback.Conn, security, mailbox, tok string) error {
	if _, err := u.pop3Reply("greeting"); err != nil {
		return err
	}
	if security == "starttls" {
		if err := u.printf("STLS"); err != nil {
			return protocolError("stls: %w", err)
		}
		if _, err := u.pop3Reply("stls"); err != nil {
			return err
		}
		if err := u.upgrade(ctx, lc); err != nil {
			return err
		}
	}
	// the token after the continuation: RFC 5034 limits a command line
	// to 255 octets
	if err := u.printf("AUTH XOAUTH2"); err != nil {
		return protocolError("auth: %w", err)
	}
	sent := false
	var challenge *sasl.AuthError
	for {
		line, err := readLine(u.br)
		if err != nil {
			return protocolError("auth: %w", err)
		}
		switch {
		case strings.HasPrefix(line, "+OK"):
			u.ok = line
			return nil
		case strings.HasPrefix(line, "+"):
			if !sent {
				sent = true
				err = u.printf("%s", XOAuth2(mailbox, tok))
			} else {
				raw, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(strings.TrimPrefix(line, "+")))
				challenge = sasl.ParseChallenge(sasl.XOAuth2, raw)
				err = u.printf("")
			}
			if err != nil {
				return protocolError("auth: %w", err)
			}
		default:
			ue := &UpstreamError{Protocol: POP3, Step: "auth", Reply: line}
			if challenge != nil {
				ue.Err = challenge
			}
			return ue
		}
	}
}
