package mailbox

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/mailgate/mailgate/internal/imap"
)

// TooManyConnectionsWait is how long an agent waits after a server
// refused a login for the account's connection cap (Gmail's "Too many
// simultaneous connections"): connections of other clients close in
// minutes, and retrying at once only takes another slot's chance.
const TooManyConnectionsWait = 5 * time.Minute

// IMAPOptions configure NewIMAP.
type IMAPOptions struct {
	Name      string // mailgate mailbox name, used in keys
	Addr      string // host:port
	Security  string // tls, starttls or none; "" is imap.DefaultSecurity (tls)
	TLSConfig *tls.Config
	Username  string // the mailbox (user= in XOAUTH2); a shared mailbox works the same
	Mechanism string // xoauth2 (default) or oauthbearer
	// Bearer gives a valid access token (oauth.Manager.Bearer).
	Bearer    Bearer
	Folder    string // default INBOX
	BatchSize int    // messages per UID FETCH; default 100
	Logger    *slog.Logger
}

// NewIMAP returns a Dialer for an IMAP mailbox.
func NewIMAP(o IMAPOptions) Dialer {
	if o.Folder == "" {
		o.Folder = "INBOX"
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 100
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &imapDialer{o: o}
}

type imapDialer struct{ o IMAPOptions }

func (d *imapDialer) Dial(ctx context.Context) (Conn, error) {
	o := d.o
	c, err := imap.Dial(ctx, o.Addr, &imap.Options{Security: o.Security, TLSConfig: o.TLSConfig, Logger: o.Logger})
	if err != nil {
		return nil, imapError(o.Name, "", err)
	}
	sc, err := saslClient(ctx, o.Name, o.Addr, o.Mechanism, o.Username, o.Bearer.Token)
	if err != nil {
		c.Close()
		return nil, err
	}
	if err := c.Authenticate(ctx, sc); err != nil {
		c.Close()
		return nil, imapError(o.Name, StepAuth, err)
	}
	folder, err := resolveFolder(ctx, c, o.Folder)
	if err != nil {
		c.Close()
		return nil, imapError(o.Name, StepSelect, err)
	}
	mb, err := c.Select(ctx, folder)
	if err != nil {
		c.Close()
		return nil, imapError(o.Name, StepSelect, err)
	}
	return &imapConn{o: o, c: c, validity: strconv.FormatUint(uint64(mb.UIDValidity), 10)}, nil
}

// resolveFolder turns a special-use name (`\All`, `\Trash`, `\Sent`…:
// a folder setting that starts with a backslash) into the folder that has
// that attribute, or, on a server where no folder has it, into the name
// without the backslash ("Trash"). Other names are used as they are.
func resolveFolder(ctx context.Context, c *imap.Client, name string) (string, error) {
	if !strings.HasPrefix(name, `\`) {
		return name, nil
	}
	f, err := c.SpecialUse(ctx, name)
	if err != nil {
		return "", err
	}
	if f == "" {
		return strings.TrimPrefix(name, `\`), nil
	}
	return f, nil
}

// imapError classifies an internal/imap failure into the step an
// administrator acts on.
func imapError(name, step string, err error) error {
	e := &Error{Mailbox: name, Step: step, Err: err}
	var dnsErr *net.DNSError
	var ie *imap.Error
	switch {
	case errors.As(err, &dnsErr):
		e.Step, e.Temporary = StepDNS, dnsErr.Temporary()
		e.Hint = "check the host name"
	case errors.As(err, &ie):
		switch ie.Kind {
		case imap.KindTLS:
			e.Step = StepTLS
			var ua x509.UnknownAuthorityError
			var hn x509.HostnameError
			if errors.As(err, &ua) {
				e.Hint = "the server's certificate is not signed by a trusted CA: add its CA with tls_ca"
			} else if errors.As(err, &hn) {
				e.Hint = "the certificate does not name this host: use the host name it was issued for"
			}
		case imap.KindConnection:
			if e.Step == "" {
				e.Step = StepTCP
			}
			e.Temporary = true
		case imap.KindAuthFailed:
			e.Step, e.AuthFailed = StepAuth, true
			e.Hint = "the server refused the token: check the profile's scopes and the app's mail permissions"
		case imap.KindNotConnected:
			// Exchange took the token but cannot open the mailbox for it:
			// what to change is app.Diagnose's
			e.AuthFailed = true
		case imap.KindTokenExpired:
			e.TokenExpired, e.Temporary = true, true
		case imap.KindTooManyConnections:
			if e.Step == "" {
				e.Step = StepAuth
			}
			e.Temporary, e.Wait = true, TooManyConnectionsWait
			e.Hint = "the account has as many IMAP connections open as the server allows (Gmail: 15 per account, " +
				"counting every mail client, phone and other mailgate mailbox on it): close some; mailgate serve waits " +
				TooManyConnectionsWait.String() + " before it tries again"
		case imap.KindSessionExpired:
			e.Temporary, e.Reconnect = true, true
		default:
			if e.Step == "" {
				e.Step = StepTCP
			}
			e.Temporary = ie.Temporary()
		}
	default:
		if e.Step == "" {
			e.Step = StepTCP
		}
		var ne net.Error
		e.Temporary = errors.As(err, &ne)
	}
	return e
}

type imapConn struct {
	o        IMAPOptions
	c        *imap.Client
	validity string
}

func (c *imapConn) key(uid uint32) string {
	return fmt.Sprintf("%s/imap/%s/%d", c.o.Name, c.validity, uid)
}

// Scan lists the messages after the cursor, or every message (with
// Message-ID, size and date) when UIDVALIDITY changed.
func (c *imapConn) Scan(ctx context.Context, cur Cursor) (*Scan, error) {
	s := &Scan{Validity: c.validity, Next: Cursor{Validity: c.validity, Last: cur.Last}}
	if cur.Validity != "" && cur.Validity != c.validity {
		metas, err := c.c.Metadata(ctx, nil)
		if err != nil {
			return nil, imapError(c.o.Name, StepSelect, err)
		}
		s.Next.Last = ""
		for _, m := range metas {
			s.Items = append(s.Items, Item{UID: strconv.FormatUint(uint64(m.UID), 10), Key: c.key(m.UID), Size: m.Size, MessageID: m.MessageID, Date: m.Date})
			s.Next.Last = strconv.FormatUint(uint64(m.UID), 10)
		}
		return s, c.gmailIdentity(ctx, s.Items, nil)
	}
	last := uint64(0)
	if cur.Last != "" {
		var err error
		if last, err = strconv.ParseUint(cur.Last, 10, 32); err != nil {
			return nil, &Error{Mailbox: c.o.Name, Step: StepSelect, Err: fmt.Errorf("cursor %q: %w", cur.Last, err)}
		}
	}
	uids, err := c.c.UIDsAfter(ctx, uint32(last))
	if err != nil {
		return nil, imapError(c.o.Name, StepSelect, err)
	}
	for _, u := range uids {
		s.Items = append(s.Items, Item{UID: strconv.FormatUint(uint64(u), 10), Key: c.key(u), Size: -1})
		s.Next.Last = strconv.FormatUint(uint64(u), 10)
	}
	return s, c.gmailIdentity(ctx, s.Items, uids)
}

// GmailIdentityPrefix starts an Item.MessageID that is Gmail's X-GM-MSGID
// rather than the Message-ID header.
const GmailIdentityPrefix = "X-GM-MSGID:"

// gmailIdentity gives items on Gmail (X-GM-EXT-1) their X-GM-MSGID as
// identity, "X-GM-MSGID:<id>" in MessageID, which the ledger records at
// delivery and matches after a UIDVALIDITY change: Gmail keeps the id when
// UIDs change, and it exists for messages without a Message-ID header.
// uids nil asks for the whole folder.
func (c *imapConn) gmailIdentity(ctx context.Context, items []Item, uids []uint32) error {
	if len(items) == 0 || !c.c.Gmail() {
		return nil
	}
	ids, err := c.c.GmailMsgIDs(ctx, uids)
	if err != nil {
		return imapError(c.o.Name, StepSelect, err)
	}
	for i := range items {
		u, _ := strconv.ParseUint(items[i].UID, 10, 32)
		if id, ok := ids[uint32(u)]; ok {
			items[i].MessageID = GmailIdentityPrefix + strconv.FormatUint(id, 10)
		}
	}
	return nil
}

// Fetch streams the items in batches of BatchSize UIDs.
func (c *imapConn) Fetch(ctx context.Context, items []Item, deliver func(Item, io.Reader) error) error {
	byUID := make(map[uint32]Item, len(items))
	var uids []uint32
	for _, it := range items {
		u, err := strconv.ParseUint(it.UID, 10, 32)
		if err != nil {
			return &Error{Mailbox: c.o.Name, Step: StepFetch, Err: fmt.Errorf("uid %q: %w", it.UID, err)}
		}
		byUID[uint32(u)] = it
		uids = append(uids, uint32(u))
	}
	var deliverErr error
	for start := 0; start < len(uids); start += c.o.BatchSize {
		batch := uids[start:min(start+c.o.BatchSize, len(uids))]
		err := c.c.FetchBodies(ctx, batch, func(uid uint32, size int64, date time.Time, r io.Reader) error {
			it, ok := byUID[uid]
			if !ok {
				return nil
			}
			if it.Size < 0 {
				it.Size = size
			}
			if it.Date.IsZero() {
				it.Date = date
			}
			if err := deliver(it, r); err != nil {
				deliverErr = err
				return err
			}
			return nil
		})
		if deliverErr != nil {
			return deliverErr
		}
		if err != nil {
			return imapError(c.o.Name, StepFetch, err)
		}
	}
	return nil
}

// Ack marks, deletes or moves the items of the current UIDVALIDITY;
// items of an older one no longer name a message and count as done.
func (c *imapConn) Ack(ctx context.Context, items []Item, a After) error {
	prefix := c.o.Name + "/imap/" + c.validity + "/"
	var uids []uint32
	for _, it := range items {
		if !strings.HasPrefix(it.Key, prefix) {
			continue
		}
		u, err := strconv.ParseUint(it.UID, 10, 32)
		if err != nil {
			continue
		}
		uids = append(uids, uint32(u))
	}
	var err error
	switch a.Kind {
	case "seen", "":
		err = c.c.MarkSeen(ctx, uids)
	case "delete":
		err = c.delete(ctx, uids)
	case "move":
		var folder string
		if folder, err = resolveFolder(ctx, c.c, a.Folder); err == nil {
			err = c.c.Move(ctx, uids, folder)
		}
	case "keep":
	default:
		return &Error{Mailbox: c.o.Name, Step: StepAck, Err: fmt.Errorf("after %q", a.Kind)}
	}
	if err != nil {
		return imapError(c.o.Name, StepAck, err)
	}
	return nil
}

// delete deletes uids. On Gmail (X-GM-EXT-1) an expunge in INBOX only
// removes the Inbox label and the message stays in All Mail, so the
// messages are moved to the \Trash folder (found by its attribute, since
// its name is localized) instead; elsewhere they are flagged and expunged.
func (c *imapConn) delete(ctx context.Context, uids []uint32) error {
	if !c.c.Gmail() {
		return c.c.Delete(ctx, uids)
	}
	trash, err := c.c.SpecialUse(ctx, `\Trash`)
	if err != nil {
		return err
	}
	if trash == "" {
		return &Error{Mailbox: c.o.Name, Step: StepAck, Err: errors.New(`the Gmail server lists no \Trash folder: after: delete would only archive`)}
	}
	return c.c.Move(ctx, uids, trash)
}

// AckDuringFetch reports whether Ack with a may run while a Fetch is in
// progress on this connection: true for "seen" and "keep", whose UID STORE
// the client pipelines next to the UID FETCH (both name messages by UID,
// so RFC 9051 section 5.5 sees no ambiguity; go-imap's client is safe for
// concurrent commands). Delete and move expunge, which renumbers the
// messages a fetch is reporting, so they wait for the fetch.
func (c *imapConn) AckDuringFetch(a After) bool {
	return a.Kind == "seen" || a.Kind == "" || a.Kind == "keep"
}

// Wait waits for new mail with IDLE (NOOP polling without it).
func (c *imapConn) Wait(ctx context.Context, max time.Duration) error {
	if err := c.c.Idle(ctx, max); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return imapError(c.o.Name, StepFetch, err)
	}
	return nil
}

func (c *imapConn) Close() error { return c.c.Close() }
