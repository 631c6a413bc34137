// Package smtp submits mail over SMTP (RFC 5321, submission RFC 6409) with
// an OAuth 2.0 token: port 587 with STARTTLS or 465 with implicit TLS,
// certificate verification, EHLO, AUTH XOAUTH2 or OAUTHBEARER with the
// error challenge answered, and replies classified into temporary and
// permanent with their enhanced status codes (RFC 3463). Exchange Online's
// refusals come with what they mean and how to fix them.
//
// It wraps github.com/emersion/go-smtp's client. The token goes in a
// continuation line, not on the AUTH line: Dovecot's submission service
// refuses AUTH lines longer than about 1 KB and an Entra token is longer.
package smtp

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	gosasl "github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/mailgate/mailgate/internal/loopback"
)

// DefaultSecurity is the Security an empty Options.Security means:
// STARTTLS (port 587), which must succeed.
const DefaultSecurity = "starttls"

// Options configure Dial.
type Options struct {
	Security  string // "starttls" (587), "tls" (465) or "none" (loopback only); "" is DefaultSecurity
	TLSConfig *tls.Config
	Timeout   time.Duration
	LocalName string // EHLO name; default "localhost"
	// NoPipelining sends one command at a time even where the server
	// offers PIPELINING (RFC 2920).
	NoPipelining bool
}

// Error is a failed SMTP step with the server's reply.
type Error struct {
	Step     string // dial, tls, ehlo, auth, mail, rcpt, data
	Code     int    // 0 when not a server reply
	Enhanced string // e.g. "5.7.139"
	Message  string
	Err      error
}

