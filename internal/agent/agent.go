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
)

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
	if err := replay(ctx, mb, conn, l, log, &st); err != nil {
		return st, err
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
	var p plan
	if cur.Validity != "" && scan.Validity != cur.Validity {
		log.Warn("agent: UIDVALIDITY changed; matching messages to the ledger", "mailbox", mb.Name, "old", cur.Validity, "new", scan.Validity)
		p, err = planResync(ctx, mb, l, scan.Items, held, now, &st)
	} else {
		p, err = planScan(ctx, mb, l, scan.Items, held, now)
	}
	if err != nil {
		return st, err
	}
	if len(p.ackOnly) > 0 {
		if err := ackAndRecord(ctx, mb, conn, l, p.ackOnly); err != nil {
			return st, err
		}
		st.Acked += len(p.ackOnly)
	}

	// 3. deliver in batches (see batches)
	b := &batches{ctx: ctx, mb: mb, conn: conn, l: l, log: log, progress: progress, st: &st, total: len(p.todo)}
	if pa, ok := conn.(pipelinedAcker); ok {
		b.pipelined = pa.AckDuringFetch(mb.After)
	}
	// never leave an acknowledgement running on the connection
	defer b.drain()
	dv := newDeliverer(ctx, mb, &st, now, p.held)
	dv.watch = p.dueTodo
	defer dv.close()
	if err := b.run(dv, p.todo, batch); err != nil {
		return st, err
	}
	if err := forgetGone(ctx, mb, l, log, p.dueTodo, dv.seen); err != nil {
		return st, err
	}
	if scan.Next != cur {
		if err := l.SetMailboxCursor(ctx, mb.Name, scan.Next); err != nil {
			return st, err
		}
	}
	return st, nil
}

// replay sends the server the acknowledgements the ledger owes it (a run
// that ended between recording a delivery and acknowledging it), then
// records them.
func replay(ctx context.Context, mb *Mailbox, conn mailbox.Conn, l Ledger, log *slog.Logger, st *Stats) error {
	pending, err := l.Unacked(ctx, mb.Name)
	if err != nil || len(pending) == 0 {
		return err
	}
	items := make([]mailbox.Item, len(pending))
	keys := make([]string, len(pending))
	for i, e := range pending {
		items[i] = mailbox.Item{UID: e.UID, Key: e.Key, Size: e.Size}
		keys[i] = e.Key
	}
	if err := conn.Ack(ctx, items, mb.After); err != nil {
		return err
	}
	if err := l.MarkAcked(ctx, mb.Name, keys); err != nil {
		return err
	}
	st.Replayed = len(pending)
	log.Info("agent: replayed acknowledgements", "mailbox", mb.Name, "n", len(pending))
	return nil
}

// plan is what a run does after the scan.
type plan struct {
	todo    []mailbox.Item // to fetch and deliver, in order
	ackOnly []mailbox.Item // delivered before, not yet acknowledged
	// dueTodo marks refused messages due again that the scan did not
	// list: if a run that fetched them sees none, they are gone from the
	// server
	dueTodo map[string]bool
	// held is what the ledger knows of refused messages (re-keyed after
	// a UIDVALIDITY change)
	held map[string]HeldMessage
}

// planResync matches the folder's messages to the ledger after a
// UIDVALIDITY change: matches are re-keyed, not redelivered. Refused
// messages are matched the same way; those not found are forgotten (if
// they are still there, they come as new).
func planResync(ctx context.Context, mb *Mailbox, l Ledger, scanned []mailbox.Item, held map[string]HeldMessage, now time.Time, st *Stats) (plan, error) {
	var p plan
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
	rekeyed := map[string]HeldMessage{}
	for _, it := range scanned {
		e, err := l.FindByIdentity(ctx, mb.Name, it.MessageID, it.Size, it.Date)
		if err != nil {
			return p, err
		}
		if e == nil {
			k, ok := heldBy[identity{it.MessageID, it.Size}]
			if !ok || it.MessageID == "" {
				p.todo = append(p.todo, it)
				continue
			}
			delete(heldBy, identity{it.MessageID, it.Size})
			if err := l.RekeyHeld(ctx, mb.Name, k, it.Key, it.UID); err != nil {
				return p, err
			}
			h := held[k]
			delete(held, k)
			h.Key, h.UID = it.Key, it.UID
			rekeyed[it.Key] = h
			if !h.SetAside(now) {
				p.todo = append(p.todo, it)
			}
			continue
		}
		if err := l.Rekey(ctx, mb.Name, e.Key, it.Key, it.UID); err != nil {
			return p, err
		}
		st.Rekeyed++
		if e.State != LedgerAcked {
			p.ackOnly = append(p.ackOnly, it)
		}
	}
	var stale []string
	for k := range held {
		stale = append(stale, k)
	}
	if err := l.ForgetHeld(ctx, mb.Name, stale); err != nil {
		return p, err
	}
	p.held = rekeyed
	return p, nil
}

