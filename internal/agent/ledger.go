package agent

import (
	"context"
	"errors"
	"time"

	"github.com/mailgate/mailgate/internal/mailbox"
)

// Ledger is the delivery ledger and the record of refused messages, in the
// agent's own terms. internal/store keeps both (tables delivery_ledger,
// mailbox_cursors and held_messages) with plain row types of its own and
// does not import agent; the composition root adapts one to the other.
//
// What an implementation must guarantee: MarkDelivered is durable when it
// returns, keeps the state of an entry already recorded (a replay never
// moves an acknowledged message back) and forgets the entries' refusals in
// the same transaction, so a retried message is never both delivered and
// held. Lookups of nothing return empty results, not errors. When the
// mailbox is served under a lease, every write fails with an error
// matching ErrLeaseLost once the lease is another's, and writes nothing.
type Ledger interface {
	MailboxCursor(ctx context.Context, mailbox string) (mailbox.Cursor, error)
	SetMailboxCursor(ctx context.Context, mailbox string, c mailbox.Cursor) error
	// Delivered returns the state of those keys that are in the ledger.
	Delivered(ctx context.Context, mailbox string, keys []string) (map[string]LedgerState, error)
	MarkDelivered(ctx context.Context, mailbox string, entries []LedgerEntry) error
	MarkAcked(ctx context.Context, mailbox string, keys []string) error
	// Unacked lists the entries delivered but not acknowledged on the
	// server, oldest first: what to replay after a crash.
	Unacked(ctx context.Context, mailbox string) ([]LedgerEntry, error)
	// FindByIdentity finds an entry by what survives a UIDVALIDITY
	// change (Message-ID, size, internal date when known); nil if none.
	FindByIdentity(ctx context.Context, mailbox, messageID string, size int64, date time.Time) (*LedgerEntry, error)
	Rekey(ctx context.Context, mailbox, oldKey, newKey, newUID string) error
	// refused messages (see the package doc)
	HeldKeys(ctx context.Context, mailbox string) (map[string]HeldMessage, error)
	PutHeld(ctx context.Context, mailbox string, hs []HeldMessage) error
	RekeyHeld(ctx context.Context, mailbox, oldKey, newKey, newUID string) error
	ForgetHeld(ctx context.Context, mailbox string, keys []string) error
}

// ErrLeaseLost is what a Ledger's writes return (matched with errors.Is)
// when another instance serves the mailbox now: its lease moved on. The
// run stops before any after-action, and the supervisor stops serving the
// mailbox instead of reconnecting.
var ErrLeaseLost = errors.New("agent: the mailbox's lease was lost")

// LedgerState is how far a message got.
type LedgerState int

const (
	// LedgerDelivered: the sink committed the message; the server does
	// not know.
	LedgerDelivered LedgerState = 1
	// LedgerAcked: the message was marked, moved or deleted on the server.
	LedgerAcked LedgerState = 2
)

func (s LedgerState) String() string {
	switch s {
	case LedgerDelivered:
		return "delivered"
	case LedgerAcked:
		return "acked"
	}
	return "unknown"
}

// LedgerEntry is one message in the delivery ledger.
type LedgerEntry struct {
	Key, UID, MessageID string
	Size                int64
	Date                time.Time
	SinkRef             string
	State               LedgerState
	DeliveredAt         time.Time
	AckedAt             time.Time
}

// HeldState is where a refused message stands.
type HeldState string

const (
	// HeldFailing: the sink refused it temporarily; it is not set aside
	// yet (the agent retries it on its next run, with the run's backoff).
	HeldFailing HeldState = "failing"
	// HeldDeferred: refused temporarily too often; set aside and retried
	// automatically at NextAt while the messages after it flow.
	HeldDeferred HeldState = "deferred"
	// HeldRefused: refused permanently; set aside until an administrator
	// retries or drops it.
	HeldRefused HeldState = "held"
	// HeldRetry: an administrator asked for another attempt (next run).
	HeldRetry HeldState = "retry"
	// HeldDropped: an administrator let it go; never fetched again.
	HeldDropped HeldState = "dropped"
)

// HeldMessage is a message a sink refused.
type HeldMessage struct {
	Mailbox   string
	Key, UID  string // the ledger key and the protocol id (IMAP UID, POP3 UIDL, Graph id)
	MessageID string
	Subject   string // from the header, when it was read
	From      string
	Size      int64
	Date      time.Time
	State     HeldState
	Permanent bool   // the last refusal was permanent
	Reason    string // the sink's last refusal
	Attempts  int    // deliveries tried and refused
	FirstAt   time.Time
	LastAt    time.Time
	NextAt    time.Time // deferred: when it is tried again
}

// SetAside reports whether the agent skips the message on its runs for
// now (held, dropped, or deferred and not yet due at now).
func (h *HeldMessage) SetAside(now time.Time) bool {
	switch h.State {
	case HeldRefused, HeldDropped:
		return true
	case HeldDeferred:
		return now.Before(h.NextAt)
	}
	return false
}
