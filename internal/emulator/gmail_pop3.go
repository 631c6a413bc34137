package emulator

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// Gmail's POP3 service (pop.gmail.com:995), as Google's help pages
// describe it ("Read Gmail messages on other email clients using POP",
// the PopSettings of the Gmail API):
//
//   - implicit TLS; AUTH XOAUTH2 (RFC 5034: the initial response on the
//     AUTH line or after "+ "); USER/PASS and AUTH PLAIN are refused (the
//     emulator has no app passwords). A refused token is answered with the
//     same error challenge as over IMAP and SMTP ("+ " and the base64 JSON);
//     after the client's empty line comes "-ERR [AUTH] Invalid credentials"
//     (the answers are counted: GmailPOP3ChallengeAnswers);
//   - the mailbox is All Mail without Spam and Trash (the same messages the
//     IMAP service holds: GmailDeliver puts mail into both), oldest first,
//     at most 250 in one session;
//   - normal mode: a message RETRieved (or DELEted) in a session that ends
//     with QUIT is "popped" and no longer listed in later sessions, whatever
//     DELE said; a session that ends without QUIT pops nothing;
//   - recent mode (user "recent:alice@example.com"): every message of the
//     last 30 days is listed, popped or not;
//   - what happens to a popped message follows the account's POP setting
//     (GmailPOPDisposition): keep (the default: left in the Inbox), read
//     (left, marked \Seen), archive (the Inbox label removed, still in All
//     Mail) or trash (moved to Trash, gone from All Mail);
//   - UIDL is "GmailId" and the message's X-GM-MSGID in hex, so it stays
//     the same across sessions and modes.
//
// Tokens: CheckGoogleMailAccess decides, as for IMAP and SMTP.

// gmailPOPWindow is how many messages one POP session lists at most.
const gmailPOPWindow = 250

// gmailRecentDays is how far back recent mode reaches.
const gmailRecentDays = 30

// GmailPOP dispositions: what happens to a message once popped.
const (
	GmailPOPKeep    = "keep"
	GmailPOPRead    = "read"
	GmailPOPArchive = "archive"
	GmailPOPTrash   = "trash"
)

// gmailPOP3Caps is the CAPA answer.
var gmailPOP3Caps = []string{"USER", "RESP-CODES", "EXPIRE 0", "TOP", "UIDL", "SASL PLAIN XOAUTH2"}

// gmailPOP3Service is the emulated Gmail POP3 service.
type gmailPOP3Service struct {
	s  *Server
	ln net.Listener

	mu     sync.Mutex
	popped map[string]map[uint64]bool // account → X-GM-MSGIDs popped
	disp   map[string]string          // account → disposition
	conns  map[net.Conn]struct{}

	emptyAnswers atomic.Int64
	otherAnswers atomic.Int64
}

// startGmailPOP3 serves the Gmail POP3 service with implicit TLS on addr;
// it reads the Gmail IMAP service's accounts (its own when there is no
// IMAP service).
func (s *Server) startGmailPOP3(addr string, leaf tls.Certificate) error {
	if s.gmail == nil {
		s.gmail = s.gmailAccounts() // the accounts without IMAP
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("emulator: listen %s (Gmail POP3): %w", addr, err)
	}
	svc := &gmailPOP3Service{s: s, popped: map[string]map[uint64]bool{}, disp: map[string]string{}, conns: map[net.Conn]struct{}{}}
	svc.ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{leaf}, MinVersion: tls.VersionTLS12})
	s.gmailPOP3 = svc
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := svc.ln.Accept()
			if err != nil {
				return
			}
			svc.mu.Lock()
			svc.conns[c] = struct{}{}
			svc.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				svc.serve(c)
				svc.mu.Lock()
				delete(svc.conns, c)
				svc.mu.Unlock()
				c.Close()
			}()
		}
	}()
	return nil
}

func (svc *gmailPOP3Service) close() error {
	err := svc.ln.Close()
	svc.mu.Lock()
	for c := range svc.conns {
		c.Close()
	}
	svc.mu.Unlock()
	return err
}

// GmailPOP3Addr is the host:port of the Gmail POP3 service (implicit TLS,
// certificate from CAFile), or "" when Options.GmailPOP3Listen was empty.
func (s *Server) GmailPOP3Addr() string {
	if s.gmailPOP3 == nil {
		return ""
	}
	return s.gmailPOP3.ln.Addr().String()
}