// planScan sorts the scan's items, then refused messages due again that it
// does not list (past the cursor: IMAP, Graph), into new ones and ones
// delivered but not acknowledged.
func planScan(ctx context.Context, mb *Mailbox, l Ledger, scanned []mailbox.Item, held map[string]HeldMessage, now time.Time) (plan, error) {
	p := plan{held: held}
	items := scanned
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
		return p, err
	}
	for _, it := range items {
		switch states[it.Key] {
		case 0:
			if h, ok := held[it.Key]; ok && h.SetAside(now) {
				continue // held, dropped, or deferred and not due
			}
			p.todo = append(p.todo, it)
			if _, ok := held[it.Key]; ok && !inScan[it.Key] {
				if p.dueTodo == nil {
					p.dueTodo = map[string]bool{}
				}
				p.dueTodo[it.Key] = true
			}
		case LedgerDelivered:
			p.ackOnly = append(p.ackOnly, it)
		case LedgerAcked:
			// deleted, and listed again: the deletion did not take (a
			// POP3 session dropped before the QUIT that deletes, which
			// the connection does rather than let Gmail pop a message
			// the sink does not have yet); delete it again
			if mb.After.Kind == "delete" {
				p.ackOnly = append(p.ackOnly, it)
			}
		}
	}
	return p, nil
}

// forgetGone forgets the refused messages due again (dueTodo) that a run
// asked the server for and did not get (seen): they are gone.
func forgetGone(ctx context.Context, mb *Mailbox, l Ledger, log *slog.Logger, dueTodo, seen map[string]bool) error {
	var gone []string
	for k := range dueTodo {
		if !seen[k] {
			gone = append(gone, k)
		}
	}
	if len(gone) == 0 {
		return nil
	}
	log.Warn("agent: refused messages are no longer on the server; forgotten", "mailbox", mb.Name, "keys", gone)
	return l.ForgetHeld(ctx, mb.Name, gone)
}

// batches delivers a run's new messages in batches: fetch → sink → Sync →
// ledger → server → ledger. A batch's Sync and ledger record run in the
// background while the next batch is fetched; its acknowledgement on the
// server waits for both, so a message is never marked on the server
// before it is durable and recorded. The acknowledgement itself is sent
// once that fetch is over, or, when the connection can acknowledge during
// a fetch (a flag change pipelined next to a UID FETCH), sent at once and
// awaited at the next batch. Recording acknowledgements rides along with
// the next batch's background work; if the run ends first, the next run
// replays them.
type batches struct {
	ctx       context.Context
	mb        *Mailbox
	conn      mailbox.Conn
	l         Ledger
	log       *slog.Logger
	progress  Progress
	st        *Stats
	total     int  // messages the run delivers (for progress)
	pipelined bool // the acknowledgement may run during the next fetch

	prev   *syncing // the batch being made durable and recorded
	acking *syncing // acknowledgement sent, answer not yet read
	acked  []string // acknowledged on the server, not yet recorded
}

// run delivers todo in batches of size batch, then settles the last one
// and records what the server acknowledged.
func (b *batches) run(dv *deliverer, todo []mailbox.Item, batch int) error {
	for start := 0; start < len(todo); start += batch {
		items := todo[start:min(start+batch, len(todo))]
		if stop, err := b.one(dv, items, start+len(items)); stop {
			return err
		}
	}
	return b.finish()
}

