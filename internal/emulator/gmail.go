package emulator

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-sasl"
)

// Gmail's IMAP service, as Google documents it and users report it
// (imap.gmail.com:993), next to the Exchange-shaped one in imap.go:
//
//   - implicit TLS; AUTHENTICATE XOAUTH2 (LOGIN refused: the emulator has
//     no app passwords);
//   - a refused token is answered with an error challenge, the base64 of
//     {"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"};
//     the client must answer it with an empty line, after which comes
//     "NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)". The
//     service counts the answers it saw (GmailChallengeAnswers), so a test
//     proves the empty line was sent;
//   - labels are folders: INBOX plus [Gmail]/All Mail (\All), Trash
//     (\Trash), Sent Mail (\Sent), Spam (\Junk) and Drafts (\Drafts), with
//     their special-use attributes in every LIST answer; with
//     Options.GmailLocalized the names are German ("[Google Mail]/Papierkorb"…),
//     as some accounts have them, so only the attributes find them;
//   - every message in INBOX is also in All Mail: EXPUNGE in INBOX only
//     removes the Inbox label (the message stays in All Mail), a MOVE from
//     INBOX to the \Trash folder removes it from All Mail too;
//   - X-GM-EXT-1 is advertised (added to the capability lists on the wire,
//     since go-imap's server announces only what it knows) and X-GM-MSGID
//     is served in FETCH (on the wire too: gmail_msgid.go), stable across
//     folders and GmailResetUIDValidity;
//   - at most 15 authenticated connections per account (GmailMaxConnections
//     changes it); the next login gets
//     "NO [ALERT] Too many simultaneous connections. (Failure)";
//   - GmailExpireSessions ends every session with
//     "* BYE Session expired, please login again.", as Gmail does about daily.
//
// Tokens: CheckGoogleMailAccess decides, see there.

// gmailChallenge is Gmail's XOAUTH2 error challenge (before base64).
var gmailChallenge = []byte(`{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}`)

// gmailMaxConnections is Gmail's limit of simultaneous IMAP connections
// per account.
const gmailMaxConnections = 15

// gmailFolders names the special-use folders of one account.
type gmailFolders struct{ all, trash, sent, spam, drafts string }

var (
	gmailEnglish = gmailFolders{all: "[Gmail]/All Mail", trash: "[Gmail]/Trash", sent: "[Gmail]/Sent Mail",
		spam: "[Gmail]/Spam", drafts: "[Gmail]/Drafts"}
	gmailGerman = gmailFolders{all: "[Google Mail]/Alle Nachrichten", trash: "[Google Mail]/Papierkorb",
		sent: "[Google Mail]/Gesendet", spam: "[Google Mail]/Spam", drafts: "[Google Mail]/Entwürfe"}
)

// list is every folder of an account with its attributes, in LIST order.
func (f gmailFolders) list() []imap.ListData {
	parent, _, _ := strings.Cut(f.all, "/")
	return []imap.ListData{
		{Mailbox: "INBOX"},
		{Mailbox: parent, Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect, imap.MailboxAttrHasChildren}},
		{Mailbox: f.all, Attrs: []imap.MailboxAttr{imap.MailboxAttrHasNoChildren, imap.MailboxAttrAll}},
		{Mailbox: f.drafts, Attrs: []imap.MailboxAttr{imap.MailboxAttrHasNoChildren, imap.MailboxAttrDrafts}},
		{Mailbox: f.sent, Attrs: []imap.MailboxAttr{imap.MailboxAttrHasNoChildren, imap.MailboxAttrSent}},
		{Mailbox: f.spam, Attrs: []imap.MailboxAttr{imap.MailboxAttrHasNoChildren, imap.MailboxAttrJunk}},
		{Mailbox: f.trash, Attrs: []imap.MailboxAttr{imap.MailboxAttrHasNoChildren, imap.MailboxAttrTrash}},
	}
}

// gmailIMAPCaps is what the service advertises besides IMAP4rev1, SASL-IR
// and AUTH=XOAUTH2.
// (X-GM-EXT-1 is added on the wire: see answerConn).
var gmailIMAPCaps = imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}, imap.CapMove: {}, imap.CapSpecialUse: {},
	imap.CapNamespace: {}}