// GmailPOPDisposition sets what the POP3 service does with an account's
// messages once popped: GmailPOPKeep (the default), GmailPOPRead,
// GmailPOPArchive or GmailPOPTrash.
func (s *Server) GmailPOPDisposition(account, disposition string) error {
	if s.gmailPOP3 == nil {
		return errors.New("emulator: no Gmail POP3 service")
	}
	if !slices.Contains([]string{GmailPOPKeep, GmailPOPRead, GmailPOPArchive, GmailPOPTrash}, disposition) {
		return fmt.Errorf("emulator: Gmail POP disposition %q: want keep, read, archive or trash", disposition)
	}
	s.gmailPOP3.mu.Lock()
	s.gmailPOP3.disp[strings.ToLower(account)] = disposition
	s.gmailPOP3.mu.Unlock()
	return nil
}

// GmailPOP3ChallengeAnswers is how POP3 clients answered the XOAUTH2 error
// challenge so far: with an empty line, or with anything else.
func (s *Server) GmailPOP3ChallengeAnswers() (empty, other int) {
	if s.gmailPOP3 == nil {
		return 0, 0
	}
	return int(s.gmailPOP3.emptyAnswers.Load()), int(s.gmailPOP3.otherAnswers.Load())
}

// pop3Command is one client line: the verb in upper case and its
// arguments.
type pop3Command struct {
	Verb string
	Args []string
}

// errPOP3Line is a line that is no POP3 command.
var errPOP3Line = errors.New("pop3: bad command line")

// parsePOP3Command splits a command line (without CRLF): a verb of 1 to 8
// letters (RFC 1939 keywords are 3 or 4, RFC 2449's CAPA and RFC 5034's
// AUTH included) and at most 2 arguments of at most 8 KB in all.
func parsePOP3Command(line string) (pop3Command, error) {
	if len(line) > 8<<10 {
		return pop3Command{}, fmt.Errorf("%w: longer than 8 KB", errPOP3Line)
	}
	f := strings.Fields(line)
	if len(f) == 0 || len(f) > 3 || len(f[0]) > 8 {
		return pop3Command{}, errPOP3Line
	}
	for _, r := range f[0] {
		if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') {
			return pop3Command{}, errPOP3Line
		}
	}
	return pop3Command{Verb: strings.ToUpper(f[0]), Args: f[1:]}, nil
}

// gmailPOPMsg is one message of a session's listing.
type gmailPOPMsg struct {
	id      uint64 // X-GM-MSGID
	in      imap.UID
	raw     []byte
	deleted bool
}

// gmailPOPSession is one POP3 connection.
type gmailPOPSession struct {
	svc     *gmailPOP3Service
	r       *bufio.Reader
	w       *bufio.Writer
	account string // "" until authenticated
	msgs    []gmailPOPMsg
	touched map[int]bool // messages RETRieved or DELEted (index into msgs)
}

func (sess *gmailPOPSession) reply(format string, args ...any) {
	fmt.Fprintf(sess.w, format+"\r\n", args...)
	_ = sess.w.Flush()
}

func (sess *gmailPOPSession) readLine() (string, error) {
	line, err := sess.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func (svc *gmailPOP3Service) serve(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(10 * time.Minute))
	sess := &gmailPOPSession{svc: svc, r: bufio.NewReaderSize(c, 16<<10), w: bufio.NewWriter(c), touched: map[int]bool{}}
	host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
	sess.reply("+OK Gpop ready for requests from %s %s", host, randomToken(6))
	for {
		line, err := sess.readLine()
		if err != nil {
			return
		}
		cmd, err := parsePOP3Command(line)
		if err != nil {
			sess.reply("-ERR bad command")
			continue
		}
		if cmd.Verb == "QUIT" {
			sess.quit()
			return
		}
		if sess.account == "" {
			sess.authorization(cmd)
		} else {
			sess.transaction(cmd)
		}
	}
}

// authorization answers a command before login.
func (sess *gmailPOPSession) authorization(cmd pop3Command) {
	switch cmd.Verb {
	case "CAPA":
		sess.capa()
	case "USER":
		sess.reply("+OK send PASS")
	case "PASS":
		sess.svc.s.log.Info("emulator: Gmail POP3 PASS refused: no app passwords here")
		sess.reply("-ERR [AUTH] Username and password not accepted.")
	case "AUTH":
		sess.auth(cmd.Args)
	default:
		sess.reply("-ERR bad command")
	}
}

func (sess *gmailPOPSession) capa() {
	sess.w.WriteString("+OK Capability list follows\r\n")
	for _, c := range gmailPOP3Caps {
		sess.w.WriteString(c + "\r\n")
	}
	sess.reply(".")
}

