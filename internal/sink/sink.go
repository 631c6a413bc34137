// Package sink delivers incoming messages to where the application takes
// them, in two phases so that a message is never lost and never half
// there: Begin a delivery, write the raw bytes, then Commit (accept) or
// Abort (always safe, also after a failed write). Nothing is visible to the
// sink's consumer before Commit; batching sinks make committed messages
// durable and visible at Sync, and the agent acknowledges a message on the
// mail server only after Sync returned.
//
// Every message carries an idempotency key that is stable across restarts
// ("<mailbox>/imap/<uidvalidity>/<uid>", …). A sink that sees a key again
// keeps its first copy and says so (Receipt.Duplicate), which is what makes
// "exactly once" hold across crashes: the agent may hand a message over
// twice, the consumer sees it once.
//
// Implementations: Maildir (one file per message, tmp/ → new/, group
// commit with one syncfs per batch), Command (the message on a program's
// stdin, exit 0 accepts) and Webhook (an HTTP POST signed with HMAC-SHA256).
package sink

import (
	"context"
	"fmt"
	"io"
	"time"
)

// Message describes one delivery.
type Message struct {
	Mailbox    string    // mailgate mailbox name
	Key        string    // idempotency key, stable across restarts
	Size       int64     // bytes when known, else -1
	ReceivedAt time.Time // the server's internal date; zero when unknown
}

// Sink receives messages.
type Sink interface {
	// Begin starts one delivery. Nothing is visible before Commit.
	Begin(ctx context.Context, m Message) (Delivery, error)
	// Sync returns once every delivery committed so far is durable and
	// visible. Sinks that are durable at Commit return nil at once.
	Sync(ctx context.Context) error
	Close() error
}

// Delivery is one message being written.
type Delivery interface {
	io.Writer // the raw message bytes, unchanged
	// Commit accepts the message; for batching sinks it is durable and
	// visible at the next Sync.
	Commit(ctx context.Context) (Receipt, error)
	// Abort discards the delivery; always safe and idempotent.
	Abort() error
}

// Receipt says what Commit did.
type Receipt struct {
	Duplicate bool   // the key was delivered before: the first copy was kept
	Ref       string // where it went: file path, HTTP status, exit status
}

// Error is a sink failure the agent must classify: a permanent one (a
// webhook's 4xx, a command's exit status) will fail again for this
// message; a temporary one is retried later.
type Error struct {
	Sink      string
	Permanent bool
	Err       error
}

func (e *Error) Error() string {
	kind := "temporary"
	if e.Permanent {
		kind = "permanent"
	}
	return fmt.Sprintf("sink %s (%s): %v", e.Sink, kind, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }
