package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Protocols a listener speaks.
const (
	IMAP = "imap"
	POP3 = "pop3"
	SMTP = "smtp"
)

// Defaults of Options.
const (
	// DefaultIdleTimeout ends a session in which neither side sent anything
	// for this long: longer than IMAP's IDLE (29 minutes, RFC 9051 5.4).
	DefaultIdleTimeout = 31 * time.Minute
	// DefaultSessionTimeout ends any session after this long.
	DefaultSessionTimeout = 24 * time.Hour
	// DefaultMaxPerAccount is how many sessions one account may have open
	// at once on one listener.
	DefaultMaxPerAccount = 50
	// loginTimeout bounds everything before the relay starts: the
	// client's commands before login and the upstream login.
	loginTimeout = 2 * time.Minute
	// maxLine bounds a command line (and a literal) before login.
	maxLine = 8 << 10
	// DefaultPatience is the longest an SMTP client is kept waiting for
	// its account's pacing turn after DATA before it gets 451 (clients
	// wait minutes for the reply to DATA; RFC 5321 4.5.3.2.6 says 10).
	DefaultPatience = time.Minute
)

// Pacer paces the SMTP submissions of an account's mailbox (app: the
// outbox's per-mailbox gate, shared with an outbox sender of the same
// mailbox at the same host).
type Pacer interface {
	// Turn waits for the next submission of a's mailbox through upstream
	// (host:port), at most patience, and returns done, to be called with
	// the server's answer (nil: accepted; a throttling answer pauses the
	// mailbox). A turn further away is not waited for: the error then has
	// a RetryIn() time.Duration method saying when to try again.
	Turn(ctx context.Context, a *Account, upstream string, patience time.Duration) (done func(error), err error)
}

// Bearer gives the account's access token (oauth.Bearer has these
// methods); Invalidate is called when the server refused it.
type Bearer interface {
	Token(ctx context.Context) (string, error)
	Invalidate()
}

// Account is who may log in to a listener.
type Account struct {
	// Username is what the legacy client sends.
	Username string
	// Mailbox is the XOAUTH2 user upstream.
	Mailbox string
	// Profile names the OAuth profile (for logs and Explain).
	Profile string
	// Bearer gives the mailbox's token.
	Bearer Bearer
	// AllowedFrom are the addresses ("@example.com": a domain) an SMTP
	// client may send as; empty: Mailbox only.
	AllowedFrom []string
}

// ErrBadCredentials is a login refused because the user name is unknown,
// the account may not use this listener, or the password is wrong.
var ErrBadCredentials = errors.New("proxy: wrong user name or password")

// ErrThrottled is a login refused without checking the password because
// that account failed too often from that address.
var ErrThrottled = errors.New("proxy: too many failed logins; try again later")

// ErrTooManySessions is a login refused because the account has
// Options.MaxPerAccount sessions open already.
var ErrTooManySessions = errors.New("proxy: too many sessions for this account")

// Accounts checks a local password.
type Accounts interface {
	// Authenticate returns the account username names when password is its
	// local password and it may use the listener; ErrBadCredentials
	// otherwise.
	Authenticate(ctx context.Context, listener, username, password string) (*Account, error)
}

// Login is the outcome of one login, for a Recorder.
type Login struct {
	Listener, Protocol, Username, Remote string
	// Result is ok, bad_password, throttled, busy, token or upstream.
	Result string
	Err    error
	// Advice is what to change, when known (Explain's answer).
	Advice []string
}

// Recorder hears every login's outcome.
type Recorder interface {
	LoginResult(ctx context.Context, l Login)
}

// Upstream is the real server.
type Upstream struct {
	// Addr is host:port.
	Addr string
	// Security is tls, starttls or none (loopback only).
	Security string
	// TLSConfig verifies the server (nil: system roots, the host's name).
	TLSConfig *tls.Config
}

