package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The delivery ledger, the mailbox cursors and the refused messages
// (held.go) are the agent's (internal/agent declares them and its Ledger
// interface); the store keeps them with row types of its own that carry
// the same fields as plain values, so it imports neither agent nor
// mailbox. The composition root converts field by field.

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

// Cursor is where a mailbox's scan continues (mailbox.Cursor's fields).
type Cursor struct {
	Validity string // IMAP UIDVALIDITY; "" for POP3; "graph" for Graph
	Last     string // highest IMAP UID fully processed, or Graph's delta link (mailbox.Cursor.Stored); "" = none
}

// MailboxCursor returns where mailbox's scan continues; the zero Cursor
// when it never ran.
func (s *Store) MailboxCursor(ctx context.Context, mb string) (Cursor, error) {
	var c Cursor
	err := s.queryRow(ctx, "SELECT validity, last_uid FROM mailbox_cursors WHERE mailbox = ?", mb).Scan(&c.Validity, &c.Last)
	if errors.Is(err, sql.ErrNoRows) {
		return Cursor{}, nil
	}
	if err != nil {
		return c, fmt.Errorf("store: cursor of mailbox %q: %w", mb, err)
	}
	return c, nil
}

// SetMailboxCursor stores mailbox's cursor (fenced: see WithFence).
func (s *Store) SetMailboxCursor(ctx context.Context, mb string, c Cursor) error {
	err := s.ledgerTx(ctx, mb, func(tx *txn) error {
		_, err := tx.Exec(ctx, `INSERT INTO mailbox_cursors (mailbox, validity, last_uid, saved_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (mailbox) DO UPDATE SET validity = excluded.validity, last_uid = excluded.last_uid, saved_at = excluded.saved_at`,
			mb, c.Validity, c.Last, time.Now().UnixNano())
		return err
	})
	if err != nil {
		return fmt.Errorf("store: save cursor of mailbox %q: %w", mb, err)
	}
	return nil
}

