package agent

import (
	"context"
	"time"

	"github.com/mailgate/mailgate/internal/mailbox"
	"github.com/mailgate/mailgate/internal/store"
)

// The tests run the agent against the real store (SQLite) through the
// same adapter the composition root uses (internal/app/adapters.go), which
// agent cannot import.

// storeLedger is the store as the agent's Ledger: the store keeps the
// ledger, cursors and refusals with row types of its own (it imports
// neither agent nor mailbox), converted here field by field. The store's
// other methods (RetryHeld, DropHeld, …) are promoted for the tests.
type storeLedger struct{ *store.Store }

func (l storeLedger) MailboxCursor(ctx context.Context, mb string) (mailbox.Cursor, error) {
	c, err := l.Store.MailboxCursor(ctx, mb)
	return mailbox.Cursor{Validity: c.Validity, Last: c.Last}, err
}

func (l storeLedger) SetMailboxCursor(ctx context.Context, mb string, c mailbox.Cursor) error {
	return l.Store.SetMailboxCursor(ctx, mb, store.Cursor{Validity: c.Validity, Last: c.Last})
}

func (l storeLedger) Delivered(ctx context.Context, mb string, keys []string) (map[string]LedgerState, error) {
	rows, err := l.Store.Delivered(ctx, mb, keys)
	if err != nil {
		return nil, err
	}
	out := make(map[string]LedgerState, len(rows))
	for k, s := range rows {
		out[k] = LedgerState(s)
	}
	return out, nil
}

func (l storeLedger) MarkDelivered(ctx context.Context, mb string, entries []LedgerEntry) error {
	rows := make([]store.LedgerEntry, len(entries))
	for i, e := range entries {
		rows[i] = store.LedgerEntry{Key: e.Key, UID: e.UID, MessageID: e.MessageID, Size: e.Size, Date: e.Date, SinkRef: e.SinkRef,
			State: store.LedgerState(e.State), DeliveredAt: e.DeliveredAt, AckedAt: e.AckedAt}
	}
	return l.Store.MarkDelivered(ctx, mb, rows)
}

func (l storeLedger) MarkAcked(ctx context.Context, mb string, keys []string) error {
	return l.Store.MarkAcked(ctx, mb, keys)
}

func ledgerEntry(r store.LedgerEntry) LedgerEntry {
	return LedgerEntry{Key: r.Key, UID: r.UID, MessageID: r.MessageID, Size: r.Size, Date: r.Date, SinkRef: r.SinkRef,
		State: LedgerState(r.State), DeliveredAt: r.DeliveredAt, AckedAt: r.AckedAt}
}

func (l storeLedger) Unacked(ctx context.Context, mb string) ([]LedgerEntry, error) {
	rows, err := l.Store.Unacked(ctx, mb)
	if err != nil {
		return nil, err
	}
	out := make([]LedgerEntry, len(rows))
	for i, r := range rows {
		out[i] = ledgerEntry(r)
	}
	return out, nil
}

func (l storeLedger) FindByIdentity(ctx context.Context, mb, messageID string, size int64, date time.Time) (*LedgerEntry, error) {
	r, err := l.Store.FindByIdentity(ctx, mb, messageID, size, date)
	if r == nil || err != nil {
		return nil, err
	}
	e := ledgerEntry(*r)
	return &e, nil
}

func (l storeLedger) Rekey(ctx context.Context, mb, oldKey, newKey, newUID string) error {
	return l.Store.Rekey(ctx, mb, oldKey, newKey, newUID)
}

func (l storeLedger) HeldKeys(ctx context.Context, mb string) (map[string]HeldMessage, error) {
	rows, err := l.Store.HeldKeys(ctx, mb)
	if err != nil {
		return nil, err
	}
	out := make(map[string]HeldMessage, len(rows))
	for k, h := range rows {
		out[k] = HeldMessage{Mailbox: h.Mailbox, Key: h.Key, UID: h.UID, MessageID: h.MessageID, Subject: h.Subject, From: h.From,
			Size: h.Size, Date: h.Date, State: HeldState(h.State), Permanent: h.Permanent, Reason: h.Reason,
			Attempts: h.Attempts, FirstAt: h.FirstAt, LastAt: h.LastAt, NextAt: h.NextAt}
	}
	return out, nil
}

func (l storeLedger) PutHeld(ctx context.Context, mb string, hs []HeldMessage) error {
	rows := make([]store.HeldMessage, len(hs))
	for i, h := range hs {
		rows[i] = store.HeldMessage{Mailbox: h.Mailbox, Key: h.Key, UID: h.UID, MessageID: h.MessageID, Subject: h.Subject, From: h.From,
			Size: h.Size, Date: h.Date, State: store.HeldState(h.State), Permanent: h.Permanent, Reason: h.Reason,
			Attempts: h.Attempts, FirstAt: h.FirstAt, LastAt: h.LastAt, NextAt: h.NextAt}
	}
	return l.Store.PutHeld(ctx, mb, rows)
}

func (l storeLedger) RekeyHeld(ctx context.Context, mb, oldKey, newKey, newUID string) error {
	return l.Store.RekeyHeld(ctx, mb, oldKey, newKey, newUID)
}

func (l storeLedger) ForgetHeld(ctx context.Context, mb string, keys []string) error {
	return l.Store.ForgetHeld(ctx, mb, keys)
}