// Options configure a listener.
type Options struct {
	// Name is the listener's name (logs, metrics, Recorder).
	Name string
	// Protocol is imap, pop3 or smtp.
	Protocol string
	// Security is none, starttls or tls; TLSConfig holds the listener's
	// certificate for starttls and tls.
	Security  string
	TLSConfig *tls.Config
	// Upstream is where accounts' sessions go.
	Upstream Upstream
	// Accounts checks passwords. Required.
	Accounts Accounts
	// Recorder, when set, hears every login's outcome.
	Recorder Recorder
	// Explain, when set, says what to change after the upstream server
	// refused an account's token or the token endpoint refused mailgate:
	// a line each, given to the client (first line) and logged.
	Explain func(a *Account, err error) []string
	// Throttle limits failed logins; nil: one of this listener's own.
	Throttle *Throttle
	// OnSessions hears +1 when a session starts and -1 when it ends.
	OnSessions func(delta int)
	// Pacer, when set, paces SMTP submissions; Patience (0: the default)
	// is the longest a client waits for its turn before 451 4.7.0.
	Pacer    Pacer
	Patience time.Duration
	// IdleTimeout, SessionTimeout and MaxPerAccount: 0 means the default.
	IdleTimeout, SessionTimeout time.Duration
	MaxPerAccount               int
	// Log is where sessions are logged; Trace (at debug level) also logs
	// the commands before login, AUTH lines replaced by ***.
	Log   *slog.Logger
	Trace bool
}

// Server is one listener's proxy.
type Server struct {
	o      Options
	mu     sync.Mutex
	active map[string]int // sessions per account
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// New checks o and returns its Server; nothing is opened.
func New(o Options) (*Server, error) {
	if o.Accounts == nil {
		return nil, errors.New("proxy: Options.Accounts is required")
	}
	switch o.Protocol {
	case IMAP, POP3, SMTP:
	default:
		return nil, fmt.Errorf("proxy: protocol %q: want imap, pop3 or smtp", o.Protocol)
	}
	switch o.Security {
	case "none":
	case "starttls", "tls":
		if o.TLSConfig == nil {
			return nil, fmt.Errorf("proxy: security %s needs a certificate", o.Security)
		}
	default:
		return nil, fmt.Errorf("proxy: security %q: want none, starttls or tls", o.Security)
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.SessionTimeout <= 0 {
		o.SessionTimeout = DefaultSessionTimeout
	}
	if o.MaxPerAccount <= 0 {
		o.MaxPerAccount = DefaultMaxPerAccount
	}
	if o.Patience <= 0 {
		o.Patience = DefaultPatience
	}
	if o.Throttle == nil {
		o.Throttle = NewThrottle(0, 0)
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	o.Log = o.Log.With("listener", o.Name)
	if o.OnSessions == nil {
		o.OnSessions = func(int) {}
	}
	return &Server{o: o, active: map[string]int{}, conns: map[net.Conn]struct{}{}}, nil
}

// Serve accepts connections on ln until ctx ends or ln is closed, then
// closes ln and every session and returns once they have ended.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.o.Security == "tls" {
		ln = tls.NewListener(ln, s.o.TLSConfig)
	}
	if s.o.Protocol == SMTP {
		return s.serveSMTP(ctx, ln)
	}
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	defer s.closeAll()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			return fmt.Errorf("proxy: %s: %w", s.o.Name, err)
		}
		if !s.track(c) {
			c.Close()
			return nil
		}
		s.wg.Go(func() {
			defer s.untrack(c)
			s.session(ctx, c)
		})
	}
}

func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
}

