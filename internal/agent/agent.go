// Package agent moves mail from mailboxes to sinks exactly once: for each
// mailbox it scans for new messages, streams each to the sink, records it
// in the delivery ledger once the sink made it durable, and only then marks,
// moves or deletes it on the server (then records that too).
//
// Exactly once is at-least-once delivery plus an idempotency key the sink
// recognises plus the ledger. After a crash:
//   - before the sink's Sync: the message is not in the ledger and is fetched
//     again; the sink sees the same key and keeps its first copy;
//   - after the ledger says delivered, before the server was told: RunOnce
//     first replays the acknowledgement from the ledger;
//   - after the server was told, before the ledger says acked: the
//     acknowledgement is repeated (it is idempotent).
//
// Batches overlap without weakening that order: while batch n+1 is
// fetched, batch n is synced and recorded in the background, and its
// acknowledgement goes to the server only once both are done (pipelined
// next to the next fetch when the connection allows it).
//
// A changed IMAP UIDVALIDITY is resynchronised by matching the folder's
// messages to ledger entries on Message-ID, size and internal date: matches
// are re-keyed, not redelivered.
//
// A message the sink refuses (a *sink.Error) does not stop the mailbox for
// good. Refusals are recorded in the store's held_messages before the
// cursor moves past them:
//   - permanent (a webhook's 4xx, a command's exit status other than 75):
//     the message is set aside as "held" and the run goes on with the next
//     one. Its after-action is not applied; later runs skip it without
//     fetching it, until an administrator retries it (state "retry": the
//     next run fetches and delivers it, then applies the after-action) or
//     drops it (state "dropped": never fetched again, left on the server
//     as it is);
//   - temporary (408, 429, 5xx, exit 75, a timeout): the run stops and the
//     supervisor backs off, as for any failure; the maxTemporary-th
//     temporary refusal in a row of the same message sets it aside as
//     "deferred" and the run goes on. A deferred message is retried
//     automatically once due, 1 minute later, then 2, 4 … up to an hour.
//
// Refused messages the scan no longer lists (IMAP and Graph scan past the
// cursor) are added to a run's work when due; one such a run finds gone
// from the server is forgotten. Recording a delivery in the
// ledger deletes its refusal in the same transaction. After a UIDVALIDITY
// change, refused messages are matched on Message-ID and size like ledger
// entries.
package agent

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sort"
	"time"

	"github.com/mailgate/mailgate/internal/mailbox"
	"github.com/mailgate/mailgate/internal/sink"
	"github.com/mailgate/mailgate/internal/store"
)

// Ledger is the delivery ledger (implemented by store.Store).
type Ledger interface {
	MailboxCursor(ctx context.Context, mailbox string) (mailbox.Cursor, error)
	SetMailboxCursor(ctx context.Context, mailbox string, c mailbox.Cursor) error
	Delivered(ctx context.Context, mailbox string, keys []string) (map[string]store.LedgerState, error)
	MarkDelivered(ctx context.Context, mailbox string, entries []store.LedgerEntry) error
	MarkAcked(ctx context.Context, mailbox string, keys []string) error
	Unacked(ctx context.Context, mailbox string) ([]store.LedgerEntry, error)
	FindByIdentity(ctx context.Context, mailbox, messageID string, size int64, date time.Time) (*store.LedgerEntry, error)
	Rekey(ctx context.Context, mailbox, oldKey, newKey, newUID string) error
	// refused messages (see the package doc)
	HeldKeys(ctx context.Context, mailbox string) (map[string]store.HeldMessage, error)
	PutHeld(ctx context.Context, mailbox string, hs []store.HeldMessage) error
	RekeyHeld(ctx context.Context, mailbox, oldKey, newKey, newUID string) error
	ForgetHeld(ctx context.Context, mailbox string, keys []string) error
}

// Mailbox is one configured mailbox as the agent runs it.
type Mailbox struct {
	Name      string
	Dialer    mailbox.Dialer
	Sink      sink.Sink
	After     mailbox.After
	BatchSize int // messages per sink Sync and ledger transaction; default 100
	// Idle makes Serve wait for new mail on an open connection (IMAP IDLE,
	// NOOP polling without it) instead of polling every Interval.
	Idle     bool
	Interval time.Duration // poll interval; default 60 s
	// Host is the server's host name, for the supervisor's per-host
	// connection cap ("" = no cap).
	Host string
	// Bearer is the mailbox's token (the one its Dialer logs in with); its
	// Invalidate is called once after the server refused or expired it, so
	// the next dial gets a fresh one. Nil: nothing to invalidate.
	Bearer mailbox.Bearer
	// Clock is the time refusals are recorded and deferred ones come due
	// by; nil is time.Now.
	Clock func() time.Time
}

