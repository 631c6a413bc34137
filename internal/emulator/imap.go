package emulator

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-sasl"
)

// Exchange Online's IMAP4 service, as far as a client of it can tell
// (Microsoft's "Authenticate an IMAP, POP or SMTP connection using OAuth"
// and the wire exchanges users have published):
//
//   - implicit TLS (outlook.office365.com:993);
//   - AUTH=XOAUTH2 only (basic authentication is off: LOGIN fails, and
//     Exchange advertises no OAUTHBEARER);
//   - XOAUTH2's user= is the mailbox; the bearer token must be an access
//     token of this tenant for Exchange Online
//     (https://outlook.office365.com or https://outlook.office.com) with
//     IMAP.AccessAsApp (app-only; the app's service principal registered
//     in Exchange and given FullAccess on the mailbox) or
//     IMAP.AccessAsUser.All (delegated; the signed-in user's own mailbox or
//     one they have FullAccess on) — the rule CheckMailboxAccess applies;
//   - any failure is a tagged "NO AUTHENTICATE failed." with no SASL error
//     challenge and no detail (the reason goes to the emulator's log only,
//     as it goes to Exchange's own logs).
//   - on demand (IMAPNotConnected), the quirk users report from Exchange:
//     AUTHENTICATE OK, then "BAD User is authenticated but not connected."
//     and "* BYE Connection closed.".
//
// The mailboxes behind it are go-imap's in-memory server: one user per
// tenant mailbox, INBOX and Processed, filled by IMAPDeliver and by mail
// sent to the mailbox through Graph. Mail put in with GraphDeliver stays in
// Graph: the two services keep separate stores, so a message read over
// IMAP is still unread in Graph.

// imapService is the emulated Exchange Online IMAP4 service.
type imapService struct {
	s   *Server
	ln  net.Listener
	srv *imapserver.Server

	mu      sync.Mutex
	users   map[string]*imapmemserver.User // by lower-case mailbox
	arrived map[string]chan struct{}       // closed when mail arrives, by lower-case mailbox

	notConnected atomic.Int64 // logins still to answer with Exchange's quirk
	idling       atomic.Int64 // sessions in IDLE now
}

// exchangeIMAPCaps is what the service advertises besides IMAP4rev1,
// SASL-IR, AUTH=XOAUTH2 and what go-imap adds after authentication (IDLE,
// UNSELECT, ENABLE…).
var exchangeIMAPCaps = imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}, imap.CapMove: {}, imap.CapNamespace: {}}

// startIMAP serves the IMAP4 service with implicit TLS on addr.
func (s *Server) startIMAP(addr string, leaf tls.Certificate) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("emulator: listen %s (IMAP): %w", addr, err)
	}
	svc := &imapService{s: s, users: map[string]*imapmemserver.User{}, arrived: map[string]chan struct{}{}}
	svc.ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{leaf}, MinVersion: tls.VersionTLS12})
	svc.srv = imapserver.New(&imapserver.Options{
		NewSession: func(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &imapSession{svc: svc, conn: c}, nil, nil
		},
		Caps:   exchangeIMAPCaps,
		Logger: imapLogger{s},
	})
	s.imap = svc
	s.wg.Add(1)
	go func() { defer s.wg.Done(); _ = svc.srv.Serve(svc.ln) }()
	return nil
}

func (svc *imapService) close() error { return closeIMAP(svc.srv, svc.ln) }

