package emulator

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"regexp"
	"strconv"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// X-GM-MSGID in FETCH. go-imap's server parses FETCH items itself and
// refuses ones it does not know, so the Gmail service serves this one on
// the wire, in answerConn, the thinnest place left: a FETCH command line
// naming X-GM-MSGID is passed on without it (UID stays: the server always
// sends it first), and until that command's tagged answer each
// "* n FETCH (UID u" line gets " X-GM-MSGID id" after the UID. The id is
// the message's, the same in INBOX and All Mail and across a UIDVALIDITY
// change, as Gmail's is.

// gmFetchLine matches a FETCH command naming X-GM-MSGID: the tag, and the
// item list.
var gmFetchLine = regexp.MustCompile(`(?i)^([^ ]+) ((?:UID )?FETCH [^ ]+ )(\(.*\)|X-GM-MSGID)\r?\n$`)

// gmItem matches the X-GM-MSGID item inside a FETCH item list.
var gmItem = regexp.MustCompile(`(?i) ?\bX-GM-MSGID\b ?`)

// rewriteFetch returns the command without X-GM-MSGID and its tag, or ok
// false when line is no such command.
func rewriteFetch(line []byte) (out []byte, tag string, ok bool) {
	m := gmFetchLine.FindSubmatch(line)
	if m == nil || !bytes.Contains(bytes.ToUpper(m[3]), []byte("X-GM-MSGID")) {
		return nil, "", false
	}
	items := gmItem.ReplaceAll(m[3], []byte(" "))
	items = bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimPrefix(items, []byte("(")), []byte(")")))
	if len(bytes.TrimSpace(items)) == 0 {
		items = []byte("UID")
	}
	out = append(append(append(append([]byte{}, m[1]...), ' '), m[2]...), '(')
	out = append(append(out, bytes.TrimSpace(items)...), ")\r\n"...)
	return out, string(m[1]), true
}

// gmUIDItem finds the UID item at the start of an untagged FETCH answer.
var gmUIDItem = regexp.MustCompile(`^\* [0-9]+ FETCH \(UID ([0-9]+)`)

// addMsgID inserts X-GM-MSGID after the UID of an untagged FETCH line.
func addMsgID(line []byte, id func(uid uint32) uint64) []byte {
	m := gmUIDItem.FindSubmatchIndex(line)
	if m == nil {
		return line
	}
	uid, err := strconv.ParseUint(string(line[m[2]:m[3]]), 10, 32)
	if err != nil {
		return line
	}
	out := append([]byte{}, line[:m[1]]...)
	out = fmt.Appendf(out, " X-GM-MSGID %d", id(uint32(uid)))
	return append(out, line[m[1]:]...)
}

// gmWatch is the FETCH in progress whose answer gets X-GM-MSGID.
type gmWatch struct {
	tag     string
	id      func(uid uint32) uint64
	partial []byte // a line not yet complete
}

// fetchRead rewrites a FETCH naming X-GM-MSGID in what the client sent
// (the client sends a command in one write; a command split across reads
// is passed on unchanged and refused by the server as before).
func (c *answerConn) fetchRead(p []byte, n int) int {
	id := c.msgID.Load()
	if id == nil || !bytes.Contains(bytes.ToUpper(p[:n]), []byte("X-GM-MSGID")) {
		return n
	}
	out, tag, ok := rewriteFetch(p[:n])
	if !ok {
		return n
	}
	c.wmu.Lock()
	c.watch = &gmWatch{tag: tag, id: *id}
	c.wmu.Unlock()
	return copy(p, out)
}

// fetchWrite adds X-GM-MSGID to the answer of the watched FETCH, whole
// lines at a time; it returns the bytes to write.
func (c *answerConn) fetchWrite(p []byte) []byte {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	w := c.watch
	if w == nil {
		return p
	}
	data := append(w.partial, p...)
	var out []byte
	for {
		i := bytes.Index(data, []byte("\r\n"))
		if i < 0 {
			break
		}
		line := data[:i+2]
		data = data[i+2:]
		out = append(out, addMsgID(line, w.id)...)
		if bytes.HasPrefix(line, []byte(w.tag+" ")) {
			c.watch = nil
			out = append(out, data...)
			data = nil
			break
		}
	}
	w.partial = append([]byte{}, data...)
	return out
}

// msgIDs assigns and keeps the X-GM-MSGID of an account's messages.
type msgIDs struct {
	next uint64
	ids  map[string]uint64 // folder + "\x00" + UID
}

func idKey(folder string, uid imap.UID) string {
	return folder + "\x00" + strconv.FormatUint(uint64(uid), 10)
}

// id is the message's X-GM-MSGID; a message the service did not deliver
// itself (moved to Trash, appended by a client) gets one derived from its
// place.
func (m *msgIDs) id(folder string, uid uint32) uint64 {
	if v, ok := m.ids[idKey(folder, imap.UID(uid))]; ok {
		return v
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(idKey(folder, imap.UID(uid))))
	return h.Sum64() >> 1
}

// GmailResetUIDValidity re-creates an account's INBOX with the messages it
// holds, under a new UIDVALIDITY (as after a server-side restore): their
// UIDs are new, their X-GM-MSGID and internal dates the same. Flags are
// not kept.
func (s *Server) GmailResetUIDValidity(account string) error {
	if s.gmail == nil {
		return errors.New("emulator: no Gmail IMAP service")
	}
	u := s.gmail.user(account)
	u.mu.Lock()
	defer u.mu.Unlock()
	sess := imapmemserver.NewUserSession(u.mem)
	defer sess.Close()
	if _, err := sess.Select("INBOX", nil); err != nil {
		return err
	}
	found, err := sess.Search(imapserver.NumKindUID, &imap.SearchCriteria{}, &imap.SearchOptions{})
	if err != nil {
		return err
	}
	type kept struct {
		raw  []byte
		id   uint64
		all  imap.UID
		date time.Time
	}
	var msgs []kept
	for _, uid := range found.AllUIDs() {
		raw, ok := u.raw[uid]
		if !ok {
			continue
		}
		msgs = append(msgs, kept{raw, u.ids.id("INBOX", uint32(uid)), u.inAll[uid], u.dates[uid]})
	}
	_ = sess.Unselect()
	if err := u.mem.Delete("INBOX"); err != nil {
		return err
	}
	if err := u.mem.Create("INBOX", nil); err != nil {
		return err
	}
	u.inAll, u.raw, u.dates = map[imap.UID]imap.UID{}, map[imap.UID][]byte{}, map[imap.UID]time.Time{}
	for _, m := range msgs {
		d, err := u.mem.Append("INBOX", literal{bytes.NewReader(m.raw)}, &imap.AppendOptions{Time: m.date})
		if err != nil {
			return err
		}
		u.inAll[d.UID], u.raw[d.UID], u.dates[d.UID] = m.all, m.raw, m.date
		u.ids.ids[idKey("INBOX", d.UID)] = m.id
	}
	return nil
}
