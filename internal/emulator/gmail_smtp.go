package emulator

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// Gmail's SMTP submission service (smtp.gmail.com:465), as far as an
// OAuth client sees it: implicit TLS, AUTH XOAUTH2 (Gmail also offers
// PLAIN and LOGIN for app passwords, refused here); a refused token is
// answered "334 " + base64 of the same error challenge as IMAP, the client
// must answer with an empty line, then comes
// "535-5.7.8 Username and Password not accepted. …BadCredentials". The
// answers are counted (GmailSMTPChallengeAnswers). Accepted mail is kept in the sender's [Gmail]/Sent Mail
// when the IMAP service runs, and counted (GmailSMTPSent).

// gmailBadCredentials is Gmail's SMTP answer after the error challenge,
// the enhanced code on each line as Gmail writes it (go-smtp's server
// puts it on the last line only, so the first line carries it in its text).
var gmailBadCredentials = &gosmtp.SMTPError{Code: 535, EnhancedCode: gosmtp.EnhancedCode{5, 7, 8},
	Message: "5.7.8 Username and Password not accepted. For more information, go to\nhttps://support.google.com/mail/?p=BadCredentials (Failure)"}

type gmailSMTPService struct {
	s    *Server
	ln   net.Listener
	srv  *gosmtp.Server
	sent atomic.Int64

	emptyAnswers, otherAnswers atomic.Int64
}

// startGmailSMTP serves Gmail's submission service with implicit TLS.
func (s *Server) startGmailSMTP(addr string, leaf tls.Certificate) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("emulator: listen %s (Gmail SMTP): %w", addr, err)
	}
	svc := &gmailSMTPService{s: s}
	svc.ln = &answerListener{Listener: ln, cfg: &tls.Config{Certificates: []tls.Certificate{leaf}, MinVersion: tls.VersionTLS12}}
	svc.srv = gosmtp.NewServer(gosmtp.BackendFunc(func(c *gosmtp.Conn) (gosmtp.Session, error) {
		ac, _ := c.Conn().(*answerConn)
		return &gmailSMTPSession{svc: svc, conn: ac}, nil
	}))
	svc.srv.Domain = "smtp.gmail.com"
	svc.srv.AllowInsecureAuth = true // TLS under answerConn
	svc.srv.ReadTimeout, svc.srv.WriteTimeout = time.Minute, time.Minute
	svc.srv.MaxMessageBytes = 35 << 20
	s.gmailSMTP = svc
	s.wg.Add(1)
	go func() { defer s.wg.Done(); _ = svc.srv.Serve(svc.ln) }()
	return nil
}

func (svc *gmailSMTPService) close() error {
	err := svc.srv.Close()
	_ = svc.ln.Close()
	if errors.Is(err, net.ErrClosed) || errors.Is(err, gosmtp.ErrServerClosed) {
		return nil
	}
	return err
}

// GmailSMTPAddr is the host:port of the Gmail SMTP service (implicit TLS),
// or "" when Options.GmailSMTPListen was empty.
func (s *Server) GmailSMTPAddr() string {
	if s.gmailSMTP == nil {
		return ""
	}
	return s.gmailSMTP.ln.Addr().String()
}

// GmailSMTPSent is how many messages the Gmail SMTP service accepted.
func (s *Server) GmailSMTPSent() int {
	if s.gmailSMTP == nil {
		return 0
	}
	return int(s.gmailSMTP.sent.Load())
}

// GmailSMTPChallengeAnswers is how SMTP clients answered the error
// challenge: with an empty line, or with anything else.
func (s *Server) GmailSMTPChallengeAnswers() (empty, other int) {
	if s.gmailSMTP == nil {
		return 0, 0
	}
	return int(s.gmailSMTP.emptyAnswers.Load()), int(s.gmailSMTP.otherAnswers.Load())
}

type gmailSMTPSession struct {
	svc   *gmailSMTPService
	conn  *answerConn
	mu    sync.Mutex
	user  string   // once authenticated
	rcpts []string // of the current message
}

