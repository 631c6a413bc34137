// Package imap is mailgate's IMAP client: a thin layer over go-imap v2's
// imapclient (RFC 3501/9051) that adds what a mail gateway needs and the
// library leaves to its caller: connection security chosen explicitly
// (implicit TLS, STARTTLS that refuses to continue in plaintext, or none),
// contexts on every call, SASL with the error-challenge path, streaming
// fetches that never hold a whole message, and errors classified into the
// cases an agent acts on — Exchange Online's "AccessTokenExpired" BYE and its
// "User is authenticated but not connected" after a successful
// AUTHENTICATE among them.
//
// Use it in steps: Dial, Authenticate with a sasl.Client (internal/sasl's
// XOAUTH2 or OAUTHBEARER), Select a folder, UIDsAfter or Metadata to find
// messages, FetchBodies to stream them, then MarkSeen, Delete or Move, and
// Idle to wait for more. It imports no storage, web or token code.
package imap

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"github.com/mailgate/mailgate/internal/loopback"
)

// DefaultSecurity is the Security an empty Options.Security means:
// implicit TLS (port 993).
const DefaultSecurity = "tls"

// Options configure Dial.
type Options struct {
	// Security is "tls" (implicit TLS, port 993), "starttls" (port 143,
	// refusing to go on without TLS) or "none"; "" is DefaultSecurity.
	Security string
	// TLSConfig verifies the server; nil verifies against the system roots
	// with the host of addr as server name.
	TLSConfig *tls.Config
	// Timeout bounds connecting and the greeting; 0 is 30 s.
	Timeout time.Duration
	// Logger receives debug lines; nil discards.
	Logger *slog.Logger
}

// Client is one IMAP connection.
type Client struct {
	c    *imapclient.Client
	log  *slog.Logger
	addr string

	mu      sync.Mutex
	exists  uint32
	newMail chan struct{}     // signalled on EXISTS growth
	bye     string            // text of a BYE received
	folders map[string]string // lower-case special-use attribute → folder, once listed

	authenticating atomic.Bool             // during AUTHENTICATE (see sniffConn.Write)
	gm             atomic.Pointer[gmFetch] // during GmailMsgIDs (gmail.go)
	gmMu           sync.Mutex              // one GmailMsgIDs at a time
}

// Dial connects to addr, reads the greeting and applies Security.
func Dial(ctx context.Context, addr string, opts *Options) (*Client, error) {
	if opts == nil {
		opts = &Options{}
	}
	sec := loopback.Security(cmp.Or(opts.Security, DefaultSecurity))
	conn, err := loopback.Connect(ctx, addr, sec, opts.TLSConfig, opts.Timeout)
	if err != nil {
		var ce *loopback.ConnectError
		if !errors.As(err, &ce) {
			return nil, fmt.Errorf("imap: %w", err)
		}
		if ce.Step == "tls" {
			return nil, &Error{Op: "tls", Kind: KindTLS, Err: ce.Err}
		}
		return nil, &Error{Op: "dial", Kind: KindConnection, Err: ce.Err}
	}
	cl := &Client{log: opts.Logger, addr: addr, newMail: make(chan struct{}, 1)}
	if cl.log == nil {
		cl.log = slog.New(slog.DiscardHandler)
	}
	copts := &imapclient.Options{
		TLSConfig: conn.TLSConfig,
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					cl.noteExists(*d.NumMessages)
				}
			},
		},
	}
	if sec == loopback.StartTLS {
		// NewStartTLS reads the greeting and sends STARTTLS; a server
		// without it answers BAD/NO and we stop there, never sending
		// credentials in plaintext.
		c, err := imapclient.NewStartTLS(cl.sniff(conn.Conn), copts)
		if err != nil {
			conn.Close()
			return nil, &Error{Op: "starttls", Kind: KindTLS, Err: fmt.Errorf("STARTTLS failed (does the server offer it? use security: tls on port 993): %w", err)}
		}
		cl.c = c
	} else {
		cl.c = imapclient.New(cl.sniff(conn.Conn), copts)
	}
	if err := cl.c.WaitGreeting(); err != nil {
		cl.c.Close()
		return nil, &Error{Op: "greeting", Kind: KindConnection, Err: err}
	}
	conn.Ready()
	return cl, nil
}

func (cl *Client) noteExists(n uint32) {
	cl.mu.Lock()
	grew := n > cl.exists
	cl.exists = n
	cl.mu.Unlock()
	if grew {
		select {
		case cl.newMail <- struct{}{}:
		default:
		}
	}
}

