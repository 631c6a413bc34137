package imap

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"

	goimap "github.com/emersion/go-imap/v2"
)

// X-GM-MSGID (Gmail's IMAP extensions, X-GM-EXT-1): a 64-bit message id,
// the same in every folder and across UIDVALIDITY changes. go-imap's client
// neither asks for it nor parses it (an unknown FETCH item breaks the
// connection), so GmailMsgIDs works on the wire, in sniffConn, for the one
// command it issues: "UID FETCH set (UID)" goes out as
// "UID FETCH set (UID X-GM-MSGID)", and until the command ends each
// untagged FETCH line loses its X-GM-MSGID item, which is kept, before the
// library reads it. While that runs, the connection's reads are cut at
// line ends; no other command is in flight (a Scan issues it alone).

// gmFetch is one GmailMsgIDs call.
type gmFetch struct {
	rewrote atomic.Bool
	mu      sync.Mutex
	ids     map[uint32]uint64
}

var (
	gmMsgIDItem = regexp.MustCompile(`(?i)X-GM-MSGID ([0-9]+)`)
	gmUIDItem   = regexp.MustCompile(`(?i)\bUID ([0-9]+)`)
)

// strip takes the X-GM-MSGID item out of an untagged FETCH line, keeping
// its value by UID.
func (g *gmFetch) strip(line []byte) []byte {
	if !bytes.HasPrefix(line, []byte("* ")) || !bytes.Contains(bytes.ToUpper(line), []byte(" FETCH (")) {
		return line
	}
	m := gmMsgIDItem.FindSubmatchIndex(line)
	if m == nil {
		return line
	}
	id, err := strconv.ParseUint(string(line[m[2]:m[3]]), 10, 64)
	rest := append(append([]byte{}, line[:m[0]]...), line[m[1]:]...)
	rest = bytes.ReplaceAll(bytes.ReplaceAll(bytes.ReplaceAll(rest, []byte("( "), []byte("(")), []byte(" )"), []byte(")")), []byte("  "), []byte(" "))
	if u := gmUIDItem.FindSubmatch(rest); u != nil && err == nil {
		if uid, err := strconv.ParseUint(string(u[1]), 10, 32); err == nil {
			g.mu.Lock()
			g.ids[uint32(uid)] = id
			g.mu.Unlock()
		}
	}
	return rest
}

// fetchWrite asks for X-GM-MSGID in the watched command (its end: the
// library writes a long command in several pieces).
func (g *gmFetch) fetchWrite(p []byte) []byte {
	if g.rewrote.Load() || !bytes.HasSuffix(p, []byte(" (UID)\r\n")) {
		return p
	}
	g.rewrote.Store(true)
	return append(append([]byte{}, p[:len(p)-len("(UID)\r\n")]...), "(UID X-GM-MSGID)\r\n"...)
}

// filter passes what the server sent through GmailMsgIDs's filter (g), or
// releases what it held back once the call is over (g nil).
func (s *sniffConn) filter(chunk []byte, g *gmFetch) {
	data := append(s.held, chunk...)
	s.held = nil
	if g == nil {
		s.out = append(s.out, data...)
		return
	}
	for {
		i := bytes.Index(data, []byte("\r\n"))
		if i < 0 {
			break
		}
		s.out = append(s.out, g.strip(data[:i+2])...)
		data = data[i+2:]
	}
	s.held = append([]byte(nil), data...)
}

// GmailMsgIDs returns the X-GM-MSGID of uids in the selected folder (all
// messages when uids is nil), by UID. Messages the server gave no id are
// missing from the map (a server without X-GM-EXT-1 gives none).
func (cl *Client) GmailMsgIDs(ctx context.Context, uids []uint32) (map[uint32]uint64, error) {
	set := uidSet(uids)
	if uids == nil {
		set = goimap.UIDSet{}
		set.AddRange(1, 0)
	} else if len(uids) == 0 {
		return map[uint32]uint64{}, nil
	}
	cl.gmMu.Lock()
	defer cl.gmMu.Unlock()
	g := &gmFetch{ids: map[uint32]uint64{}}
	cl.gm.Store(g)
	defer cl.gm.Store(nil)
	defer cl.watch(ctx)()
	cmd := cl.c.Fetch(set, &goimap.FetchOptions{UID: true})
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		_, _ = msg.Collect()
	}
	if err := cmd.Close(); err != nil {
		return nil, cl.wrap(ctx, "fetch", err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ids, nil
}