// closeIMAP stops an emulated IMAP server and its listener (in case Close
// ran before Serve registered it); an already closed listener is no error.
func closeIMAP(srv *imapserver.Server, ln net.Listener) error {
	err := srv.Close()
	_ = ln.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// user returns the in-memory mailbox of a tenant mailbox, creating it (with
// INBOX and Processed) on first use.
func (svc *imapService) user(mailbox string) *imapmemserver.User {
	key := strings.ToLower(mailbox)
	svc.mu.Lock()
	defer svc.mu.Unlock()
	if u := svc.users[key]; u != nil {
		return u
	}
	// The password is never used: LOGIN is refused before it gets here.
	u := imapmemserver.NewUser(key, randomToken(32))
	_ = u.Create("INBOX", nil)
	_ = u.Create("Processed", nil)
	svc.users[key] = u
	return u
}

// arrival returns a channel closed when mail next arrives in mailbox.
func (svc *imapService) arrival(mailbox string) <-chan struct{} {
	svc.mu.Lock()
	defer svc.mu.Unlock()
	ch := svc.arrived[mailbox]
	if ch == nil {
		ch = make(chan struct{})
		svc.arrived[mailbox] = ch
	}
	return ch
}

// arrive wakes the IDLE sessions of mailbox.
func (svc *imapService) arrive(mailbox string) {
	svc.mu.Lock()
	defer svc.mu.Unlock()
	if ch := svc.arrived[mailbox]; ch != nil {
		close(ch)
		delete(svc.arrived, mailbox)
	}
}

// IMAPAddr is the host:port of the emulated Exchange IMAP4 service (implicit
// TLS, certificate from CAFile), or "" when Options.IMAPListen was empty.
func (s *Server) IMAPAddr() string {
	if s.imap == nil {
		return ""
	}
	return s.imap.ln.Addr().String()
}

// IMAPIdling is how many IMAP sessions are in IDLE now.
func (s *Server) IMAPIdling() int {
	if s.imap == nil {
		return 0
	}
	return int(s.imap.idling.Load())
}

// IMAPDeliver appends a message to a tenant mailbox's IMAP INBOX, as mail
// arriving in Exchange would be, and returns its UID.
func (s *Server) IMAPDeliver(mailbox string, raw []byte) (uint32, error) {
	if s.imap == nil {
		return 0, errors.New("emulator: no IMAP service (Options.IMAPListen is empty)")
	}
	if !s.tenant.HasMailbox(mailbox) {
		return 0, fmt.Errorf("emulator: no mailbox %q", mailbox)
	}
	data, err := s.imap.user(mailbox).Append("INBOX", literal{bytes.NewReader(raw)}, &imap.AppendOptions{Time: s.now()})
	if err != nil {
		return 0, fmt.Errorf("emulator: IMAP append to %s: %w", mailbox, err)
	}
	s.imap.arrive(strings.ToLower(mailbox))
	return uint32(data.UID), nil
}

// IMAPStatus counts the messages of a mailbox's IMAP folder and those
// without \Seen (for tests and the demo).
func (s *Server) IMAPStatus(mailbox, folder string) (messages, unseen int, err error) {
	if s.imap == nil {
		return 0, 0, errors.New("emulator: no IMAP service")
	}
	st, err := s.imap.user(mailbox).Status(folder, &imap.StatusOptions{NumMessages: true, NumUnseen: true})
	if err != nil {
		return 0, 0, fmt.Errorf("emulator: IMAP %s %s: %w", mailbox, folder, err)
	}
	if st.NumMessages != nil {
		messages = int(*st.NumMessages)
	}
	if st.NumUnseen != nil {
		unseen = int(*st.NumUnseen)
	}
	return messages, unseen, nil
}

type literal struct{ *bytes.Reader }

func (l literal) Size() int64 { return l.Reader.Size() }

// imapSession is one IMAP connection: not authenticated until XOAUTH2
// succeeds, then go-imap's in-memory session of that mailbox.
type imapSession struct {
	*imapmemserver.UserSession // nil until authenticated
	svc                        *imapService
	conn                       *imapserver.Conn
	notConnected               bool   // AUTHENTICATE said OK, but Exchange's backend has no session
	user                       string // lower-case mailbox, once authenticated
}

// IMAPNotConnected makes the next n logins that would succeed behave as
// Exchange Online sometimes does when an app's service principal is not
// registered or lacks the mailbox permission, or under connection-rate
// limits: AUTHENTICATE answers OK, the next command is answered
// "BAD User is authenticated but not connected." and the server says
// "* BYE Connection closed." and hangs up.
func (s *Server) IMAPNotConnected(n int) {
	if s.imap != nil {
		s.imap.notConnected.Store(int64(n))
	}
}

// errNotConnected answers a session in that state and ends it (the BYE
// follows the tagged answer, as observed).
func (sess *imapSession) errNotConnected() error {
	go func() {
		time.Sleep(50 * time.Millisecond)
		_ = sess.conn.Bye("Connection closed.")
	}()
	return &imap.Error{Type: imap.StatusResponseTypeBad, Text: "User is authenticated but not connected."}
}

func (sess *imapSession) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	if sess.notConnected {
		return nil, sess.errNotConnected()
	}
	return sess.UserSession.Select(name, options)
}

// Idle reports new mail while the client idles. go-imap's own tracker
// writes the "+ idling" continuation before it starts listening, so mail
// arriving in between was only reported at the next change. Here the
// session polls its queue at once when IMAPDeliver adds mail (the channel
// is taken before the poll, so nothing falls in between) and every second
// for other changes; thousands of idle sessions cost little.
func (sess *imapSession) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	sess.svc.idling.Add(1)
	defer sess.svc.idling.Add(-1)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		arrived := sess.svc.arrival(sess.user)
		if err := sess.UserSession.Poll(w, true); err != nil {
			return err
		}
		select {
		case <-stop:
			return nil
		case <-arrived:
		case <-tick.C:
		}
	}
}