func (e *Error) Error() string {
	if e.Code != 0 {
		s := fmt.Sprintf("smtp: %s: %d", e.Step, e.Code)
		if e.Enhanced != "" {
			s += " " + e.Enhanced
		}
		return s + " " + e.Message
	}
	return fmt.Sprintf("smtp: %s: %v", e.Step, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Temporary reports a 4xx reply or a network failure: try again later.
func (e *Error) Temporary() bool {
	if e.Code == 0 {
		return e.Step != "tls"
	}
	return e.Code >= 400 && e.Code < 500
}

// Explain says what an Exchange Online refusal means and what to change.
func (e *Error) Explain() (meaning, fix string) {
	switch {
	case e.Code == 535 && e.Enhanced == "5.7.139":
		return "SMTP AUTH is disabled for the tenant or this mailbox",
			"Exchange Online PowerShell: Set-CASMailbox -Identity <mailbox> -SmtpClientAuthenticationDisabled $false (or Set-TransportConfig -SmtpClientAuthenticationDisabled $false for the tenant)"
	case e.Code == 535 && strings.Contains(e.Message, "BadCredentials"):
		return "Gmail refused the token (BadCredentials)",
			"the profile's scopes must include https://mail.google.com/ (Gmail's SMTP takes no narrower scope: gmail.send is not enough) and the token must be for this sender's account (a service account's subject)"
	case e.Code == 535:
		return "the server refused the token",
			"app-only: the SMTP.SendAsApp application permission with admin consent, New-ServicePrincipal for the app and Add-MailboxPermission -AccessRights FullAccess on the sending mailbox; delegated: the SMTP.Send permission; the profile's scope must be https://outlook.office365.com/.default (app) or https://outlook.office.com/SMTP.Send (user)"
	case e.Code == 554 && (e.Enhanced == "5.2.252" || strings.Contains(e.Message, "SendAsDenied")):
		return "the account may not send as this From address",
			"Add-RecipientPermission -Identity <from address> -Trustee <sending account or app> -AccessRights SendAs, or send from the account's own address"
	case e.Code == 421:
		return "the server closed the session (overload or a limit)", "mailgate retries later"
	case e.Code == 452 || strings.HasPrefix(e.Enhanced, "4.7."):
		return "the server throttles this sender (Exchange allows about 30 messages a minute per mailbox)", "mailgate retries later; spread the sending"
	case e.Code >= 500 && strings.HasPrefix(e.Enhanced, "5.1."):
		return "the destination does not accept this address", "check the recipient address; the message is not retried"
	case e.Code == 504:
		return "the server does not offer this SASL mechanism", "use sasl: xoauth2 (Exchange Online does not offer OAUTHBEARER)"
	}
	return "", ""
}

func replyError(step string, err error) error {
	var se *gosmtp.SMTPError
	if errors.As(err, &se) {
		enh := ""
		if se.EnhancedCode != (gosmtp.EnhancedCode{}) && se.EnhancedCode != gosmtp.NoEnhancedCode {
			enh = fmt.Sprintf("%d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
		}
		return &Error{Step: step, Code: se.Code, Enhanced: enh, Message: se.Message, Err: err}
	}
	return &Error{Step: step, Err: err}
}

// ErrNoRecipients is SendEach's answer to a message with no recipient
// (nothing is said to the server).
var ErrNoRecipients = errors.New("smtp: no recipients")

// Client is one submission session.
type Client struct {
	c *gosmtp.Client
	// raw is the connection under c when the server offers PIPELINING
	// (nil: one command at a time).
	raw *pipe
}

// Pipelining says whether SendEach pipelines its commands (the server
// offers PIPELINING and Options.NoPipelining was not set).
func (c *Client) Pipelining() bool { return c.raw != nil }

// Dial connects, applies Security and says EHLO.
func Dial(ctx context.Context, addr string, o *Options) (*Client, error) {
	if o == nil {
		o = &Options{}
	}
	sec := loopback.Security(cmp.Or(o.Security, DefaultSecurity))
	conn, err := loopback.Connect(ctx, addr, sec, o.TLSConfig, o.Timeout)
	if err != nil {
		var ce *loopback.ConnectError
		if errors.As(err, &ce) {
			return nil, &Error{Step: ce.Step, Err: ce.Err}
		}
		return nil, fmt.Errorf("smtp: %w", err)
	}
	name := o.LocalName
	if name == "" {
		name = "localhost"
	}
	raw := conn.Conn
	var c *gosmtp.Client
	if sec == loopback.StartTLS {
		// STARTTLS here rather than in go-smtp, so that the TLS connection
		// stays at hand for PIPELINING (pipeline.go)
		tconn, err := startTLS(conn.Conn, conn.TLSConfig, name)
		if err != nil {
			conn.Close()
			return nil, &Error{Step: "tls", Err: fmt.Errorf("STARTTLS failed (is it offered? port 465 needs security: tls): %w", err)}
		}
		raw = tconn
		c = gosmtp.NewClient(&greeted{Conn: tconn, hello: strings.NewReader("220 " + name + "\r\n")})
	} else {
		c = gosmtp.NewClient(conn.Conn)
	}
	if err := c.Hello(name); err != nil {
		c.Close()
		return nil, replyError("ehlo", err)
	}
	conn.Ready()
	cl := &Client{c: c}
	if ok, _ := c.Extension("PIPELINING"); ok && !o.NoPipelining {
		cl.raw = newPipe(raw)
	}
	return cl, nil
}

// Authenticate runs AUTH; a refusal keeps the server's reply and, when
// sc kept the error challenge (AuthError), joins it.
func (c *Client) Authenticate(sc gosasl.Client) error {
	err := c.c.Auth(sc)
	if err == nil {
		return nil
	}
	e := replyError("auth", err)
	if ae, ok := sc.(interface{ AuthError() error }); ok {
		if d := ae.AuthError(); d != nil {
			return errors.Join(e, d)
		}
	}
	return e
}

// Send submits one message; the connection stays usable for the next.
func (c *Client) Send(from string, to []string, r io.Reader) error {
	if err := c.c.Mail(from, nil); err != nil {
		_ = c.c.Reset()
		return replyError("mail", err)
	}
	for _, rc := range to {
		if err := c.c.Rcpt(rc, nil); err != nil {
			_ = c.c.Reset()
			return replyError("rcpt", err)
		}
	}
	w, err := c.c.Data()
	if err != nil {
		_ = c.c.Reset()
		return replyError("data", err)
	}
	if _, err := io.Copy(w, r); err != nil {
		w.Close()
		return &Error{Step: "data", Err: err}
	}
	if err := w.Close(); err != nil {
		return replyError("data", err)
	}
	return nil
}

// Quit ends the session.
func (c *Client) Quit() error { return c.c.Quit() }

// Close drops the connection.
func (c *Client) Close() error { return c.c.Close() }

// RcptError is one recipient the server refused.
type RcptError struct {
	Rcpt string
	Err  *Error
}

// SendEach submits one message, continuing past refused recipients: it
// returns the refused ones, and an error when the message as a whole was
// not accepted (MAIL or DATA refused, every recipient refused, or the
// connection failed).
func (c *Client) SendEach(from string, to []string, r io.Reader) ([]RcptError, error) {
	return c.SendEachAfter(from, to, r, nil)
}

// SendEachAfter is SendEach that ends the content (the final dot, which
// makes the server take the message) only once ready is closed; nil: at
// once. Over PIPELINING the envelope and the content travel before that,
// so that the caller can overlap them with its own work (the outbox
// records the previous message as sent meanwhile) without a second message
// being accepted before that work is done.
func (c *Client) SendEachAfter(from string, to []string, r io.Reader, ready <-chan struct{}) ([]RcptError, error) {
	if len(to) == 0 {
		return nil, ErrNoRecipients
	}
	if c.raw != nil {
		return c.sendPipelined(from, to, r, ready)
	}
	if err := c.c.Mail(from, nil); err != nil {
		_ = c.c.Reset()
		return nil, replyError("mail", err)
	}
	var refused []RcptError
	for _, rc := range to {
		if err := c.c.Rcpt(rc, nil); err != nil {
			var e *Error
			if !errors.As(replyError("rcpt", err), &e) || e.Code == 0 {
				return refused, replyError("rcpt", err)
			}
			refused = append(refused, RcptError{Rcpt: rc, Err: e})
		}
	}
	if len(refused) == len(to) {
		_ = c.c.Reset()
		return refused, refused[0].Err
	}
	w, err := c.c.Data()
	if err != nil {
		_ = c.c.Reset()
		return refused, replyError("data", err)
	}
	if _, err := io.Copy(w, r); err != nil {
		w.Close()
		return refused, &Error{Step: "data", Err: err}
	}
	if ready != nil {
		<-ready
	}
	if err := w.Close(); err != nil {
		return refused, replyError("data", err)
	}
	return refused, nil
}

// Noop checks the connection is still usable.
func (c *Client) Noop() error { return c.c.Noop() }