// watch closes the connection when ctx ends, which unblocks the library;
// the returned stop must be called when the operation is over.
func (cl *Client) watch(ctx context.Context) (stop func() bool) {
	return context.AfterFunc(ctx, func() { _ = cl.c.Close() })
}

// wrap classifies a failure of op, preferring the context's error.
func (cl *Client) wrap(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return &Error{Op: op, Kind: KindConnection, Err: ctx.Err()}
	}
	e := classifyErr(op, err)
	if ie, ok := e.(*Error); ok && ie.Kind == KindConnection {
		return cl.byeError(op, e)
	}
	return e
}

// Caps reports whether the server announced capability name.
func (cl *Client) Caps(name string) bool { return cl.c.Caps().Has(goimap.Cap(name)) }

// CapGmail is Gmail's extension capability (X-GM-MSGID, X-GM-LABELS…),
// how a client tells it talks to Gmail.
const CapGmail = "X-GM-EXT-1"

// Gmail reports whether the server is Gmail (it offers X-GM-EXT-1).
func (cl *Client) Gmail() bool { return cl.Caps(CapGmail) }

// SpecialUse returns the folder with special-use attribute attr (RFC 6154:
// `\All`, `\Trash`, `\Sent`, `\Junk`, `\Drafts`, `\Archive`), from
// one LIST "" "*" per connection, or "" when no folder has it. Gmail's
// folder names are localized ("[Google Mail]/Papierkorb"), so the
// attribute is the only reliable way to find them.
func (cl *Client) SpecialUse(ctx context.Context, attr string) (string, error) {
	cl.mu.Lock()
	listed := cl.folders
	cl.mu.Unlock()
	if listed == nil {
		stop := cl.watch(ctx)
		l, err := cl.c.List("", "*", nil).Collect()
		stop()
		if err != nil {
			return "", cl.wrap(ctx, "list", err)
		}
		listed = map[string]string{}
		for _, d := range l {
			for _, a := range d.Attrs {
				if _, ok := listed[strings.ToLower(string(a))]; !ok {
					listed[strings.ToLower(string(a))] = d.Mailbox
				}
			}
		}
		cl.mu.Lock()
		cl.folders = listed
		cl.mu.Unlock()
	}
	return listed[strings.ToLower(attr)], nil
}

// Authenticate runs AUTHENTICATE with sc. A refusal is an *Error of kind
// KindAuthFailed carrying the server's text; when sc kept the server's
// error challenge (interface{ AuthError() error }), it is joined in.
func (cl *Client) Authenticate(ctx context.Context, sc sasl.Client) error {
	defer cl.watch(ctx)()
	cl.authenticating.Store(true)
	err := cl.c.Authenticate(sc)
	cl.authenticating.Store(false)
	if err == nil {
		return nil
	}
	e := cl.wrap(ctx, "authenticate", err)
	var detail error
	if ae, ok := sc.(interface{ AuthError() error }); ok {
		detail = ae.AuthError()
	}
	var ie *Error
	if errors.As(e, &ie) && (ie.Kind == KindNo || detail != nil && ie.Kind == KindBad) {
		ie.Kind = KindAuthFailed
	}
	if detail != nil {
		return errors.Join(e, detail)
	}
	return e
}

// Mailbox is what SELECT reported.
type Mailbox struct {
	UIDValidity uint32
	UIDNext     uint32
	Exists      uint32
}

// Select opens folder read-write.
func (cl *Client) Select(ctx context.Context, folder string) (*Mailbox, error) {
	defer cl.watch(ctx)()
	d, err := cl.c.Select(folder, nil).Wait()
	if err != nil {
		return nil, cl.wrap(ctx, "select", err)
	}
	cl.mu.Lock()
	cl.exists = d.NumMessages
	cl.mu.Unlock()
	return &Mailbox{UIDValidity: d.UIDValidity, UIDNext: uint32(d.UIDNext), Exists: d.NumMessages}, nil
}

// UIDsAfter returns the UIDs greater than last, ascending. (UID SEARCH
// UID last+1:* also matches the highest UID when nothing is newer; that
// one is filtered out.)
func (cl *Client) UIDsAfter(ctx context.Context, last uint32) ([]uint32, error) {
	defer cl.watch(ctx)()
	var set goimap.UIDSet
	set.AddRange(goimap.UID(last+1), 0)
	d, err := cl.c.UIDSearch(&goimap.SearchCriteria{UID: []goimap.UIDSet{set}}, nil).Wait()
	if err != nil {
		return nil, cl.wrap(ctx, "search", err)
	}
	var out []uint32
	for _, u := range d.AllUIDs() {
		if uint32(u) > last {
			out = append(out, uint32(u))
		}
	}
	slices.Sort(out)
	return out, nil
}