// maxTemporary is how many temporary refusals in a row of one message stop
// a run (the supervisor's backoff applies) before it is set aside as
// deferred, so the messages after it flow.
const maxTemporary = 3

// Stats counts what one run did.
type Stats struct {
	Fetched    int // read from the server (each handed to the sink)
	Failed     int // the sink refused it or the copy failed (fetched again, or set aside: Held)
	Delivered  int // handed to the sink and committed
	Duplicates int // the sink already had them
	Acked      int // marked/moved/deleted on the server (or kept)
	Replayed   int // acknowledgements repeated from the ledger
	Rekeyed    int // matched after a UIDVALIDITY change
	Held       int // set aside this run: refused permanently, or deferred
	// the sink's refusals (*sink.Error) by kind; each is also in Failed
	RefusedPermanent, RefusedTemporary int
}

// Progress receives a count of messages delivered so far (for a progress
// bar); nil is fine.
type Progress func(mailbox string, done, total int)

// RunOnce connects, replays pending acknowledgements, delivers every new
// message and acknowledges it. An authentication failure or an expired
// token is retried once with a fresh token.
func RunOnce(ctx context.Context, mb *Mailbox, l Ledger, log *slog.Logger, progress Progress) (Stats, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var st Stats
	conn, err := dial(ctx, mb, log)
	if err != nil {
		return st, err
	}
	defer conn.Close()
	return run(ctx, mb, conn, l, log, progress)
}

// dial connects, retrying once with a fresh token when the server refused
// or expired the token.
func dial(ctx context.Context, mb *Mailbox, log *slog.Logger) (mailbox.Conn, error) {
	conn, err := mb.Dialer.Dial(ctx)
	if e, ok := mailbox.AsError(err); ok && (e.AuthFailed || e.TokenExpired) && mb.Bearer != nil {
		log.Info("agent: token refused, retrying with a fresh one", "mailbox", mb.Name, "err", err)
		mb.Bearer.Invalidate()
		conn, err = mb.Dialer.Dial(ctx)
	}
	return conn, err
}