func (s *Server) closeAll() {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// session runs one client connection.
func (s *Server) session(ctx context.Context, c net.Conn) {
	s.o.OnSessions(1)
	defer s.o.OnSessions(-1)
	ctx, cancel := context.WithTimeout(ctx, s.o.SessionTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	_ = c.SetDeadline(time.Now().Add(loginTimeout))
	var err error
	switch s.o.Protocol {
	case IMAP:
		err = s.imapSession(ctx, c)
	case POP3:
		err = s.pop3Session(ctx, c)
	}
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && ctx.Err() == nil {
		s.o.Log.Debug("proxy: session ended", "remote", c.RemoteAddr().String(), "err", err)
	}
}

// remoteHost is the address part of a connection's remote address.
func remoteHost(c net.Conn) string {
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return host
}

// isLoopback says a connection comes from this machine.
func isLoopback(c net.Conn) bool {
	ip := net.ParseIP(remoteHost(c))
	return ip != nil && ip.IsLoopback()
}

// isTLS says a connection is encrypted.
func isTLS(c net.Conn) bool {
	_, ok := c.(*tls.Conn)
	return ok
}

// loginAllowed says a password may be sent on c: over TLS, or from this
// machine.
func loginAllowed(c net.Conn) bool { return isTLS(c) || isLoopback(c) }

// authenticated is a local login that passed: the account and the slot it
// holds (release frees it).
type authenticated struct {
	acct    *Account
	release func()
}

// localLogin checks a client's credentials: the throttle, the password,
// the per-account cap. The error is one of ErrBadCredentials, ErrThrottled,
// ErrTooManySessions; each is recorded.
func (s *Server) localLogin(ctx context.Context, c net.Conn, username, password string) (*authenticated, error) {
	remote := remoteHost(c)
	rec := Login{Listener: s.o.Name, Protocol: s.o.Protocol, Username: username, Remote: remote}
	if !s.o.Throttle.Allow(username, remote) {
		rec.Result, rec.Err = "throttled", ErrThrottled
		s.record(ctx, rec)
		return nil, ErrThrottled
	}
	acct, err := s.o.Accounts.Authenticate(ctx, s.o.Name, username, password)
	if err != nil {
		s.o.Throttle.Failed(username, remote)
		rec.Result, rec.Err = "bad_password", err
		s.record(ctx, rec)
		return nil, ErrBadCredentials
	}
	s.o.Throttle.Succeeded(username, remote)
	s.mu.Lock()
	if s.active[acct.Username] >= s.o.MaxPerAccount {
		s.mu.Unlock()
		rec.Result, rec.Err = "busy", ErrTooManySessions
		s.record(ctx, rec)
		return nil, ErrTooManySessions
	}
	s.active[acct.Username]++
	s.mu.Unlock()
	var once sync.Once
	return &authenticated{acct: acct, release: func() {
		once.Do(func() {
			s.mu.Lock()
			s.active[acct.Username]--
			if s.active[acct.Username] == 0 {
				delete(s.active, acct.Username)
			}
			s.mu.Unlock()
		})
	}}, nil
}

// UpstreamError is the upstream server's or the token endpoint's refusal
// of an account's login.
type UpstreamError struct {
	// Protocol is the upstream server's: imap, pop3 or smtp.
	Protocol string
	// Step is "token" (no token), "connect", "auth" (the server refused
	// the token) or "protocol" (an unexpected answer).
	Step string
	// Reply is the server's refusal line, when it sent one.
	Reply string
	Err   error
}

func (e *UpstreamError) Error() string {
	if e.Reply != "" {
		return fmt.Sprintf("proxy: upstream %s: %s", e.Step, e.Reply)
	}
	return fmt.Sprintf("proxy: upstream %s: %v", e.Step, e.Err)
}

func (e *UpstreamError) Unwrap() error { return e.Err }

// token gets the account's token, as an *UpstreamError when it fails.
func token(ctx context.Context, a *Account) (string, error) {
	tok, err := a.Bearer.Token(ctx)
	if err != nil {
		return "", &UpstreamError{Step: "token", Err: err}
	}
	return tok, nil
}

// upstreamFailed records and logs an upstream failure, and returns the
// one line the client is told.
func (s *Server) upstreamFailed(ctx context.Context, c net.Conn, a *Account, err error) string {
	var advice []string
	if s.o.Explain != nil {
		advice = s.o.Explain(a, err)
	}
	var ue *UpstreamError
	if errors.As(err, &ue) && ue.Step == "auth" {
		a.Bearer.Invalidate()
	}
	result := "upstream"
	if ue != nil && ue.Step == "token" {
		result = "token"
	}
	s.record(ctx, Login{Listener: s.o.Name, Protocol: s.o.Protocol, Username: a.Username, Remote: remoteHost(c), Result: result, Err: err, Advice: advice})
	args := []any{"account", a.Username, "mailbox", a.Mailbox, "profile", a.Profile, "remote", remoteHost(c), "err", err}
	for i, l := range advice {
		args = append(args, fmt.Sprintf("fix%d", i+1), l)
	}
	s.o.Log.Warn("proxy: upstream login failed", args...)
	msg := "mailgate could not log in to the server: " + err.Error()
	if len(advice) > 0 {
		msg = strings.Join(strings.Fields(strings.Join(advice, " ")), " ")
	}
	return oneLine(msg)
}

// loggedIn records a successful login.
func (s *Server) loggedIn(ctx context.Context, c net.Conn, a *Account) {
	s.record(ctx, Login{Listener: s.o.Name, Protocol: s.o.Protocol, Username: a.Username, Remote: remoteHost(c), Result: "ok"})
	s.o.Log.Info("proxy: logged in", "account", a.Username, "mailbox", a.Mailbox, "remote", remoteHost(c))
}

func (s *Server) record(ctx context.Context, l Login) {
	if l.Result != "ok" && l.Result != "upstream" && l.Result != "token" {
		s.o.Log.Info("proxy: login refused", "account", l.Username, "remote", l.Remote, "result", l.Result)
	}
	if s.o.Recorder != nil {
		s.o.Recorder.LoginResult(context.WithoutCancel(ctx), l)
	}
}

// oneLine makes s safe as the text of a one-line reply.
func oneLine(s string) string {
	b := []byte(s)
	for i, ch := range b {
		if ch < 0x20 || ch == 0x7f {
			b[i] = ' '
		}
	}
	if len(b) > 900 {
		b = append(b[:897], "..."...)
	}
	return string(b)
}

// relay copies bytes both ways between the client and the upstream
// server until one side closes, nothing moves for the idle timeout, or
// ctx ends. from and to hold what was read past the login already.
func (s *Server) relay(ctx context.Context, client net.Conn, clientR io.Reader, up net.Conn, upR io.Reader) {
	_ = client.SetDeadline(time.Time{})
	_ = up.SetDeadline(time.Time{})
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	done := make(chan struct{}, 2)
	copyOne := func(dst net.Conn, src io.Reader) {
		_, _ = io.Copy(dst, &activity{r: src, last: &last})
		// half-close where the transport allows it, else close
		if cw, ok := dst.(interface{ CloseWrite() error }); ok && !isTLS(dst) {
			_ = cw.CloseWrite()
		} else {
			dst.Close()
		}
		done <- struct{}{}
	}
	go copyOne(up, clientR)
	go copyOne(client, upR)
	tick := time.NewTicker(s.o.IdleTimeout / 8)
	defer tick.Stop()
	ended := 0
	for ended < 2 {
		select {
		case <-done:
			ended++
			if ended == 1 {
				// one side is gone: the other follows within the idle timeout
				continue
			}
		case <-ctx.Done():
			client.Close()
			up.Close()
		case <-tick.C:
			if time.Since(time.Unix(0, last.Load())) > s.o.IdleTimeout {
				s.o.Log.Info("proxy: idle session closed", "remote", remoteHost(client))
				client.Close()
				up.Close()
			}
		}
	}
	client.Close()
	up.Close()
}

// activity notes the time of every read that returned data.
type activity struct {
	r    io.Reader
	last *atomic.Int64
}

func (a *activity) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if n > 0 {
		a.last.Store(time.Now().UnixNano())
	}
	return n, err
}

// allowed says whether addr is one of list ("@example.com": any address
// of that domain), case-insensitively; an empty list allows mailbox only.
func allowed(addr, mailbox string, list []string) bool {
	if len(list) == 0 {
		list = []string{mailbox}
	}
	return slices.ContainsFunc(list, func(a string) bool {
		if dom, ok := strings.CutPrefix(a, "@"); ok {
			at := strings.LastIndexByte(addr, '@')
			return at >= 0 && strings.EqualFold(addr[at+1:], dom)
		}
		return strings.EqualFold(addr, a)
	})
}