// one fetches and delivers one batch, settles the previous one and starts
// making this one durable. It stops the run (with the run's error) when
// the fetch, the sink or the previous batch failed.
func (b *batches) one(dv *deliverer, items []mailbox.Item, through int) (stop bool, err error) {
	err = b.conn.Fetch(b.ctx, items, dv.deliver)
	werr := dv.wait()
	if errors.Is(err, errSinkFailed) {
		err = nil
	}
	err = errors.Join(err, werr)
	entries, delivered, refused := dv.take()
	// refused messages are recorded before the cursor moves past
	// them; if this fails, the run fails and they come again
	if len(refused) > 0 {
		herr := b.l.PutHeld(b.ctx, b.mb.Name, refused)
		err = errors.Join(err, herr)
		settled := make([]mailbox.Item, 0, len(refused))
		for _, h := range refused {
			b.log.Warn("agent: the sink refused a message", "mailbox", b.mb.Name, "key", h.Key, "state", string(h.State), "attempts", h.Attempts, "err", h.Reason)
			settled = append(settled, mailbox.Item{UID: h.UID, Key: h.Key})
		}
		// recorded as held: the connection need not keep them unsettled
		if s, ok := b.conn.(mailbox.Settler); ok && herr == nil {
			s.Settled(settled)
		}
	}
	// the previous batch: durable and recorded by now (or failed)
	if serr := b.settle(); serr != nil {
		// this batch is still made durable and recorded; the next
		// run replays its acknowledgement
		if len(entries) > 0 {
			serr = errors.Join(serr, syncAndRecord(b.ctx, b.mb, b.l, nil, entries))
		}
		return true, errors.Join(serr, err)
	}
	if len(entries) == 0 {
		if err != nil {
			return true, errors.Join(b.finish(), err)
		}
		return false, nil
	}
	cur := &syncing{delivered: delivered, through: through, done: make(chan error, 1)}
	ackedKeys := b.acked
	b.acked = nil
	go func() { cur.done <- syncAndRecord(b.ctx, b.mb, b.l, ackedKeys, entries) }()
	b.prev = cur
	// whatever was committed is made durable, recorded and
	// acknowledged, even when the fetch failed half-way
	if err != nil {
		return true, errors.Join(b.finish(), err)
	}
	return false, nil
}

// ackDone reads the answer to the acknowledgement in flight.
func (b *batches) ackDone() error {
	if b.acking == nil {
		return nil
	}
	a := b.acking
	b.acking = nil
	if err := <-a.acked; err != nil {
		return err
	}
	for _, it := range a.delivered {
		b.acked = append(b.acked, it.Key)
	}
	b.st.Acked += len(a.delivered)
	if b.progress != nil {
		b.progress(b.mb.Name, a.through, b.total)
	}
	return nil
}

// settle waits for the batch in flight to be durable and recorded, then
// acknowledges it.
func (b *batches) settle() error {
	aerr := b.ackDone()
	if b.prev == nil {
		return aerr
	}
	p := b.prev
	b.prev = nil
	if err := <-p.done; err != nil {
		return errors.Join(aerr, err)
	}
	if aerr != nil {
		return aerr
	}
	p.acked = make(chan error, 1)
	b.acking = p
	if b.pipelined {
		go func() { p.acked <- b.conn.Ack(b.ctx, p.delivered, b.mb.After) }()
		return nil
	}
	p.acked <- b.conn.Ack(b.ctx, p.delivered, b.mb.After)
	return b.ackDone()
}

// finish settles the last batch, reads its acknowledgement and records
// what the server acknowledged.
func (b *batches) finish() error {
	if err := b.settle(); err != nil {
		return err
	}
	if err := b.ackDone(); err != nil {
		return err
	}
	keys := b.acked
	b.acked = nil
	return b.l.MarkAcked(b.ctx, b.mb.Name, keys)
}

// drain waits for an acknowledgement still running on the connection.
func (b *batches) drain() {
	if b.acking != nil {
		<-b.acking.acked
	}
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
func syncAndRecord(ctx context.Context, mb *Mailbox, l Ledger, acked []string, entries []LedgerEntry) error {
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