func run(ctx context.Context, mb *Mailbox, conn mailbox.Conn, l Ledger, log *slog.Logger, progress Progress) (Stats, error) {
	var st Stats
	batch := mb.BatchSize
	if batch <= 0 {
		batch = 100
	}
	// 1. acknowledgements the ledger owes the server
	pending, err := l.Unacked(ctx, mb.Name)
	if err != nil {
		return st, err
	}
	if len(pending) > 0 {
		items := make([]mailbox.Item, len(pending))
		keys := make([]string, len(pending))
		for i, e := range pending {
			items[i] = mailbox.Item{UID: e.UID, Key: e.Key, Size: e.Size}
			keys[i] = e.Key
		}
		if err := conn.Ack(ctx, items, mb.After); err != nil {
			return st, err
		}
		if err := l.MarkAcked(ctx, mb.Name, keys); err != nil {
			return st, err
		}
		st.Replayed = len(pending)
		log.Info("agent: replayed acknowledgements", "mailbox", mb.Name, "n", len(pending))
	}

	// 2. what is new
	cur, err := l.MailboxCursor(ctx, mb.Name)
	if err != nil {
		return st, err
	}
	scan, err := conn.Scan(ctx, cur)
	if err != nil {
		return st, err
	}
	now := time.Now()
	if mb.Clock != nil {
		now = mb.Clock()
	}
	held, err := l.HeldKeys(ctx, mb.Name)
	if err != nil {
		return st, err
	}
	var todo, ackOnly []mailbox.Item
	// refused messages due again that the scan did not list: if a run
	// that fetched them sees none, they are gone from the server
	var dueTodo map[string]bool
	if cur.Validity != "" && scan.Validity != cur.Validity {
		log.Warn("agent: UIDVALIDITY changed; matching messages to the ledger", "mailbox", mb.Name, "old", cur.Validity, "new", scan.Validity)
		// refused messages are matched the same way; those not found
		// are forgotten (if they are still there, they come as new)
		type identity struct {
			id   string
			size int64
		}
		heldBy := map[identity]string{}
		for k, h := range held {
			if h.MessageID != "" {
				heldBy[identity{h.MessageID, h.Size}] = k
			}
		}
		rekeyed := map[string]store.HeldMessage{}
		for _, it := range scan.Items {
			e, err := l.FindByIdentity(ctx, mb.Name, it.MessageID, it.Size, it.Date)
			if err != nil {
				return st, err
			}
			if e == nil {
				k, ok := heldBy[identity{it.MessageID, it.Size}]
				if !ok || it.MessageID == "" {
					todo = append(todo, it)
					continue
				}
				delete(heldBy, identity{it.MessageID, it.Size})
				if err := l.RekeyHeld(ctx, mb.Name, k, it.Key, it.UID); err != nil {
					return st, err
				}
				h := held[k]
				delete(held, k)
				h.Key, h.UID = it.Key, it.UID
				rekeyed[it.Key] = h
				if !h.SetAside(now) {
					todo = append(todo, it)
				}
				continue
			}
			if err := l.Rekey(ctx, mb.Name, e.Key, it.Key, it.UID); err != nil {
				return st, err
			}
			st.Rekeyed++
			if e.State != store.Acked {
				ackOnly = append(ackOnly, it)
			}
		}
		var stale []string
		for k := range held {
			stale = append(stale, k)
		}
		if err := l.ForgetHeld(ctx, mb.Name, stale); err != nil {
			return st, err
		}
		held = rekeyed
	} else {
		// the scan's items, then refused messages due again that it does
		// not list (past the cursor: IMAP, Graph)
		items := scan.Items
		inScan := make(map[string]bool, len(items))
		for _, it := range items {
			inScan[it.Key] = true
		}
		var due []mailbox.Item
		for k, h := range held {
			if !inScan[k] && !h.SetAside(now) {
				due = append(due, mailbox.Item{UID: h.UID, Key: k, Size: h.Size, MessageID: h.MessageID, Date: h.Date})
			}
		}
		if len(due) > 0 {
			sort.Slice(due, func(i, j int) bool { return held[due[i].Key].FirstAt.Before(held[due[j].Key].FirstAt) })
			items = append(slices.Clip(items), due...)
		}
		keys := make([]string, len(items))
		for i, it := range items {
			keys[i] = it.Key
		}
		states, err := l.Delivered(ctx, mb.Name, keys)
		if err != nil {
			return st, err
		}
		for _, it := range items {
			switch states[it.Key] {
			case 0:
				if h, ok := held[it.Key]; ok && h.SetAside(now) {
					continue // held, dropped, or deferred and not due
				}
				todo = append(todo, it)
				if _, ok := held[it.Key]; ok && !inScan[it.Key] {
					if dueTodo == nil {
						dueTodo = map[string]bool{}
					}
					dueTodo[it.Key] = true
				}
			case store.Delivered:
				ackOnly = append(ackOnly, it)
			}
		}
	}
	if len(ackOnly) > 0 {
		if err := ackAndRecord(ctx, mb, conn, l, ackOnly); err != nil {
			return st, err
		}
		st.Acked += len(ackOnly)
	}

	// 3. deliver in batches: fetch → sink → Sync → ledger → server → ledger.
	// A batch's Sync and ledger record run in the background while the
	// next batch is fetched; its acknowledgement on the server waits for
	// both, so a message is never marked on the server before it is
	// durable and recorded. The acknowledgement itself is sent once that
	// fetch is over, or, when the connection can acknowledge during a
	// fetch (a flag change pipelined next to a UID FETCH), sent at once
	// and awaited at the next batch. Recording acknowledgements rides
	// along with the next batch's background work; if the run ends first,
	// the next run replays them.
	pipelined := false
	if pa, ok := conn.(pipelinedAcker); ok {
		pipelined = pa.AckDuringFetch(mb.After)
	}
	var prev *syncing
	var acking *syncing // acknowledgement sent, answer not yet read
	var acked []string  // acknowledged on the server, not yet recorded
	// ackDone reads the answer to the acknowledgement in flight
	ackDone := func() error {
		if acking == nil {
			return nil
		}
		a := acking
		acking = nil
		if err := <-a.acked; err != nil {
			return err
		}
		for _, it := range a.delivered {
			acked = append(acked, it.Key)
		}
		st.Acked += len(a.delivered)
		if progress != nil {
			progress(mb.Name, a.through, len(todo))
		}
		return nil
	}
	// settle waits for the batch in flight to be durable and recorded,
	// then acknowledges it
	settle := func() error {
		aerr := ackDone()
		if prev == nil {
			return aerr
		}
		p := prev
		prev = nil
		if err := <-p.done; err != nil {
			return errors.Join(aerr, err)
		}
		if aerr != nil {
			return aerr
		}
		p.acked = make(chan error, 1)
		acking = p
		if pipelined {
			go func() { p.acked <- conn.Ack(ctx, p.delivered, mb.After) }()
			return nil
		}
		p.acked <- conn.Ack(ctx, p.delivered, mb.After)
		return ackDone()
	}
	// finish settles the last batch, reads its acknowledgement and records
	// what the server acknowledged
	finish := func() error {
		if err := settle(); err != nil {
			return err
		}
		if err := ackDone(); err != nil {
			return err
		}
		keys := acked
		acked = nil
		return l.MarkAcked(ctx, mb.Name, keys)
	}
	// never leave an acknowledgement running on the connection
	defer func() {
		if acking != nil {
			<-acking.acked
		}
	}()
	dv := newDeliverer(ctx, mb, &st, now, held)
	dv.watch = dueTodo
	defer dv.close()
	for start := 0; start < len(todo); start += batch {
		items := todo[start:min(start+batch, len(todo))]
		err := conn.Fetch(ctx, items, dv.deliver)
		werr := dv.wait()
		if errors.Is(err, errSinkFailed) {
			err = nil
		}
		err = errors.Join(err, werr)
		entries, delivered, refused := dv.take()
		// refused messages are recorded before the cursor moves past
		// them; if this fails, the run fails and they come again
		if len(refused) > 0 {
			if herr := l.PutHeld(ctx, mb.Name, refused); herr != nil {
				err = errors.Join(err, herr)
			}
			for _, h := range refused {
				log.Warn("agent: the sink refused a message", "mailbox", mb.Name, "key", h.Key, "state", string(h.State), "attempts", h.Attempts, "err", h.Reason)
			}
		}
		// the previous batch: durable and recorded by now (or failed)
		if serr := settle(); serr != nil {
			// this batch is still made durable and recorded; the next
			// run replays its acknowledgement
			if len(entries) > 0 {
				serr = errors.Join(serr, syncAndRecord(ctx, mb, l, nil, entries))
			}
			return st, errors.Join(serr, err)
		}
		if len(entries) == 0 {
			if err != nil {
				return st, errors.Join(finish(), err)
			}
			continue
		}
		cur := &syncing{delivered: delivered, through: start + len(items), done: make(chan error, 1)}
		ackedKeys := acked
		acked = nil
		go func() { cur.done <- syncAndRecord(ctx, mb, l, ackedKeys, entries) }()
		prev = cur
		// whatever was committed is made durable, recorded and
		// acknowledged, even when the fetch failed half-way
		if err != nil {
			return st, errors.Join(finish(), err)
		}
	}
	if err := finish(); err != nil {
		return st, err
	}
	if len(dueTodo) > 0 {
		var gone []string
		for k := range dueTodo {
			if !dv.seen[k] {
				gone = append(gone, k)
			}
		}
		if len(gone) > 0 {
			log.Warn("agent: refused messages are no longer on the server; forgotten", "mailbox", mb.Name, "keys", gone)
			if err := l.ForgetHeld(ctx, mb.Name, gone); err != nil {
				return st, err
			}
		}
	}
	if scan.Next != cur {
		if err := l.SetMailboxCursor(ctx, mb.Name, scan.Next); err != nil {
			return st, err
		}
	}
	return st, nil
}