// Meta is what Metadata returns per message.
type Meta struct {
	UID       uint32
	Size      int64
	Date      time.Time
	MessageID string
}

// Metadata fetches UID, size, internal date and Message-ID of uids (all
// messages when uids is nil), for resynchronising after a UIDVALIDITY
// change.
func (cl *Client) Metadata(ctx context.Context, uids []uint32) ([]Meta, error) {
	defer cl.watch(ctx)()
	set := uidSet(uids)
	if uids == nil {
		set = goimap.UIDSet{}
		set.AddRange(1, 0)
	}
	cmd := cl.c.Fetch(set, &goimap.FetchOptions{UID: true, RFC822Size: true, InternalDate: true, Envelope: true})
	var out []Meta
	for {
		msg := cmd.Next()
		if msg == nil {
			break
		}
		var m Meta
		for {
			item := msg.Next()
			if item == nil {
				break
			}
			switch it := item.(type) {
			case imapclient.FetchItemDataUID:
				m.UID = uint32(it.UID)
			case imapclient.FetchItemDataRFC822Size:
				m.Size = it.Size
			case imapclient.FetchItemDataInternalDate:
				m.Date = it.Time
			case imapclient.FetchItemDataEnvelope:
				if it.Envelope != nil {
					m.MessageID = it.Envelope.MessageID
				}
			}
		}
		if m.UID != 0 {
			out = append(out, m)
		}
	}
	if err := cmd.Close(); err != nil {
		return nil, cl.wrap(ctx, "fetch", err)
	}
	slices.SortFunc(out, func(a, b Meta) int { return int(int64(a.UID) - int64(b.UID)) })
	return out, nil
}

// FetchBodies streams the raw bytes of uids in one UID FETCH (BODY.PEEK[],
// so nothing is marked \Seen) to fn, in the server's order. fn must
// consume r before returning; an error from fn ends the fetch (the rest of
// the response is drained) and is returned unchanged. The server sends the
// messages back to back, so a batch costs one round trip.
func (cl *Client) FetchBodies(ctx context.Context, uids []uint32, fn func(uid uint32, size int64, date time.Time, r io.Reader) error) error {
	if len(uids) == 0 {
		return nil
	}
	defer cl.watch(ctx)()
	section := &goimap.FetchItemBodySection{Peek: true}
	cmd := cl.c.Fetch(uidSet(uids), &goimap.FetchOptions{UID: true, RFC822Size: true, InternalDate: true,
		BodySection: []*goimap.FetchItemBodySection{section}})
	var fnErr error
	for {
		msg := cmd.Next()
		if msg == nil {
			break
		}
		var uid uint32
		size := int64(-1)
		var date time.Time
		for {
			item := msg.Next()
			if item == nil {
				break
			}
			switch it := item.(type) {
			case imapclient.FetchItemDataUID:
				uid = uint32(it.UID)
			case imapclient.FetchItemDataRFC822Size:
				size = it.Size
			case imapclient.FetchItemDataInternalDate:
				date = it.Time
			case imapclient.FetchItemDataBodySection:
				if it.Literal == nil {
					continue
				}
				if fnErr != nil || uid == 0 {
					_, _ = io.Copy(io.Discard, it.Literal)
					continue
				}
				if err := fn(uid, size, date, it.Literal); err != nil {
					fnErr = err
				}
				_, _ = io.Copy(io.Discard, it.Literal)
			}
		}
	}
	err := cmd.Close()
	if fnErr != nil {
		return fnErr
	}
	return cl.wrap(ctx, "fetch", err)
}

// MarkSeen sets \Seen on uids.
func (cl *Client) MarkSeen(ctx context.Context, uids []uint32) error {
	return cl.store(ctx, uids, goimap.FlagSeen)
}

func (cl *Client) store(ctx context.Context, uids []uint32, flag goimap.Flag) error {
	if len(uids) == 0 {
		return nil
	}
	defer cl.watch(ctx)()
	err := cl.c.Store(uidSet(uids), &goimap.StoreFlags{Op: goimap.StoreFlagsAdd, Silent: true, Flags: []goimap.Flag{flag}}, nil).Close()
	return cl.wrap(ctx, "store", err)
}

