package dovecot

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"

	"github.com/emersion/go-smtp"
)

// Relay is the MTA behind Dovecot's submission service in tests: it
// accepts what submission relays (SMTP on loopback) and delivers it over
// LMTP into the same Dovecot, so a test reads a sent message back over
// IMAP. Dovecot's submission cannot relay to its own LMTP directly (LMTP
// answers EHLO with 500).
type Relay struct {
	srv *smtp.Server
	ln  net.Listener
	// LMTPAddr is where messages are delivered; set before Dovecot starts
	// (its port is known once Start picked it), read per message.
	LMTPAddr func() string

	mu       sync.Mutex
	failData int             // answer the next n DATA with a 451
	reject   map[string]bool // recipients answered 550 5.1.1
}

// FailData makes the next n messages fail with "451 4.3.0" (a server in
// trouble for a while).
func (r *Relay) FailData(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failData = n
}

// Reject makes RCPT TO:<addr> fail with "550 5.1.1".
func (r *Relay) Reject(addr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reject == nil {
		r.reject = map[string]bool{}
	}
	r.reject[strings.ToLower(addr)] = true
}

// StartRelay listens on a free loopback port.
func StartRelay(lmtp func() string) (*Relay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Relay{ln: ln, LMTPAddr: lmtp}
	r.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &relaySession{r: r}, nil }))
	r.srv.Domain = "relay.localhost"
	r.srv.MaxLineLength = 16384
	r.srv.MaxMessageBytes = 60 << 20
	go r.srv.Serve(ln)
	return r, nil
}

// Port is the relay's port (Dovecot's submission_relay_port).
func (r *Relay) Port() int { return r.ln.Addr().(*net.TCPAddr).Port }

// Close stops the relay.
func (r *Relay) Close() error { return r.srv.Close() }

type relaySession struct {
	r    *Relay
	from string
	to   []string
}

func (s *relaySession) Reset()        { s.from, s.to = "", nil }
func (s *relaySession) Logout() error { return nil }
func (s *relaySession) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}
func (s *relaySession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.r.mu.Lock()
	rejected := s.r.reject[strings.ToLower(to)]
	s.r.mu.Unlock()
	if rejected {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "Recipient address rejected: User unknown"}
	}
	s.to = append(s.to, to)
	return nil
}

// Data delivers over LMTP; a refusal by LMTP is passed back to the sender.
func (s *relaySession) Data(r io.Reader) error {
	body, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.r.mu.Lock()
	fail := s.r.failData > 0
	if fail {
		s.r.failData--
	}
	s.r.mu.Unlock()
	if fail {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Temporary local problem, try again later"}
	}
	conn, err := net.Dial("tcp", s.r.LMTPAddr())
	if err != nil {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 1}, Message: "relay: LMTP unreachable"}
	}
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	if err := c.Hello("relay.localhost"); err != nil {
		return err
	}
	if err := c.Mail(s.from, nil); err != nil {
		return err
	}
	for _, to := range s.to {
		if err := c.Rcpt(to, nil); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, bytes.NewReader(body)); err != nil {
		return err
	}
	if _, err := w.CloseWithLMTPResponse(); err != nil {
		var le smtp.LMTPDataError
		if errors.As(err, &le) {
			return fmt.Errorf("relay: LMTP refused: %w", err)
		}
		return err
	}
	return c.Quit()
}
