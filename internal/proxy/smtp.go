package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"sync"
	"time"

	gosasl "github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/mailgate/mailgate/internal/sasl"
	"github.com/mailgate/mailgate/internal/smtp"
)

// MaxMessageBytes is the largest message the SMTP listener takes (Exchange
// Online's submission limit is 35 MB after encoding).
const MaxMessageBytes = 50 << 20

// serveSMTP runs go-smtp's server on ln: it parses SMTP; the sessions
// below decide.
func (s *Server) serveSMTP(ctx context.Context, ln net.Listener) error {
	srv := gosmtp.NewServer(&smtpBackend{s: s, ctx: ctx})
	srv.Domain = "localhost"
	if h, _, err := net.SplitHostPort(ln.Addr().String()); err == nil {
		srv.Domain = h
	}
	srv.MaxMessageBytes = MaxMessageBytes
	srv.MaxRecipients = 500
	srv.ReadTimeout = s.o.IdleTimeout
	srv.WriteTimeout = s.o.IdleTimeout
	// whether a password may be sent is decided per connection (TLS or
	// loopback) in Auth
	srv.AllowInsecureAuth = true
	srv.ErrorLog = discardLogger{}
	if s.o.Security == "starttls" {
		srv.TLSConfig = s.o.TLSConfig
	}
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	err := srv.Serve(ln)
	if ctx.Err() != nil || errors.Is(err, gosmtp.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
func (discardLogger) Println(...any)        {}

type smtpBackend struct {
	s   *Server
	ctx context.Context
}

func (b *smtpBackend) NewSession(c *gosmtp.Conn) (gosmtp.Session, error) {
	b.s.o.OnSessions(1)
	ctx, cancel := context.WithTimeout(b.ctx, b.s.o.SessionTimeout)
	conn := c.Conn()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	return &smtpSession{s: b.s, c: c, ctx: ctx, end: func() { stop(); cancel() }}, nil
}

// smtpSession is one client's SMTP session: logged in locally and
// upstream at AUTH, each message checked and submitted at DATA.
type smtpSession struct {
	s    *Server
	c    *gosmtp.Conn
	ctx  context.Context
	end  func()
	once sync.Once
	auth *authenticated
	up   *smtp.Client
	from string
	to   []string
}

func (ss *smtpSession) AuthMechanisms() []string { return []string{"PLAIN", "LOGIN"} }

func (ss *smtpSession) Auth(mech string) (gosasl.Server, error) {
	ss.s.trace("C", "AUTH "+strings.ToUpper(mech)+" ***")
	switch strings.ToUpper(mech) {
	case "PLAIN":
		return gosasl.NewPlainServer(func(identity, user, pass string) error {
			if identity != "" && identity != user {
				return &gosmtp.SMTPError{Code: 535, EnhancedCode: gosmtp.EnhancedCode{5, 7, 8}, Message: "the authorization identity must be the user name"}
			}
			return ss.login(user, pass)
		}), nil
	case "LOGIN":
		return &loginServer{done: ss.login}, nil
	}
	return nil, &gosmtp.SMTPError{Code: 504, EnhancedCode: gosmtp.EnhancedCode{5, 5, 4}, Message: "only AUTH PLAIN and LOGIN"}
}

// login checks the local password and logs in upstream.
func (ss *smtpSession) login(user, pass string) error {
	s, conn := ss.s, ss.c.Conn()
	if !loginAllowed(conn) {
		return &gosmtp.SMTPError{Code: 538, EnhancedCode: gosmtp.EnhancedCode{5, 7, 11}, Message: "use STARTTLS first"}
	}
	auth, err := s.localLogin(ss.ctx, conn, user, pass)
	switch {
	case errors.Is(err, ErrThrottled), errors.Is(err, ErrTooManySessions):
		return &gosmtp.SMTPError{Code: 454, EnhancedCode: gosmtp.EnhancedCode{4, 7, 0}, Message: strings.TrimPrefix(err.Error(), "proxy: ")}
	case err != nil:
		return &gosmtp.SMTPError{Code: 535, EnhancedCode: gosmtp.EnhancedCode{5, 7, 8}, Message: "Authentication credentials invalid"}
	}
	up, err := s.smtpUpstream(ss.ctx, auth.acct)
	if err != nil {
		auth.release()
		msg := s.upstreamFailed(ss.ctx, conn, auth.acct, err)
		return replyFor(err, 535, gosmtp.EnhancedCode{5, 7, 8}, msg)
	}
	s.loggedIn(ss.ctx, conn, auth.acct)
	ss.auth, ss.up = auth, up
	return nil
}

// replyFor is the reply the client gets for an upstream failure: the
// server's code when it gave one (its meaning and fix as the text), else
// code and ec.
func replyFor(err error, code int, ec gosmtp.EnhancedCode, msg string) error {
	var se *smtp.Error
	if errors.As(err, &se) && se.Code != 0 {
		code, ec = se.Code, parseEnhanced(se.Enhanced, ec)
	}
	return &gosmtp.SMTPError{Code: code, EnhancedCode: ec, Message: msg}
}

func parseEnhanced(s string, def gosmtp.EnhancedCode) gosmtp.EnhancedCode {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return def
	}
	var ec gosmtp.EnhancedCode
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return def
		}
		ec[i] = n
	}
	return ec
}

// smtpUpstream connects to the submission server and authenticates as
// a's mailbox.
func (s *Server) smtpUpstream(ctx context.Context, a *Account) (*smtp.Client, error) {
	tok, err := token(ctx, a)
	if err != nil {
		return nil, err
	}
	return SMTPLogin(ctx, s.o.Upstream, a.Mailbox, tok)
}