// Delivered returns the ledger state of those keys that are in it.
func (s *Store) Delivered(ctx context.Context, mb string, keys []string) (map[string]LedgerState, error) {
	out := make(map[string]LedgerState, len(keys))
	for start := 0; start < len(keys); start += 500 {
		chunk := keys[start:min(start+500, len(keys))]
		args := []any{mb}
		for _, k := range chunk {
			args = append(args, k)
		}
		rows, err := s.query(ctx, "SELECT msg_key, state FROM delivery_ledger WHERE mailbox = ? AND msg_key IN ("+
			strings.TrimSuffix(strings.Repeat("?,", len(chunk)), ",")+")", args...)
		if err != nil {
			return nil, fmt.Errorf("store: ledger of mailbox %q: %w", mb, err)
		}
		for rows.Next() {
			var k string
			var st LedgerState
			if err := rows.Scan(&k, &st); err != nil {
				rows.Close()
				return nil, fmt.Errorf("store: ledger of mailbox %q: %w", mb, err)
			}
			out[k] = st
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// MarkDelivered records entries as delivered, in one durable transaction,
// and forgets them as refused (held_messages). An entry already in the ledger keeps its state (a replay never moves an
// acknowledged message back).
func (s *Store) MarkDelivered(ctx context.Context, mb string, entries []LedgerEntry) error {
	if len(entries) == 0 {
		return nil
	}
	now := time.Now().UnixNano()
	err := s.ledgerTx(ctx, mb, func(tx *txn) error {
		st, err := tx.Prepare(ctx, `INSERT INTO delivery_ledger (mailbox, msg_key, uid, message_id, size, msg_date, sink_ref, state, delivered_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (mailbox, msg_key) DO NOTHING`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, e := range entries {
			if _, err := st.ExecContext(ctx, mb, e.Key, e.UID, e.MessageID, e.Size, nanos(e.Date), e.SinkRef, int(LedgerDelivered), now); err != nil {
				return err
			}
		}
		// a refused message delivered at last is no longer held (one
		// look first: the mailbox usually has none)
		var held int
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM (SELECT 1 FROM held_messages WHERE mailbox = ? LIMIT 1) h", mb).Scan(&held); err != nil || held == 0 {
			return err
		}
		unhold, err := tx.Prepare(ctx, "DELETE FROM held_messages WHERE mailbox = ? AND msg_key = ?")
		if err != nil {
			return err
		}
		defer unhold.Close()
		for _, e := range entries {
			if _, err := unhold.ExecContext(ctx, mb, e.Key); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: record deliveries of mailbox %q: %w", mb, err)
	}
	return nil
}

// MarkAcked records that keys were acknowledged on the server.
func (s *Store) MarkAcked(ctx context.Context, mb string, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	now := time.Now().UnixNano()
	err := s.ledgerTx(ctx, mb, func(tx *txn) error {
		st, err := tx.Prepare(ctx, "UPDATE delivery_ledger SET state = ?, acked_at = ? WHERE mailbox = ? AND msg_key = ?")
		if err != nil {
			return err
		}
		defer st.Close()
		for _, k := range keys {
			if _, err := st.ExecContext(ctx, int(LedgerAcked), now, mb, k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: record acknowledgements of mailbox %q: %w", mb, err)
	}
	return nil
}

const ledgerColumns = "msg_key, uid, message_id, size, msg_date, sink_ref, state, delivered_at, acked_at"

// scanner adapts a function to scanEntry.
type scanner func(dest ...any) error

func (f scanner) Scan(dest ...any) error { return f(dest...) }

func scanEntry(sc interface{ Scan(...any) error }) (LedgerEntry, error) {
	var e LedgerEntry
	var date, acked sql.NullInt64
	var delivered int64
	if err := sc.Scan(&e.Key, &e.UID, &e.MessageID, &e.Size, &date, &e.SinkRef, &e.State, &delivered, &acked); err != nil {
		return e, err
	}
	e.Date, e.AckedAt = fromNanos(date), fromNanos(acked)
	e.DeliveredAt = time.Unix(0, delivered)
	return e, nil
}

// Unacked lists the entries delivered but not acknowledged on the server:
// what to replay after a crash.
func (s *Store) Unacked(ctx context.Context, mb string) ([]LedgerEntry, error) {
	rows, err := s.query(ctx, "SELECT "+ledgerColumns+" FROM delivery_ledger WHERE mailbox = ? AND state = ? ORDER BY delivered_at, msg_key",
		mb, int(LedgerDelivered))
	if err != nil {
		return nil, fmt.Errorf("store: unacknowledged messages of mailbox %q: %w", mb, err)
	}
	defer rows.Close()
	var out []LedgerEntry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, fmt.Errorf("store: unacknowledged messages of mailbox %q: %w", mb, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// FindByIdentity finds the entry of a message by what survives a
// UIDVALIDITY change: Message-ID, size and (when known) internal date.
// nil when none matches.
func (s *Store) FindByIdentity(ctx context.Context, mb, messageID string, size int64, date time.Time) (*LedgerEntry, error) {
	if messageID == "" {
		return nil, nil
	}
	rows, err := s.query(ctx, "SELECT "+ledgerColumns+" FROM delivery_ledger WHERE mailbox = ? AND message_id = ? AND size = ?",
		mb, messageID, size)
	if err != nil {
		return nil, fmt.Errorf("store: ledger lookup in mailbox %q: %w", mb, err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, err
		}
		if date.IsZero() || e.Date.IsZero() || e.Date.Equal(date) {
			return &e, nil
		}
	}
	return nil, rows.Err()
}

// Rekey moves an entry to a new key and UID (after a UIDVALIDITY change).
func (s *Store) Rekey(ctx context.Context, mb, oldKey, newKey, newUID string) error {
	err := s.ledgerTx(ctx, mb, func(tx *txn) error {
		_, err := tx.Exec(ctx, "UPDATE delivery_ledger SET msg_key = ?, uid = ? WHERE mailbox = ? AND msg_key = ?", newKey, newUID, mb, oldKey)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: rekey %q in mailbox %q: %w", oldKey, mb, err)
	}
	return nil
}

// LoggedDelivery is a ledger entry with its mailbox, for the delivery log.
type LoggedDelivery struct {
	Mailbox string
	LedgerEntry
}

// DeliveryLog returns the latest deliveries, newest first (at most limit),
// of one mailbox or ("") of all.
func (s *Store) DeliveryLog(ctx context.Context, mb string, limit int) ([]LoggedDelivery, error) {
	q := "SELECT mailbox, " + ledgerColumns + " FROM delivery_ledger"
	args := []any{}
	if mb != "" {
		q += " WHERE mailbox = ?"
		args = append(args, mb)
	}
	q += " ORDER BY delivered_at DESC LIMIT ?"
	args = append(args, limit)
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: delivery log: %w", err)
	}
	defer rows.Close()
	var out []LoggedDelivery
	for rows.Next() {
		var d LoggedDelivery
		// the mailbox, then the columns scanEntry reads
		withMailbox := scanner(func(dest ...any) error { return rows.Scan(append([]any{&d.Mailbox}, dest...)...) })
		if d.LedgerEntry, err = scanEntry(withMailbox); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// DeliveryCount is a mailbox's latest delivery and how many since a time.
type DeliveryCount struct {
	Last  time.Time
	Since int
}

// DeliveryCounts returns, per mailbox, when a message was last delivered
// and how many were delivered since since (the console's "today").
func (s *Store) DeliveryCounts(ctx context.Context, since time.Time) (map[string]DeliveryCount, error) {
	rows, err := s.query(ctx, `SELECT mailbox, MAX(delivered_at), SUM(CASE WHEN delivered_at >= ? THEN 1 ELSE 0 END)
		FROM delivery_ledger GROUP BY mailbox`, since.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("store: delivery counts: %w", err)
	}
	defer rows.Close()
	out := map[string]DeliveryCount{}
	for rows.Next() {
		var mb string
		var last, n int64
		if err := rows.Scan(&mb, &last, &n); err != nil {
			return nil, err
		}
		out[mb] = DeliveryCount{Last: time.Unix(0, last), Since: int(n)}
	}
	return out, rows.Err()
}