// gmailService is the emulated Gmail IMAP service.
type gmailService struct {
	s       *Server
	ln      net.Listener
	srv     *imapserver.Server
	folders gmailFolders

	mu       sync.Mutex
	users    map[string]*gmailUser // by lower-case address
	sessions map[*gmailSession]struct{}

	maxConns      atomic.Int64
	emptyAnswers  atomic.Int64 // empty lines answering the error challenge
	otherAnswers  atomic.Int64 // anything else answering it
	refusedLogins atomic.Int64 // logins refused for the connection cap
}

// gmailUser is one account: the in-memory folders, and which All Mail
// message each INBOX message is (the same message under two labels).
type gmailUser struct {
	mem   *imapmemserver.User
	mu    sync.Mutex
	inAll map[imap.UID]imap.UID  // INBOX UID → All Mail UID
	raw   map[imap.UID][]byte    // INBOX UID → the message (for GmailResetUIDValidity)
	dates map[imap.UID]time.Time // INBOX UID → its internal date (kept by the reset, as Gmail does)
	ids   msgIDs                 // X-GM-MSGID of the messages delivered
	conns int                    // authenticated sessions now
}

// startGmail serves the Gmail IMAP service with implicit TLS on addr.
func (s *Server) startGmail(addr string, leaf tls.Certificate) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("emulator: listen %s (Gmail IMAP): %w", addr, err)
	}
	svc := s.gmailAccounts()
	svc.ln = &answerListener{Listener: ln, cfg: &tls.Config{Certificates: []tls.Certificate{leaf}, MinVersion: tls.VersionTLS12},
		addCap: "X-GM-EXT-1"}
	svc.srv = imapserver.New(&imapserver.Options{
		NewSession: func(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			sess := &gmailSession{svc: svc, conn: c}
			svc.mu.Lock()
			svc.sessions[sess] = struct{}{}
			svc.mu.Unlock()
			return sess, nil, nil
		},
		Caps: gmailIMAPCaps,
		// the connection is TLS under answerConn, which imapserver cannot see
		InsecureAuth: true,
		Logger:       imapLogger{s},
	})
	s.gmail = svc
	s.wg.Add(1)
	go func() { defer s.wg.Done(); _ = svc.srv.Serve(svc.ln) }()
	return nil
}

// gmailAccounts makes the Gmail accounts' service, not yet serving IMAP
// (the POP3 service alone reads the accounts without it).
func (s *Server) gmailAccounts() *gmailService {
	svc := &gmailService{s: s, folders: gmailEnglish, users: map[string]*gmailUser{}, sessions: map[*gmailSession]struct{}{}}
	if s.opts.GmailLocalized {
		svc.folders = gmailGerman
	}
	svc.maxConns.Store(gmailMaxConnections)
	return svc
}

func (svc *gmailService) close() error {
	if svc.srv == nil {
		return nil
	}
	return closeIMAP(svc.srv, svc.ln)
}

// user returns an account, creating it with its folders on first use.
func (svc *gmailService) user(addr string) *gmailUser {
	key := strings.ToLower(addr)
	svc.mu.Lock()
	defer svc.mu.Unlock()
	if u := svc.users[key]; u != nil {
		return u
	}
	u := &gmailUser{mem: imapmemserver.NewUser(key, randomToken(32)), inAll: map[imap.UID]imap.UID{}, raw: map[imap.UID][]byte{}, dates: map[imap.UID]time.Time{},
		ids: msgIDs{next: 1_700_000_000_000_000_000, ids: map[string]uint64{}}}
	for _, f := range svc.folders.list() {
		if !slices.Contains(f.Attrs, imap.MailboxAttrNoSelect) {
			_ = u.mem.Create(f.Mailbox, nil)
		}
	}
	svc.users[key] = u
	return u
}

// answerListener completes TLS itself and hands imapserver connections
// that note how the client answered an error challenge.
type answerListener struct {
	net.Listener
	cfg    *tls.Config
	addCap string
}

func (l *answerListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &answerConn{Conn: tls.Server(c, l.cfg), addCap: l.addCap}, nil
}