func (sess *gmailSMTPSession) AuthMechanisms() []string { return []string{"XOAUTH2"} }

func (sess *gmailSMTPSession) Auth(mech string) (sasl.Server, error) {
	if mech != "XOAUTH2" {
		return nil, &gosmtp.SMTPError{Code: 504, EnhancedCode: gosmtp.EnhancedCode{5, 7, 4}, Message: "Unrecognized authentication type."}
	}
	return &gmailSMTPAuth{sess: sess}, nil
}

// gmailSMTPAuth is XOAUTH2 on submission with Gmail's failure path.
type gmailSMTPAuth struct {
	sess              *gmailSMTPSession
	asked, challenged bool
}

func (x *gmailSMTPAuth) Next(resp []byte) ([]byte, bool, error) {
	if x.challenged {
		return nil, true, gmailBadCredentials
	}
	if resp == nil && !x.asked {
		x.asked = true
		return nil, false, nil
	}
	svc := x.sess.svc
	user, token, err := parseXOAUTH2(resp)
	if err == nil {
		err = svc.s.CheckGoogleMailAccess(token, user)
	}
	if err != nil {
		svc.s.log.Info("emulator: Gmail SMTP AUTH refused", "user", user, "reason", err.Error())
		x.challenged = true
		if x.sess.conn != nil {
			f := func(line []byte) {
				if len(line) == 0 {
					svc.emptyAnswers.Add(1)
				} else {
					svc.otherAnswers.Add(1)
				}
			}
			x.sess.conn.expect.Store(&f)
		}
		return gmailChallenge, false, nil
	}
	x.sess.mu.Lock()
	x.sess.user = user
	x.sess.mu.Unlock()
	return nil, true, nil
}

func (sess *gmailSMTPSession) authed() error {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.user == "" {
		return &gosmtp.SMTPError{Code: 530, EnhancedCode: gosmtp.EnhancedCode{5, 7, 0}, Message: "Authentication Required."}
	}
	return nil
}

func (sess *gmailSMTPSession) Mail(string, *gosmtp.MailOptions) error { return sess.authed() }

func (sess *gmailSMTPSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	if err := sess.authed(); err != nil {
		return err
	}
	sess.mu.Lock()
	sess.rcpts = append(sess.rcpts, to)
	sess.mu.Unlock()
	return nil
}

func (sess *gmailSMTPSession) Data(r io.Reader) error {
	if err := sess.authed(); err != nil {
		return err
	}
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	sess.svc.sent.Add(1)
	sess.mu.Lock()
	user, rcpts := sess.user, sess.rcpts
	sess.rcpts = nil
	sess.mu.Unlock()
	if err := sess.svc.s.gmailSubmitted(user, rcpts, raw); err != nil {
		return &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: err.Error()}
	}
	return nil
}

// gmailSubmitted does what Gmail does with a message submitted by user when
// the Gmail IMAP service runs: a copy in the sender's Sent folder, and the
// message in each recipient's INBOX (every address is an account of the
// emulator), so that mail sent through the SMTP service can be read back.
func (s *Server) gmailSubmitted(user string, rcpts []string, raw []byte) error {
	g := s.gmail
	if g == nil {
		return nil
	}
	u := g.user(user)
	u.mu.Lock()
	_, err := u.mem.Append(g.folders.sent, literal{bytes.NewReader(raw)}, &imap.AppendOptions{Time: s.now()})
	u.mu.Unlock()
	if err != nil {
		return fmt.Errorf("emulator: Gmail append to %s's sent mail: %w", user, err)
	}
	for _, r := range rcpts {
		if _, err := s.GmailDeliver(r, raw); err != nil {
			return err
		}
	}
	return nil
}

func (sess *gmailSMTPSession) Reset() {
	sess.mu.Lock()
	sess.rcpts = nil
	sess.mu.Unlock()
}
func (sess *gmailSMTPSession) Logout() error { return nil }
