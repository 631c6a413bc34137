// Package sink delivers incoming messages to where the application takes
// them, in two phases so that a message is never lost and never half
// there: Begin a delivery, write the raw bytes, then Commit (accept) or
// Abort (always safe, also after a failed write, and idempotent). Nothing
// is visible to the sink's consumer before Commit; batching sinks make
// committed messages durable and visible at Sync.
//
// "Exactly once" is at-least-once delivery plus an idempotency key the sink
// recognises plus the agent's ledger: the agent acknowledges a message on
// the mail server (\Seen, delete, move) only after Sync returned and the
// ledger recorded the delivery. Every message carries a key that is stable
// across restarts ("<mailbox>/imap/<uidvalidity>/<uid>",
// "<mailbox>/pop3/<uidl>", "<mailbox>/graph/<id>"). A sink that sees a key
// again keeps its first copy and says so (Receipt.Duplicate), so a message
// handed over twice after a crash reaches the consumer once.
//
// Implementations:
//   - Maildir (https://cr.yp.to/proto/maildir.html): one file per message,
//     bytes unchanged, tmp/ then new/; group commit with one syncfs(2) per
//     Sync (one fsync per file where there is no syncfs: not Linux), so no
//     file appears in new/ before its bytes are durable.
//   - Webhook: an HTTP POST of message/rfc822 signed with HMAC-SHA256
//     (headers and verification recipe on Webhook).
//   - Command: the message on a program's stdin; exit 0 accepts, 75
//     (EX_TEMPFAIL) is temporary.
//   - Store: mailgate's own store through the MessageStore interface.
//
// Use:
//  1. Build one sink per configured target (NewMaildir, NewWebhook,
//     NewCommand, NewStore); one sink may be shared by several goroutines.
//  2. Per message: d := s.Begin(ctx, msg); io.Copy(d, r); d.Commit(ctx),
//     or d.Abort() on any failure.
//  3. After a batch: s.Sync(ctx); only then record the batch as delivered
//     and acknowledge it on the server.
//  4. After taking a mailbox over from another process that shared the
//     sink: Rescan, if the sink is a Rescanner, before delivering.
//  5. Classify failures with IsPermanent (a permanent failure will fail
//     again for this message; others are retried later).
//
// Webhook and command deliveries are spooled to a temporary file while
// written, so a large message never sits in memory.
package sink

import (
	"context"
	"errors"
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

// Rescanner is a sink that learns the keys it holds when opened and may
// miss what another process delivers into the same place afterwards (a
// maildir that several serve instances share). Whoever takes a mailbox
// over from another process calls Rescan with the moment it took it,
// before delivering that mailbox's messages: every key delivered before
// since is then recognised.
type Rescanner interface {
	Rescan(ctx context.Context, since time.Time) error
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

// IsPermanent reports whether err holds a permanent *Error.
func IsPermanent(err error) bool {
	var se *Error
	return errors.As(err, &se) && se.Permanent
}