// answerConn reads the client's line after an error challenge
// (expect is set when the challenge is sent, before the client can answer).
// With addCap it also adds a capability to every capability list the
// server writes: go-imap's server announces only the capabilities it
// knows, and X-GM-EXT-1 is not one of them.
type answerConn struct {
	net.Conn
	expect atomic.Pointer[func(line []byte)]
	addCap string
	msgID  atomic.Pointer[func(uid uint32) uint64] // the selected folder's X-GM-MSGID (gmail_msgid.go)

	wmu   sync.Mutex
	watch *gmWatch
}

func (c *answerConn) Write(p []byte) (int, error) {
	q := c.fetchWrite(p)
	if c.addCap != "" && bytes.Contains(q, capMarker) {
		q = bytes.ReplaceAll(q, capMarker, append(append(slices.Clip(capMarker), ' '), c.addCap...))
	}
	if _, err := c.Conn.Write(q); err != nil {
		return 0, err
	}
	return len(p), nil
}

// capMarker starts every capability list of the Gmail service.
var capMarker = []byte("CAPABILITY IMAP4rev1")

func (c *answerConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		n = c.fetchRead(p, n)
		if f := c.expect.Swap(nil); f != nil {
			line, _, _ := bytes.Cut(p[:n], []byte("\n"))
			(*f)(bytes.TrimSuffix(line, []byte("\r")))
		}
	}
	return n, err
}

// GmailIMAPAddr is the host:port of the Gmail IMAP service (implicit TLS,
// certificate from CAFile), or "" when Options.GmailIMAPListen was empty.
func (s *Server) GmailIMAPAddr() string {
	if s.gmail == nil || s.gmail.ln == nil {
		return ""
	}
	return s.gmail.ln.Addr().String()
}

// GmailDeliver puts a message in an account's INBOX (and All Mail, as
// Gmail does) and returns its INBOX UID.
func (s *Server) GmailDeliver(account string, raw []byte) (uint32, error) {
	if s.gmail == nil {
		return 0, errors.New("emulator: no Gmail service (Options.GmailIMAPListen and GmailPOP3Listen are empty)")
	}
	u := s.gmail.user(account)
	u.mu.Lock()
	defer u.mu.Unlock()
	now := s.now()
	all, err := u.mem.Append(s.gmail.folders.all, literal{bytes.NewReader(raw)}, &imap.AppendOptions{Time: now})
	if err != nil {
		return 0, fmt.Errorf("emulator: Gmail append to %s: %w", account, err)
	}
	in, err := u.mem.Append("INBOX", literal{bytes.NewReader(raw)}, &imap.AppendOptions{Time: now})
	if err != nil {
		return 0, fmt.Errorf("emulator: Gmail append to %s: %w", account, err)
	}
	u.inAll[in.UID], u.raw[in.UID], u.dates[in.UID] = all.UID, raw, now
	u.ids.next++
	u.ids.ids[idKey("INBOX", in.UID)], u.ids.ids[idKey(s.gmail.folders.all, all.UID)] = u.ids.next, u.ids.next
	return uint32(in.UID), nil
}

// GmailFolder is the name of an account's folder with special-use
// attribute attr (`\All`, `\Trash`, `\Sent`, `\Junk`, `\Drafts`), or
// "INBOX" for "".
func (s *Server) GmailFolder(attr string) string {
	if s.gmail == nil {
		return ""
	}
	for _, f := range s.gmail.folders.list() {
		if attr == "" && f.Mailbox == "INBOX" || attr != "" && slices.Contains(f.Attrs, imap.MailboxAttr(attr)) {
			return f.Mailbox
		}
	}
	return ""
}

// GmailCount is how many messages an account's folder holds.
func (s *Server) GmailCount(account, folder string) (int, error) {
	if s.gmail == nil {
		return 0, errors.New("emulator: no Gmail IMAP service")
	}
	st, err := s.gmail.user(account).mem.Status(folder, &imap.StatusOptions{NumMessages: true})
	if err != nil {
		return 0, fmt.Errorf("emulator: Gmail %s %s: %w", account, folder, err)
	}
	return int(*st.NumMessages), nil
}

// GmailChallengeAnswers is how clients answered the XOAUTH2 error
// challenge so far: with an empty line, or with anything else.
func (s *Server) GmailChallengeAnswers() (empty, other int) {
	if s.gmail == nil {
		return 0, 0
	}
	return int(s.gmail.emptyAnswers.Load()), int(s.gmail.otherAnswers.Load())
}