// auth is AUTH XOAUTH2 with the initial response on the line or after
// "+ ", and Gmail's error challenge on a refused token.
func (sess *gmailPOPSession) auth(args []string) {
	if len(args) == 0 || !strings.EqualFold(args[0], "XOAUTH2") {
		sess.reply("-ERR [AUTH] Invalid credentials") // PLAIN needs an app password, which the emulator has none of
		return
	}
	var b64 string
	if len(args) > 1 {
		b64 = args[1]
	} else {
		sess.reply("+ ")
		line, err := sess.readLine()
		if err != nil {
			return
		}
		if line == "*" {
			sess.reply("-ERR authentication cancelled")
			return
		}
		b64 = line
	}
	msg, err := base64.StdEncoding.DecodeString(b64)
	var user, token string
	if err == nil {
		user, token, err = parseXOAUTH2(msg)
	}
	recent := false
	if u, ok := strings.CutPrefix(strings.ToLower(user), "recent:"); ok {
		user, recent = u, true
	}
	if err == nil {
		err = sess.svc.s.CheckGoogleMailAccess(token, user)
	}
	if err != nil {
		sess.svc.s.log.Info("emulator: Gmail POP3 AUTH refused", "user", user, "reason", err.Error())
		sess.reply("+ %s", base64.StdEncoding.EncodeToString(gmailChallenge))
		if line, err := sess.readLine(); err == nil && line == "" {
			sess.svc.emptyAnswers.Add(1)
		} else {
			sess.svc.otherAnswers.Add(1)
		}
		sess.reply("-ERR [AUTH] Invalid credentials")
		return
	}
	sess.account = strings.ToLower(user)
	sess.msgs = sess.svc.listing(sess.account, recent)
	sess.reply("+OK Welcome.")
}

// listing is an account's POP view: All Mail without Trash and Spam,
// oldest first; in normal mode without the popped, in recent mode only
// the last 30 days'.
func (svc *gmailPOP3Service) listing(account string, recent bool) []gmailPOPMsg {
	u := svc.s.gmail.user(account)
	svc.mu.Lock()
	popped := svc.popped[account]
	svc.mu.Unlock()
	since := svc.s.now().AddDate(0, 0, -gmailRecentDays)
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []gmailPOPMsg
	for in := range u.inAll {
		m := gmailPOPMsg{id: u.ids.id("INBOX", uint32(in)), in: in, raw: u.raw[in]}
		if recent && u.dates[in].Before(since) || !recent && popped[m.id] {
			continue
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b gmailPOPMsg) int { return cmp.Compare(a.id, b.id) })
	if len(out) > gmailPOPWindow {
		out = out[:gmailPOPWindow]
	}
	return out
}

// msg resolves a message-number argument.
func (sess *gmailPOPSession) msg(arg string) (int, bool) {
	n, err := strconv.Atoi(arg)
	if err != nil || n < 1 || n > len(sess.msgs) {
		sess.reply("-ERR There's no message %s.", arg)
		return 0, false
	}
	if sess.msgs[n-1].deleted {
		sess.reply("-ERR Message %d was deleted.", n)
		return 0, false
	}
	return n - 1, true
}

// transaction answers a command after login.
func (sess *gmailPOPSession) transaction(cmd pop3Command) {
	switch cmd.Verb {
	case "CAPA":
		sess.capa()
	case "NOOP":
		sess.reply("+OK")
	case "STAT":
		n, size := 0, 0
		for _, m := range sess.msgs {
			if !m.deleted {
				n, size = n+1, size+len(m.raw)
			}
		}
		sess.reply("+OK %d %d", n, size)
	case "LIST", "UIDL":
		sess.list(cmd)
	case "RETR", "TOP":
		sess.retr(cmd)
	case "DELE":
		if len(cmd.Args) != 1 {
			sess.reply("-ERR DELE takes a message number")
			return
		}
		if i, ok := sess.msg(cmd.Args[0]); ok {
			sess.msgs[i].deleted, sess.touched[i] = true, true
			sess.reply("+OK marked for deletion")
		}
	case "RSET":
		for i := range sess.msgs {
			sess.msgs[i].deleted = false
		}
		sess.reply("+OK")
	default:
		sess.reply("-ERR bad command")
	}
}

// line is a LIST or UIDL line's value for message i.
func (sess *gmailPOPSession) value(verb string, i int) string {
	if verb == "UIDL" {
		return "GmailId" + strconv.FormatUint(sess.msgs[i].id, 16)
	}
	return strconv.Itoa(len(sess.msgs[i].raw))
}

func (sess *gmailPOPSession) list(cmd pop3Command) {
	if len(cmd.Args) > 0 {
		if i, ok := sess.msg(cmd.Args[0]); ok {
			sess.reply("+OK %d %s", i+1, sess.value(cmd.Verb, i))
		}
		return
	}
	sess.w.WriteString("+OK\r\n")
	for i, m := range sess.msgs {
		if !m.deleted {
			fmt.Fprintf(sess.w, "%d %s\r\n", i+1, sess.value(cmd.Verb, i))
		}
	}
	sess.reply(".")
}

