package mailbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/mailgate/mailgate/internal/graph"
)

// GraphOptions configure NewGraph.
type GraphOptions struct {
	Name     string
	Client   *graph.Client
	Username string // the mailbox (UPN or address)
	Folder   string // well-known name or folder id; default inbox
	PageSize int    // delta page size; default 100
	Logger   *slog.Logger
}

// NewGraph returns a Dialer for a mailbox read through Microsoft Graph:
// new mail found with delta queries, immutable ids as keys
// ("<name>/graph/<id>"), the delta link kept in Cursor.DeltaLink. A stale delta
// link (410) starts a full resync; the ledger recognises what was already
// delivered.
func NewGraph(o GraphOptions) Dialer {
	if o.Folder == "" {
		o.Folder = "inbox"
	}
	if o.PageSize <= 0 {
		o.PageSize = 100
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &graphDialer{o: o}
}

type graphDialer struct{ o GraphOptions }

// Dial needs no connection: Graph is HTTP.
func (d *graphDialer) Dial(context.Context) (Conn, error) { return &graphConn{o: d.o}, nil }

type graphConn struct{ o GraphOptions }

func graphErr(name, step string, err error) error {
	e := &Error{Mailbox: name, Step: step, Err: err}
	var ge *graph.Error
	if errors.As(err, &ge) {
		e.Temporary = ge.Temporary()
		e.AuthFailed = ge.Status == 401 || ge.Status == 403
		e.Hint = ge.Hint()
	}
	return e
}

func (c *graphConn) Scan(ctx context.Context, cur Cursor) (*Scan, error) {
	msgs, link, err := c.o.Client.Delta(ctx, c.o.Username, c.o.Folder, cur.DeltaLink, c.o.PageSize)
	if errors.Is(err, graph.ErrSyncStateNotFound) {
		c.o.Logger.Warn("graph: delta state expired; full resync", "mailbox", c.o.Name)
		msgs, link, err = c.o.Client.Delta(ctx, c.o.Username, c.o.Folder, "", c.o.PageSize)
	}
	if err != nil {
		return nil, graphErr(c.o.Name, StepSelect, err)
	}
	s := &Scan{Validity: GraphValidity, Next: Cursor{Validity: GraphValidity, DeltaLink: link}}
	seen := map[string]bool{}
	for _, m := range msgs {
		if m.Removed != nil || seen[m.ID] {
			continue
		}
		seen[m.ID] = true
		s.Items = append(s.Items, Item{UID: m.ID, Key: fmt.Sprintf("%s/graph/%s", c.o.Name, m.ID), Size: -1,
			MessageID: m.InternetMessageID, Date: m.ReceivedDateTime})
	}
	return s, nil
}

func (c *graphConn) Fetch(ctx context.Context, items []Item, deliver func(Item, io.Reader) error) error {
	for _, it := range items {
		rc, err := c.o.Client.MIME(ctx, c.o.Username, it.UID)
		var ge *graph.Error
		if errors.As(err, &ge) && ge.Status == 404 {
			continue // gone since the scan
		}
		if err != nil {
			return graphErr(c.o.Name, StepFetch, err)
		}
		err = deliver(it, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func (c *graphConn) Ack(ctx context.Context, items []Item, a After) error {
	for _, it := range items {
		var err error
		switch a.Kind {
		case "seen", "":
			err = c.o.Client.MarkRead(ctx, c.o.Username, it.UID)
		case "delete":
			err = c.o.Client.Delete(ctx, c.o.Username, it.UID)
		case "move":
			err = c.o.Client.Move(ctx, c.o.Username, it.UID, a.Folder)
		case "keep":
		default:
			return &Error{Mailbox: c.o.Name, Step: StepAck, Err: fmt.Errorf("after %q", a.Kind)}
		}
		var ge *graph.Error
		if errors.As(err, &ge) && ge.Status == 404 {
			continue // vanished: done
		}
		if err != nil {
			return graphErr(c.o.Name, StepAck, err)
		}
	}
	return nil
}

func (c *graphConn) Close() error { return nil }