// Delete sets \Deleted on uids and expunges them: UID EXPUNGE with UIDPLUS
// (only these messages); without UIDPLUS a plain EXPUNGE, which also
// removes messages another client flagged \Deleted.
func (cl *Client) Delete(ctx context.Context, uids []uint32) error {
	if len(uids) == 0 {
		return nil
	}
	if err := cl.store(ctx, uids, goimap.FlagDeleted); err != nil {
		return err
	}
	defer cl.watch(ctx)()
	var err error
	if cl.c.Caps().Has(goimap.CapUIDPlus) {
		err = cl.c.UIDExpunge(uidSet(uids)).Close()
	} else {
		err = cl.c.Expunge().Close()
	}
	return cl.wrap(ctx, "expunge", err)
}

// Move moves uids to folder (MOVE, or COPY + \Deleted + EXPUNGE where the
// server lacks MOVE). A missing folder is created once and the move
// retried, so "move:Processed" works on a fresh mailbox.
func (cl *Client) Move(ctx context.Context, uids []uint32, folder string) error {
	if len(uids) == 0 {
		return nil
	}
	defer cl.watch(ctx)()
	_, err := cl.c.Move(uidSet(uids), folder).Wait()
	if err != nil && isTryCreate(err) {
		if cerr := cl.c.Create(folder, nil).Wait(); cerr != nil && !isAlreadyExists(cerr) {
			return cl.wrap(ctx, "create", cerr)
		}
		_, err = cl.c.Move(uidSet(uids), folder).Wait()
	}
	if err != nil {
		return cl.wrap(ctx, "move", err)
	}
	if !cl.c.Caps().Has(goimap.CapMove) {
		// the library's fallback stored \Deleted; expunge only these
		if cl.c.Caps().Has(goimap.CapUIDPlus) {
			err = cl.c.UIDExpunge(uidSet(uids)).Close()
		} else {
			err = cl.c.Expunge().Close()
		}
	}
	return cl.wrap(ctx, "move", err)
}

func isTryCreate(err error) bool {
	var ie *goimap.Error
	return errors.As(err, &ie) && (ie.Code == goimap.ResponseCodeTryCreate || ie.Code == goimap.ResponseCodeNonExistent)
}

func isAlreadyExists(err error) bool {
	var ie *goimap.Error
	return errors.As(err, &ie) && ie.Code == goimap.ResponseCodeAlreadyExists
}

// Idle waits for new mail: IDLE until the server reports more messages,
// max elapses (capped at 28 minutes, before servers drop an idle client
// after 30) or ctx ends. Without the IDLE capability it polls with NOOP
// every poll interval (10 s). It returns nil in both the new-mail and the
// timeout case.
func (cl *Client) Idle(ctx context.Context, max time.Duration) error {
	if max <= 0 || max > 28*time.Minute {
		max = 28 * time.Minute
	}
	timer := time.NewTimer(max)
	defer timer.Stop()
	select { // mail that arrived before we started
	case <-cl.newMail:
		return nil
	default:
	}
	if !cl.c.Caps().Has(goimap.CapIdle) {
		tick := time.NewTicker(10 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-timer.C:
				return nil
			case <-cl.newMail:
				return nil
			case <-tick.C:
				if err := cl.Noop(ctx); err != nil {
					return err
				}
			}
		}
	}
	idle, err := cl.c.Idle()
	if err != nil {
		return cl.wrap(ctx, "idle", err)
	}
	var waitErr error
	select {
	case <-ctx.Done():
		waitErr = ctx.Err()
	case <-timer.C:
	case <-cl.newMail:
	case <-cl.c.Closed():
	}
	stop := cl.watch(ctx)
	defer stop()
	cerr := idle.Close()
	if cerr == nil {
		cerr = idle.Wait()
	}
	if waitErr != nil {
		return waitErr
	}
	return cl.wrap(ctx, "idle", cerr)
}

// Noop sends NOOP (which also collects pending EXISTS updates).
func (cl *Client) Noop(ctx context.Context) error {
	defer cl.watch(ctx)()
	return cl.wrap(ctx, "noop", cl.c.Noop().Wait())
}

// Close logs out (briefly) and closes the connection.
func (cl *Client) Close() error {
	done := make(chan struct{})
	go func() {
		_ = cl.c.Logout().Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
	return cl.c.Close()
}

func uidSet(uids []uint32) goimap.UIDSet {
	var s goimap.UIDSet
	for _, u := range uids {
		s.AddNum(goimap.UID(u))
	}
	return s
}