// retr is RETR n and TOP n lines: the message dot-stuffed, CRLF kept.
func (sess *gmailPOPSession) retr(cmd pop3Command) {
	want := 1
	if cmd.Verb == "TOP" {
		want = 2
	}
	if len(cmd.Args) != want {
		sess.reply("-ERR %s takes %d arguments", cmd.Verb, want)
		return
	}
	i, ok := sess.msg(cmd.Args[0])
	if !ok {
		return
	}
	raw := sess.msgs[i].raw
	if cmd.Verb == "TOP" {
		k, err := strconv.Atoi(cmd.Args[1])
		if err != nil || k < 0 {
			sess.reply("-ERR bad line count")
			return
		}
		raw = topOf(raw, k)
	} else {
		sess.touched[i] = true
	}
	sess.w.WriteString("+OK message follows\r\n")
	sess.w.Write(dotStuff(raw))
	sess.reply(".")
}

// topOf is the header, the empty line and the first k lines of the body.
func topOf(raw []byte, k int) []byte {
	i := bytes.Index(raw, []byte("\r\n\r\n"))
	if i < 0 {
		return raw
	}
	end := i + 4
	for ; k > 0 && end < len(raw); k-- {
		j := bytes.IndexByte(raw[end:], '\n')
		if j < 0 {
			end = len(raw)
			break
		}
		end += j + 1
	}
	return raw[:end]
}

// dotStuff doubles a leading dot on every line and ends the data with CRLF.
func dotStuff(raw []byte) []byte {
	var b bytes.Buffer
	for len(raw) > 0 {
		line := raw
		if j := bytes.IndexByte(raw, '\n'); j >= 0 {
			line = raw[:j+1]
		}
		raw = raw[len(line):]
		if line[0] == '.' {
			b.WriteByte('.')
		}
		b.Write(line)
	}
	if b.Len() > 0 && !bytes.HasSuffix(b.Bytes(), []byte("\r\n")) {
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// quit ends the session: the messages RETRieved or DELEted are popped and
// get the account's disposition.
func (sess *gmailPOPSession) quit() {
	if sess.account != "" && len(sess.touched) > 0 {
		svc := sess.svc
		var ins []imap.UID
		svc.mu.Lock()
		if svc.popped[sess.account] == nil {
			svc.popped[sess.account] = map[uint64]bool{}
		}
		for i := range sess.touched {
			svc.popped[sess.account][sess.msgs[i].id] = true
			ins = append(ins, sess.msgs[i].in)
		}
		disp := cmp.Or(svc.disp[sess.account], GmailPOPKeep)
		svc.mu.Unlock()
		if err := svc.dispose(sess.account, disp, ins); err != nil {
			svc.s.log.Warn("emulator: Gmail POP3 disposition", "disposition", disp, "err", err.Error())
		}
	}
	sess.reply("+OK Farewell.")
}

// dispose applies a disposition to INBOX messages (by INBOX UID).
func (svc *gmailPOP3Service) dispose(account, disp string, ins []imap.UID) error {
	if disp == GmailPOPKeep {
		return nil
	}
	u := svc.s.gmail.user(account)
	u.mu.Lock()
	defer u.mu.Unlock()
	sess := imapmemserver.NewUserSession(u.mem)
	defer sess.Close()
	var inSet, allSet imap.UIDSet
	for _, in := range ins {
		inSet.AddNum(in)
		if all, ok := u.inAll[in]; ok {
			allSet.AddNum(all)
		}
	}
	if _, err := sess.Select("INBOX", nil); err != nil {
		return err
	}
	flag := imap.FlagDeleted
	if disp == GmailPOPRead {
		flag = imap.FlagSeen
	}
	if err := sess.Store(nil, inSet, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{flag}}, nil); err != nil {
		return err
	}
	if disp == GmailPOPRead {
		return nil
	}
	if err := sess.Expunge(nil, &inSet); err != nil {
		return err
	}
	if disp == GmailPOPArchive || len(allSet) == 0 {
		return nil
	}
	// trash: the All Mail copy goes to Trash
	if _, err := sess.Select(svc.s.gmail.folders.all, nil); err != nil {
		return err
	}
	if _, err := sess.Copy(allSet, svc.s.gmail.folders.trash); err != nil {
		return err
	}
	if err := sess.Store(nil, allSet, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil); err != nil {
		return err
	}
	for _, in := range ins {
		delete(u.inAll, in)
	}
	return sess.Expunge(nil, &allSet)
}