// syncing is a batch being made durable and recorded in the background,
// then acknowledged.
type syncing struct {
	delivered []mailbox.Item
	through   int        // messages of the run done once this batch is
	done      chan error // Sync and MarkDelivered's outcome
	acked     chan error // Ack's outcome
}

// pipelinedAcker is implemented by a mailbox.Conn whose Ack with a given
// after-action may run while a Fetch is in progress on the same
// connection (the IMAP adapter: a flag change is a UID STORE, which may be
// pipelined next to a UID FETCH, RFC 9051 section 5.5).
type pipelinedAcker interface {
	AckDuringFetch(a mailbox.After) bool
}

// syncAndRecord records acknowledgements the server already has (acked,
// from the previous batch), makes the sink's committed messages durable,
// then records them in the ledger as delivered.
func syncAndRecord(ctx context.Context, mb *Mailbox, l Ledger, acked []string, entries []store.LedgerEntry) error {
	if len(acked) > 0 {
		if err := l.MarkAcked(ctx, mb.Name, acked); err != nil {
			return err
		}
	}
	if err := mb.Sink.Sync(ctx); err != nil {
		return err
	}
	return l.MarkDelivered(ctx, mb.Name, entries)
}

func ackAndRecord(ctx context.Context, mb *Mailbox, conn mailbox.Conn, l Ledger, items []mailbox.Item) error {
	if err := conn.Ack(ctx, items, mb.After); err != nil {
		return err
	}
	keys := make([]string, len(items))
	for i, it := range items {
		keys[i] = it.Key
	}
	return l.MarkAcked(ctx, mb.Name, keys)
}
