package mailbox

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"

	"github.com/mailgate/mailgate/internal/pop3"
)

// POP3Options configure NewPOP3 (the same shape as IMAPOptions).
type POP3Options struct {
	Name      string
	Addr      string
	Security  string // tls, starttls or none; "" is pop3.DefaultSecurity (tls)
	TLSConfig *tls.Config
	Username  string
	Mechanism string
	Bearer    Bearer
	Logger    *slog.Logger
}

// NewPOP3 returns a Dialer for a POP3 mailbox.
//
// POP3 has no flags and no folders: "seen" and "keep" leave the message on
// the server and the ledger alone prevents a second delivery; "delete"
// sends DELE for each message after the sink has it and then QUIT, which
// is when POP3 deletes (the connection is re-opened for the next batch);
// "move" is not possible. Keys are "<name>/pop3/<uidl>".
//
// QUIT is only sent when every message RETRieved in the session has been
// acknowledged (Ack: durable in the sink and recorded) or settled (Settled:
// refused by the sink and recorded as held): Gmail marks a
// message RETRieved in a session that ends with QUIT as downloaded and
// never lists it again, so a QUIT after a failed or refused delivery would
// lose that message. Otherwise the connection is dropped, which on every
// POP3 server undoes the session (RFC 1939 §6): an "after: delete" whose
// QUIT had to wait leaves those messages on the server, recorded as
// acknowledged (nothing is delivered twice), and the agent deletes them
// again when the next scan lists them.
func NewPOP3(o POP3Options) Dialer {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &pop3Dialer{o: o}
}

type pop3Dialer struct{ o POP3Options }

func pop3Error(name, step string, err error) error {
	e := &Error{Mailbox: name, Step: step, Err: err}
	var pe *pop3.Error
	var dnsErr *net.DNSError
	var ne net.Error
	switch {
	case errors.As(err, &dnsErr):
		e.Step, e.Temporary = StepDNS, dnsErr.Temporary()
	case errors.As(err, &pe):
		e.Temporary = pe.Temporary()
		if step == StepAuth {
			e.AuthFailed = true
			e.Hint = "the server refused the token: check the profile's scopes and the app's mail permissions"
		}
	case errors.As(err, &ne):
		e.Temporary = true
	}
	return e
}

func (d *pop3Dialer) connect(ctx context.Context) (*pop3.Client, error) {
	o := d.o
	c, err := pop3.Dial(ctx, o.Addr, &pop3.Options{Security: o.Security, TLSConfig: o.TLSConfig})
	if err != nil {
		step := StepTCP
		var ce *tls.CertificateVerificationError
		if errors.As(err, &ce) {
			step = StepTLS
		}
		return nil, pop3Error(o.Name, step, err)
	}
	sc, err := saslClient(ctx, o.Name, o.Addr, o.Mechanism, o.Username, o.Bearer.Token)
	if err != nil {
		c.Close()
		return nil, err
	}
	if err := c.Authenticate(sc); err != nil {
		c.Close()
		if ae := sc.AuthError(); ae != nil {
			err = errors.Join(err, ae)
		}
		return nil, pop3Error(o.Name, StepAuth, err)
	}
	return c, nil
}

func (d *pop3Dialer) Dial(ctx context.Context) (Conn, error) {
	c, err := d.connect(ctx)
	if err != nil {
		return nil, err
	}
	return &pop3Conn{d: d, c: c, unacked: map[string]bool{}}, nil
}

type pop3Conn struct {
	d       *pop3Dialer
	c       *pop3.Client
	nums    map[string]int  // UIDL → message number in this session
	unacked map[string]bool // UIDLs RETRieved in this session and not acknowledged yet
	deleted int             // DELEs sent in this session, waiting for a QUIT
}

func (c *pop3Conn) refresh() ([]pop3.Listing, error) {
	ls, err := c.c.UIDL()
	if err != nil {
		return nil, pop3Error(c.d.o.Name, StepSelect, err)
	}
	c.nums = make(map[string]int, len(ls))
	for _, l := range ls {
		c.nums[l.UIDL] = l.Num
	}
	return ls, nil
}

// Scan lists every message (POP3 has no "newer than"); the agent filters
// with its ledger.
func (c *pop3Conn) Scan(ctx context.Context, _ Cursor) (*Scan, error) {
	ls, err := c.refresh()
	if err != nil {
		return nil, err
	}
	s := &Scan{}
	for _, l := range ls {
		s.Items = append(s.Items, Item{UID: l.UIDL, Key: c.d.o.Name + "/pop3/" + l.UIDL, Size: l.Size})
	}
	return s, nil
}

// Fetch RETRs each item in turn, streaming.
func (c *pop3Conn) Fetch(ctx context.Context, items []Item, deliver func(Item, io.Reader) error) error {
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, ok := c.nums[it.UID]
		if !ok {
			continue // gone since the scan
		}
		r, err := c.c.Retr(n)
		if err != nil {
			return pop3Error(c.d.o.Name, StepFetch, err)
		}
		c.unacked[it.UID] = true
		if err := deliver(it, r); err != nil {
			return err
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			return pop3Error(c.d.o.Name, StepFetch, err)
		}
	}
	return nil
}

// Ack deletes (DELE, then QUIT and a new session for what follows once
// nothing RETRieved is left unacknowledged); seen and keep need nothing on
// POP3 but the note that the items may be popped.
func (c *pop3Conn) Ack(ctx context.Context, items []Item, a After) error {
	switch a.Kind {
	case "seen", "keep", "":
		c.acked(items)
		return nil
	case "move":
		return &Error{Mailbox: c.d.o.Name, Step: StepAck, Err: errors.New("POP3 has no folders: use after: delete, seen or keep")}
	case "delete":
	default:
		return &Error{Mailbox: c.d.o.Name, Step: StepAck, Err: fmt.Errorf("after %q", a.Kind)}
	}
	for _, it := range items {
		if num, ok := c.nums[it.UID]; ok {
			if err := c.c.Dele(num); err != nil {
				return pop3Error(c.d.o.Name, StepAck, err)
			}
			delete(c.nums, it.UID)
			c.deleted++
		}
	}
	c.acked(items)
	if c.deleted == 0 || len(c.unacked) > 0 {
		return nil // the QUIT waits until what was RETRieved since is acknowledged too
	}
	if err := c.c.Quit(); err != nil {
		return pop3Error(c.d.o.Name, StepAck, err)
	}
	nc, err := c.d.connect(ctx)
	if err != nil {
		return err
	}
	c.c, c.deleted = nc, 0
	_, err = c.refresh()
	return err
}

// Settled notes items the sink refused and the ledger holds: they do not
// keep the session from its QUIT (on Gmail, a held message is then no
// longer listed, except in "recent:" mode).
func (c *pop3Conn) Settled(items []Item) { c.acked(items) }

func (c *pop3Conn) acked(items []Item) {
	for _, it := range items {
		delete(c.unacked, it.UID)
	}
}

// Close ends the session with QUIT, or drops it when a message RETRieved
// in it was not acknowledged (see NewPOP3).
func (c *pop3Conn) Close() error {
	if len(c.unacked) > 0 {
		c.d.o.Logger.Info("mailbox: POP3 session dropped without QUIT: messages fetched were not acknowledged, so the server must not mark them downloaded",
			"mailbox", c.d.o.Name, "unacknowledged", len(c.unacked), "deletions_undone", c.deleted)
		return c.c.Close()
	}
	return c.c.Quit()
}