// GmailMaxConnections sets the simultaneous connections allowed per
// account (Gmail's 15 by default).
func (s *Server) GmailMaxConnections(n int) {
	if s.gmail != nil {
		s.gmail.maxConns.Store(int64(n))
	}
}

// GmailRefusedLogins is how many logins the connection cap refused.
func (s *Server) GmailRefusedLogins() int {
	if s.gmail == nil {
		return 0
	}
	return int(s.gmail.refusedLogins.Load())
}

// GmailExpireSessions ends every authenticated session with Gmail's
// "* BYE Session expired, please login again." and returns how many.
func (s *Server) GmailExpireSessions() int {
	if s.gmail == nil {
		return 0
	}
	s.gmail.mu.Lock()
	var live []*gmailSession
	for sess := range s.gmail.sessions {
		if sess.UserSession != nil {
			live = append(live, sess)
		}
	}
	s.gmail.mu.Unlock()
	for _, sess := range live {
		_ = sess.conn.Bye("Session expired, please login again.")
	}
	return len(live)
}

// CheckGoogleMailAccess is Gmail's rule for IMAP and SMTP: token is an
// unexpired access token of the emulator's Google token endpoint (or
// GoogleMailToken, which makes the same) with the full Gmail scope
// https://mail.google.com/, and the XOAUTH2 user is the token's subject. A
// narrower Gmail scope (gmail.modify, gmail.readonly) is not enough, and a
// Microsoft token is no Google token, whatever its scopes.
func (s *Server) CheckGoogleMailAccess(token, user string) error {
	c, err := s.VerifyGoogleToken(token)
	if err != nil {
		return err
	}
	if !slices.Contains(c.Scopes, GoogleMailScope) {
		return fmt.Errorf("the token's scopes (%q) lack %s", strings.Join(c.Scopes, " "), GoogleMailScope)
	}
	if !strings.EqualFold(c.Email, user) {
		return fmt.Errorf("the token is for %s, not %s", c.Email, user)
	}
	return nil
}

// GoogleMailToken is an access token for user with scopes, exactly as the
// emulator's Google token endpoint issues one to the service account
// acting for user. It is for in-process unit tests of the Gmail services'
// rules alone, and has no route: no endpoint hands out tokens without
// credentials. Through the binary, tokens come from /google/token, as
// Google's do: the service account with domain-wide delegation
// (SetGoogleDelegation for other scopes) or a signed-in user.
func (s *Server) GoogleMailToken(user string, scopes ...string) (string, error) {
	ans, gerr := s.googleAnswer(GoogleServiceAccountClientID, user, scopes, "")
	if gerr != nil {
		return "", fmt.Errorf("emulator: google token: %w", gerr)
	}
	return ans["access_token"].(string), nil
}

// gmailSession is one Gmail IMAP connection.
type gmailSession struct {
	*imapmemserver.UserSession // nil until authenticated
	svc                        *gmailService
	conn                       *imapserver.Conn
	acct                       *gmailUser
	selected                   string
}

var (
	_ imapserver.SessionSASL = (*gmailSession)(nil)
	_ imapserver.SessionMove = (*gmailSession)(nil)
)

// gmailAuthFailed is Gmail's answer after the error challenge.
var gmailAuthFailed = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthenticationFailed, Text: "Invalid credentials (Failure)"}

func (sess *gmailSession) Login(username, _ string) error {
	sess.svc.s.log.Info("emulator: Gmail IMAP LOGIN refused: no app passwords here", "user", username)
	return gmailAuthFailed
}

func (sess *gmailSession) AuthenticateMechanisms() []string { return []string{"XOAUTH2"} }

func (sess *gmailSession) Authenticate(mech string) (sasl.Server, error) {
	if mech != "XOAUTH2" {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "Unsupported mechanism. (Failure)"}
	}
	return &gmailXOAuth2{sess: sess}, nil
}

// gmailXOAuth2 is Gmail's XOAUTH2: the client message, then on a refused
// token the error challenge and the client's (empty) answer.
type gmailXOAuth2 struct {
	sess       *gmailSession
	asked      bool
	challenged bool
}

