// Package mailbox is what an agent consumes: one mailbox on a server, seen
// through the same small interface whatever the protocol (IMAP, POP3,
// Microsoft Graph). It owns the vocabulary of incoming mail — items, their
// idempotency keys, cursors, the "after" action — and the classification of
// failures into the steps an administrator can act on (DNS, TCP, TLS, auth,
// select, fetch, ack).
//
// The contract with the agent, in steps:
//
//  1. Dialer.Dial connects and authenticates (the token comes from a
//     callback, so this package never sees the token cache).
//  2. Conn.Scan(cursor) lists candidate messages newer than the cursor; the
//     agent drops those its ledger already acknowledged.
//  3. Conn.Fetch streams each item's raw bytes, in order, to the agent, which
//     hands them to a sink; nothing is marked on the server yet.
//  4. Only after the sink committed and the ledger recorded it, Conn.Ack
//     marks, moves or deletes the items. Ack is idempotent: items that have
//     vanished count as done.
//
// Idempotency keys are stable across restarts:
// "<mailbox>/imap/<uidvalidity>/<uid>", "<mailbox>/pop3/<uidl>",
// "<mailbox>/graph/<immutable id>".
package mailbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/mailgate/mailgate/internal/sasl"
)

// Item is one message on the server.
type Item struct {
	UID       string    // protocol id: IMAP UID (decimal), POP3 UIDL, Graph id
	Key       string    // idempotency and ledger key
	Size      int64     // bytes, -1 if unknown
	MessageID string    // Message-ID header when cheaply known; on Gmail "X-GM-MSGID:<id>" (GmailIdentityPrefix)
	Date      time.Time // server's internal date when known
}

// After is what happens to a message on the server once delivered.
type After struct {
	Kind   string // "seen", "delete", "keep" or "move"
	Folder string // for "move"
}

// ParseAfter reads the config form: seen, delete, keep or move:FOLDER.
func ParseAfter(s string) (After, error) {
	switch s {
	case "seen", "delete", "keep":
		return After{Kind: s}, nil
	case "":
		return After{Kind: "seen"}, nil
	}
	if f, ok := strings.CutPrefix(s, "move:"); ok && strings.TrimSpace(f) != "" {
		return After{Kind: "move", Folder: strings.TrimSpace(f)}, nil
	}
	return After{}, fmt.Errorf("after %q: want seen, delete, keep or move:FOLDER", s)
}

// String is the config form.
func (a After) String() string {
	if a.Kind == "move" {
		return "move:" + a.Folder
	}
	return a.Kind
}

// Cursor is where a mailbox's scan continues.
type Cursor struct {
	Validity  string // IMAP UIDVALIDITY; "" for POP3; GraphValidity for Graph
	Last      string // highest IMAP UID fully processed; "" = none
	DeltaLink string // Graph: the delta link the next scan starts from; "" = the whole folder
}

// GraphValidity is a Graph mailbox's Cursor.Validity: it never changes
// (a stale delta link is a full resync, not a new validity).
const GraphValidity = "graph"

// Stored is the cursor as it is persisted, two strings: the validity and
// the position, which is Last, or for Graph the delta link (the encoding
// older versions wrote, so stored cursors keep working).
func (c Cursor) Stored() (validity, position string) {
	if c.Validity == GraphValidity {
		return c.Validity, c.DeltaLink
	}
	return c.Validity, c.Last
}

// StoredCursor is the Cursor that Stored returned these strings for.
func StoredCursor(validity, position string) Cursor {
	if validity == GraphValidity {
		return Cursor{Validity: validity, DeltaLink: position}
	}
	return Cursor{Validity: validity, Last: position}
}

// Scan is the result of one look at the mailbox.
type Scan struct {
	// Validity is the current validity; it differs from Cursor.Validity
	// after an IMAP UIDVALIDITY change, when Items lists every message with
	// MessageID, Size and Date for the agent to match against its ledger.
	Validity string
	Items    []Item // candidates in server order (UID ascending)
	Next     Cursor // to store once all Items are delivered and acknowledged
}

// Conn is an authenticated connection to one mailbox.
type Conn interface {
	Scan(ctx context.Context, c Cursor) (*Scan, error)
	// Fetch streams the items' raw bytes in order; deliver must consume r
	// before it returns. An error from deliver stops the fetch and is
	// returned as is.
	Fetch(ctx context.Context, items []Item, deliver func(Item, io.Reader) error) error
	// Ack applies a to the items; idempotent; vanished items are fine.
	Ack(ctx context.Context, items []Item, a After) error
	Close() error
}

// Waiter is implemented by connections that can wait for new mail (IMAP
// IDLE, with NOOP polling where the server lacks IDLE).
type Waiter interface {
	// Wait returns nil when new mail may have arrived or max elapsed.
	Wait(ctx context.Context, max time.Duration) error
}

// Settler is implemented by connections that must know which fetched
// items were settled without an acknowledgement: refused by the sink and
// recorded as held (POP3, whose QUIT waits until every message RETRieved
// in the session is acknowledged or settled).
type Settler interface {
	Settled(items []Item)
}

// Bearer is the token hook of a mailbox: Token returns a valid access
// token for its login, Invalidate drops the cached one after the server
// refused or expired it (oauth.Manager.Bearer implements it).
type Bearer interface {
	Token(ctx context.Context) (string, error)
	Invalidate()
}

// Dialer opens connections to one configured mailbox.
type Dialer interface {
	Dial(ctx context.Context) (Conn, error)
}

// Steps of a mailbox session, as Error.Step.
const (
	StepDNS    = "dns"
	StepTCP    = "tcp"
	StepTLS    = "tls"
	StepToken  = "token"
	StepAuth   = "auth"
	StepSelect = "select"
	StepFetch  = "fetch"
	StepAck    = "ack"
)

// Error is a failure of one step of a mailbox session, classified for the
// agent: reconnect with a fresh token once on TokenExpired or AuthFailed,
// back off on Temporary, report the rest.
type Error struct {
	Mailbox      string
	Step         string
	Temporary    bool
	AuthFailed   bool
	TokenExpired bool
	// Reconnect: the server ended the session as it routinely does (Gmail's
	// daily "Session expired"): connect again at once, it is no failure.
	Reconnect bool
	// Wait is the least time to wait before trying again, when the server
	// asks for more than the usual backoff (Gmail's connection cap).
	Wait time.Duration
	Hint string // what to change, when known
	Err  error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("mailbox ")
	if e.Mailbox != "" {
		b.WriteString(e.Mailbox + " ")
	}
	b.WriteString(e.Step + ": ")
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	if e.Hint != "" {
		b.WriteString(" (" + e.Hint + ")")
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// AsError returns the *Error in err's chain, if any.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// saslClient gets a token for a mailbox session and builds the
// mechanism's SASL client for the server at addr (OAUTHBEARER names its
// host and port). Failures are *Error at StepToken or StepAuth.
func saslClient(ctx context.Context, name, addr, mech, user string, token func(context.Context) (string, error)) (sasl.Client, error) {
	tok, err := token(ctx)
	if err != nil {
		return nil, &Error{Mailbox: name, Step: StepToken, Err: err}
	}
	host, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	sc, err := sasl.New(mech, user, tok, host, port)
	if err != nil {
		return nil, &Error{Mailbox: name, Step: StepAuth, Err: err}
	}
	return sc, nil
}