func (sess *imapSession) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	if sess.notConnected {
		return sess.errNotConnected()
	}
	return sess.UserSession.List(w, ref, patterns, options)
}

func (sess *imapSession) Status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	if sess.notConnected {
		return nil, sess.errNotConnected()
	}
	return sess.UserSession.Status(name, options)
}

var (
	_ imapserver.SessionSASL      = (*imapSession)(nil)
	_ imapserver.SessionIMAP4rev2 = (*imapSession)(nil)
)

// authFailed is Exchange's whole answer to a failed AUTHENTICATE.
var authFailed = &imap.Error{Type: imap.StatusResponseTypeNo, Text: "AUTHENTICATE failed."}

// Login is basic authentication, which the tenant has switched off.
func (sess *imapSession) Login(username, _ string) error {
	sess.svc.s.log.Info("emulator: IMAP LOGIN refused: basic authentication is disabled", "user", username)
	return &imap.Error{Type: imap.StatusResponseTypeNo, Text: "LOGIN failed."}
}

func (sess *imapSession) AuthenticateMechanisms() []string { return []string{"XOAUTH2"} }

func (sess *imapSession) Authenticate(mech string) (sasl.Server, error) {
	if mech != "XOAUTH2" {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "AUTHENTICATE failed."}
	}
	return &xoauth2Server{done: func(user, token string) error {
		if err := sess.svc.s.CheckMailboxAccess(token, user, "imap"); err != nil {
			sess.svc.s.log.Info("emulator: IMAP AUTHENTICATE refused", "user", user, "reason", err.Error())
			return authFailed
		}
		sess.UserSession = imapmemserver.NewUserSession(sess.svc.user(user))
		sess.user = strings.ToLower(user)
		if sess.svc.notConnected.Add(-1) >= 0 {
			sess.notConnected = true
		} else {
			sess.svc.notConnected.Store(0)
		}
		return nil
	}}, nil
}

func (sess *imapSession) Close() error {
	if sess.UserSession == nil {
		return nil
	}
	return sess.UserSession.Close()
}

// xoauth2Server reads the one XOAUTH2 client message,
// "user=" USER ^A "auth=Bearer " TOKEN ^A ^A.
type xoauth2Server struct {
	done func(user, token string) error
	sent bool
}

func (x *xoauth2Server) Next(response []byte) ([]byte, bool, error) {
	if response == nil && !x.sent {
		// No initial response: ask for it with an empty continuation.
		x.sent = true
		return nil, false, nil
	}
	user, token, err := parseXOAUTH2(response)
	if err != nil {
		return nil, true, authFailed
	}
	if err := x.done(user, token); err != nil {
		return nil, true, err
	}
	return nil, true, nil
}

// parseXOAUTH2 splits an XOAUTH2 client message into the user and the
// bearer token.
func parseXOAUTH2(msg []byte) (user, token string, err error) {
	s, ok := strings.CutSuffix(string(msg), "\x01\x01")
	if !ok {
		return "", "", errors.New("xoauth2: message does not end in ^A^A")
	}
	for _, field := range strings.Split(s, "\x01") {
		k, v, _ := strings.Cut(field, "=")
		switch k {
		case "user":
			user = v
		case "auth":
			scheme, t, found := strings.Cut(v, " ")
			if !found || !strings.EqualFold(scheme, "Bearer") {
				return "", "", errors.New("xoauth2: auth is not a Bearer token")
			}
			token = t
		}
	}
	if user == "" || token == "" {
		return "", "", errors.New("xoauth2: user or auth missing")
	}
	return user, token, nil
}

type imapLogger struct{ s *Server }

func (l imapLogger) Printf(format string, args ...any) {
	l.s.log.Debug("emulator: IMAP: " + fmt.Sprintf(format, args...))
}

// deliverInbound puts mail sent to a tenant mailbox where its reader looks:
// the Graph mailbox and, with the IMAP service on, the IMAP INBOX (one
// mailbox in Exchange; two stores here, so each keeps its own read state).
func (s *Server) deliverInbound(mailbox string, raw []byte) {
	_, _ = s.GraphDeliver(mailbox, raw)
	if s.imap != nil {
		_, _ = s.IMAPDeliver(mailbox, raw)
	}
}