func (x *gmailXOAuth2) Next(resp []byte) ([]byte, bool, error) {
	if x.challenged {
		return nil, true, gmailAuthFailed
	}
	if resp == nil && !x.asked {
		x.asked = true
		return nil, false, nil
	}
	sess := x.sess
	user, token, err := parseXOAUTH2(resp)
	if err == nil {
		err = sess.svc.s.CheckGoogleMailAccess(token, user)
	}
	if err != nil {
		sess.svc.s.log.Info("emulator: Gmail IMAP AUTHENTICATE refused", "user", user, "reason", err.Error())
		x.challenged = true
		if ac, ok := sess.conn.NetConn().(*answerConn); ok {
			svc := sess.svc
			f := func(line []byte) {
				if len(line) == 0 {
					svc.emptyAnswers.Add(1)
				} else {
					svc.otherAnswers.Add(1)
				}
			}
			ac.expect.Store(&f)
		}
		return gmailChallenge, false, nil
	}
	return nil, true, sess.login(user)
}

// login opens the account for the session unless the connection cap is
// reached.
func (sess *gmailSession) login(user string) error {
	u := sess.svc.user(user)
	u.mu.Lock()
	if int64(u.conns) >= sess.svc.maxConns.Load() {
		u.mu.Unlock()
		sess.svc.refusedLogins.Add(1)
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlert, Text: "Too many simultaneous connections. (Failure)"}
	}
	u.conns++
	u.mu.Unlock()
	sess.acct = u
	sess.UserSession = imapmemserver.NewUserSession(u.mem)
	return nil
}

func (sess *gmailSession) Close() error {
	sess.svc.mu.Lock()
	delete(sess.svc.sessions, sess)
	sess.svc.mu.Unlock()
	if sess.UserSession == nil {
		return nil
	}
	sess.acct.mu.Lock()
	sess.acct.conns--
	sess.acct.mu.Unlock()
	return sess.UserSession.Close()
}

func (sess *gmailSession) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	d, err := sess.UserSession.Select(name, options)
	if err == nil {
		sess.selected = name
		if ac, ok := sess.conn.NetConn().(*answerConn); ok {
			u := sess.acct
			f := func(uid uint32) uint64 {
				u.mu.Lock()
				defer u.mu.Unlock()
				return u.ids.id(name, uid)
			}
			ac.msgID.Store(&f)
		}
	}
	return d, err
}

// List answers from the account's fixed folder set, special-use
// attributes always included (as Gmail does without RETURN (SPECIAL-USE)).
func (sess *gmailSession) List(w *imapserver.ListWriter, ref string, patterns []string, _ *imap.ListOptions) error {
	if len(patterns) == 0 {
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: '/'})
	}
	for _, f := range sess.svc.folders.list() {
		for _, p := range patterns {
			if imapserver.MatchList(f.Mailbox, '/', ref, p) {
				f.Delim = '/'
				if err := w.WriteList(&f); err != nil {
					return err
				}
				break
			}
		}
	}
	return nil
}

// Move is MOVE; from INBOX to the \Trash folder it removes the message's
// All Mail copy too (moved to Trash, the message has no label left).
func (sess *gmailSession) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	u := sess.acct
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := sess.UserSession.Move(w, numSet, dest); err != nil {
		return err
	}
	uids, ok := numSet.(imap.UIDSet)
	if sess.selected != "INBOX" || dest != sess.svc.folders.trash || !ok {
		return nil
	}
	var drop imap.UIDSet
	for in, all := range u.inAll {
		if uids.Contains(in) {
			drop.AddNum(all)
			delete(u.inAll, in)
		}
	}
	if len(drop) == 0 {
		return nil
	}
	// a session of its own on All Mail: flag and expunge the copies
	other := imapmemserver.NewUserSession(u.mem)
	defer other.Close()
	if _, err := other.Select(sess.svc.folders.all, nil); err != nil {
		return err
	}
	if err := other.Store(nil, drop, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil); err != nil {
		return err
	}
	return other.Expunge(nil, &drop)
}

// Idle reports changes while the client idles, polling the folder every
// half second (go-imap's memory session reports none during IDLE).
func (sess *gmailSession) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := sess.UserSession.Poll(w, true); err != nil {
			return err
		}
		select {
		case <-stop:
			return nil
		case <-tick.C:
		}
	}
}