// SMTPLogin connects to the submission server of up and authenticates
// as mailbox with token (XOAUTH2, the token after the 334).
func SMTPLogin(ctx context.Context, up Upstream, mailbox, token string) (*smtp.Client, error) {
	c, err := smtp.Dial(ctx, up.Addr, &smtp.Options{Security: up.Security, TLSConfig: up.TLSConfig})
	if err != nil {
		return nil, err
	}
	if err := c.Authenticate(sasl.NewXOAuth2ClientNoIR(mailbox, token)); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (ss *smtpSession) Mail(from string, _ *gosmtp.MailOptions) error {
	ss.s.trace("C", "MAIL FROM:<"+from+">")
	if ss.auth == nil {
		return &gosmtp.SMTPError{Code: 530, EnhancedCode: gosmtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	}
	a := ss.auth.acct
	if !allowed(from, a.Mailbox, a.AllowedFrom) {
		ss.s.o.Log.Warn("proxy: sender refused", "account", a.Username, "mail_from", from)
		return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 7, 1},
			Message: fmt.Sprintf("account %s may not send as <%s> (allowed_from)", a.Username, oneLine(from))}
	}
	ss.from = from
	return nil
}

func (ss *smtpSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	ss.s.trace("C", "RCPT TO:<"+to+">")
	if ss.auth == nil {
		return &gosmtp.SMTPError{Code: 530, EnhancedCode: gosmtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	}
	ss.to = append(ss.to, to)
	return nil
}

// Data receives the whole message, checks its From header and submits
// it upstream.
func (ss *smtpSession) Data(r io.Reader) error {
	if ss.auth == nil || ss.from == "" {
		return &gosmtp.SMTPError{Code: 503, EnhancedCode: gosmtp.EnhancedCode{5, 5, 1}, Message: "MAIL FROM first"}
	}
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	a := ss.auth.acct
	if err := checkFrom(raw, a); err != nil {
		ss.s.o.Log.Warn("proxy: message refused", "account", a.Username, "err", err)
		return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 7, 1}, Message: oneLine(err.Error())}
	}
	done, err := ss.turn(a)
	if err != nil {
		return err
	}
	err = ss.up.Send(ss.from, ss.to, bytes.NewReader(raw))
	var se *smtp.Error
	if err != nil && errors.As(err, &se) && se.Code == 0 {
		// the connection went away between messages: once more
		ss.up.Close()
		if ss.up, err = ss.s.smtpUpstream(ss.ctx, a); err == nil {
			err = ss.up.Send(ss.from, ss.to, bytes.NewReader(raw))
		}
	}
	done(err)
	if err != nil {
		msg := oneLine(err.Error())
		if ss.s.o.Explain != nil {
			if advice := ss.s.o.Explain(a, err); len(advice) > 0 {
				msg = oneLine(strings.Join(advice, "; "))
			}
		}
		ss.s.o.Log.Warn("proxy: upstream refused a message", "account", a.Username, "err", err)
		return replyFor(err, 451, gosmtp.EnhancedCode{4, 3, 0}, msg)
	}
	ss.s.o.Log.Info("proxy: message sent", "account", a.Username, "size", len(raw), "recipients", len(ss.to))
	return nil
}

// turn waits for the account's pacing turn (Options.Pacer); one further
// away than Options.Patience is answered 451 4.7.0 with the wait, so the
// client retries later: a paced message is never refused for good.
func (ss *smtpSession) turn(a *Account) (done func(error), err error) {
	s := ss.s
	if s.o.Pacer == nil {
		return func(error) {}, nil
	}
	done, err = s.o.Pacer.Turn(ss.ctx, a, s.o.Upstream.Addr, s.o.Patience)
	if err == nil {
		return done, nil
	}
	var paced interface{ RetryIn() time.Duration }
	if errors.As(err, &paced) {
		secs := int(math.Ceil(paced.RetryIn().Seconds()))
		s.o.Log.Info("proxy: message deferred; the mailbox is paced", "account", a.Username, "retry_in_s", secs)
		return nil, &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 7, 0}, Message: fmt.Sprintf("rate limit, try again in %d s", secs)}
	}
	// the session ended while waiting
	return nil, &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: oneLine(err.Error())}
}

// checkFrom refuses a message whose From header names an address the
// account may not send as (or has no From).
func checkFrom(raw []byte, a *Account) error {
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("the message header cannot be read: %w", err)
	}
	from, err := m.Header.AddressList("From")
	if err != nil || len(from) == 0 {
		return errors.New("the message has no readable From header")
	}
	for _, f := range from {
		if !allowed(f.Address, a.Mailbox, a.AllowedFrom) {
			return fmt.Errorf("account %s may not send as From: %s (allowed_from)", a.Username, f.Address)
		}
	}
	return nil
}

func (ss *smtpSession) Reset() { ss.from, ss.to = "", nil }

func (ss *smtpSession) Logout() error {
	ss.once.Do(func() {
		if ss.up != nil {
			_ = ss.up.Quit()
			ss.up.Close()
		}
		if ss.auth != nil {
			ss.auth.release()
		}
		ss.end()
		ss.s.o.OnSessions(-1)
	})
	return nil
}

// loginServer is SASL LOGIN's server side (the username and the password
// each after a 334 prompt), which go-sasl no longer has.
type loginServer struct {
	step       int
	user, pass string
	done       func(user, pass string) error
}

func (l *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	switch l.step {
	case 0:
		l.step = 1
		if len(response) > 0 { // AUTH LOGIN <user> inline
			l.user, l.step = string(response), 2
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 1:
		l.user, l.step = string(response), 2
		return []byte("Password:"), false, nil
	case 2:
		l.pass, l.step = string(response), 3
		return nil, true, l.done(l.user, l.pass)
	}
	return nil, true, errors.New("proxy: unexpected LOGIN response")
}
