package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Outbox states.
const (
	OutboxQueued  = "queued"
	OutboxSending = "sending"
	OutboxSent    = "sent"
	OutboxFailed  = "failed"
)

// OutboxMessage is one queued message.
type OutboxMessage struct {
	ID        int64
	Sender    string
	From      string
	Rcpts     []OutboxRcpt
	Raw       []byte
	State     string
	Attempts  int
	LastError string
	CreatedAt time.Time
}

// OutboxRcpt is a recipient's status.
type OutboxRcpt struct {
	Addr  string
	State string // queued, sent, failed
	Reply string // the server's reply for a failure
}

// Enqueue stores a message for sending; it returns once the message is
// durable (the store commits with synchronous=FULL / PostgreSQL's commit).
func (s *Store) Enqueue(ctx context.Context, sender, from string, rcpts []string, raw []byte) (int64, error) {
	now := time.Now().UnixNano()
	var id int64
	err := s.inTx(ctx, func(tx *txn) error {
		if err := tx.QueryRow(ctx, `INSERT INTO outbox (sender, mail_from, raw, state, next_attempt, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`, sender, from, raw, OutboxQueued, now, now, now).Scan(&id); err != nil {
			return err
		}
		for _, r := range rcpts {
			if _, err := tx.Exec(ctx, "INSERT INTO outbox_rcpts (outbox_id, rcpt, state) VALUES (?, ?, ?) ON CONFLICT DO NOTHING", id, r, OutboxQueued); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: enqueue: %w", err)
	}
	return id, nil
}

// ClaimDue returns up to limit due messages of sender. Messages left in
// "sending" by a crash are returned too (they may have been sent: the
// caller counts them as possible duplicates). Call MarkSending right
// before each one goes to the server. (One worker per store: several
// serve instances on one PostgreSQL store would each pick a message.)
func (s *Store) ClaimDue(ctx context.Context, sender string, limit int) (msgs []OutboxMessage, recovered int, err error) {
	now := time.Now().UnixNano()
	err = s.inTx(ctx, func(tx *txn) error {
		rows, err := tx.Query(ctx, `SELECT id, mail_from, raw, state, attempts, created_at FROM outbox
			WHERE sender = ? AND (state = ? AND next_attempt <= ? OR state = ?) ORDER BY id LIMIT ?`,
			sender, OutboxQueued, now, OutboxSending, limit)
		if err != nil {
			return err
		}
		for rows.Next() {
			var m OutboxMessage
			var created int64
			if err := rows.Scan(&m.ID, &m.From, &m.Raw, &m.State, &m.Attempts, &created); err != nil {
				rows.Close()
				return err
			}
			if m.State == OutboxSending {
				recovered++
			}
			m.Sender, m.CreatedAt = sender, time.Unix(0, created)
			msgs = append(msgs, m)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for i := range msgs {
			rrows, err := tx.Query(ctx, "SELECT rcpt, state FROM outbox_rcpts WHERE outbox_id = ? AND state <> ? ORDER BY rcpt", msgs[i].ID, OutboxSent)
			if err != nil {
				return err
			}
			for rrows.Next() {
				var r OutboxRcpt
				if err := rrows.Scan(&r.Addr, &r.State); err != nil {
					rrows.Close()
					return err
				}
				msgs[i].Rcpts = append(msgs[i].Rcpts, r)
			}
			rrows.Close()
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("store: outbox: %w", err)
	}
	return msgs, recovered, nil
}

// MarkSending records that the message is about to go to the server.
func (s *Store) MarkSending(ctx context.Context, id int64) error {
	_, err := s.exec(ctx, "UPDATE outbox SET state = ?, attempts = attempts + 1, updated_at = ? WHERE id = ?", OutboxSending, time.Now().UnixNano(), id)
	return err
}

// MarkSent records that the server accepted the message.
func (s *Store) MarkSent(ctx context.Context, id int64) error {
	now := time.Now().UnixNano()
	return s.inTx(ctx, func(tx *txn) error {
		if _, err := tx.Exec(ctx, "UPDATE outbox SET state = ?, last_error = '', updated_at = ? WHERE id = ?", OutboxSent, now, id); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "UPDATE outbox_rcpts SET state = ?, reply = '' WHERE outbox_id = ? AND state <> ?", OutboxSent, id, OutboxFailed)
		return err
	})
}

// MarkRetry puts the message back in the queue after a temporary failure.
func (s *Store) MarkRetry(ctx context.Context, id int64, next time.Time, reply string) error {
	_, err := s.exec(ctx, "UPDATE outbox SET state = ?, next_attempt = ?, last_error = ?, updated_at = ? WHERE id = ?",
		OutboxQueued, next.UnixNano(), reply, time.Now().UnixNano(), id)
	return err
}

// MarkFailed records a permanent failure: the whole message, or one
// recipient when rcpt is not "".
func (s *Store) MarkFailed(ctx context.Context, id int64, rcpt, reply string) error {
	now := time.Now().UnixNano()
	if rcpt != "" {
		_, err := s.exec(ctx, "UPDATE outbox_rcpts SET state = ?, reply = ? WHERE outbox_id = ? AND rcpt = ?", OutboxFailed, reply, id, rcpt)
		return err
	}
	return s.inTx(ctx, func(tx *txn) error {
		if _, err := tx.Exec(ctx, "UPDATE outbox SET state = ?, last_error = ?, updated_at = ? WHERE id = ?", OutboxFailed, reply, now, id); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "UPDATE outbox_rcpts SET state = ?, reply = ? WHERE outbox_id = ? AND state = ?", OutboxFailed, reply, id, OutboxQueued)
		return err
	})
}

// OutboxOldestQueued returns when the oldest queued message was queued;
// ok is false when nothing is queued.
func (s *Store) OutboxOldestQueued(ctx context.Context) (at time.Time, ok bool, err error) {
	var oldest sql.NullInt64
	if err := s.queryRow(ctx, "SELECT MIN(created_at) FROM outbox WHERE state = ?", OutboxQueued).Scan(&oldest); err != nil {
		return time.Time{}, false, fmt.Errorf("store: outbox: %w", err)
	}
	if !oldest.Valid {
		return time.Time{}, false, nil
	}
	return time.Unix(0, oldest.Int64), true, nil
}

// OutboxCounts returns how many messages are in each state.
func (s *Store) OutboxCounts(ctx context.Context) (map[string]int, error) {
	rows, err := s.query(ctx, "SELECT state, COUNT(*) FROM outbox GROUP BY state")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[st] = n
	}
	return out, rows.Err()
}

// OutboxMessageStatus returns one message's state and its recipients.
func (s *Store) OutboxMessageStatus(ctx context.Context, id int64) (*OutboxMessage, error) {
	m := &OutboxMessage{ID: id}
	err := s.queryRow(ctx, "SELECT sender, mail_from, state, attempts, last_error FROM outbox WHERE id = ?", id).
		Scan(&m.Sender, &m.From, &m.State, &m.Attempts, &m.LastError)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: outbox message %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	rows, err := s.query(ctx, "SELECT rcpt, state, reply FROM outbox_rcpts WHERE outbox_id = ? ORDER BY rcpt", id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var r OutboxRcpt
		if err := rows.Scan(&r.Addr, &r.State, &r.Reply); err != nil {
			return nil, err
		}
		m.Rcpts = append(m.Rcpts, r)
	}
	return m, rows.Err()
}

// Heartbeat records that a serve instance is alive.
func (s *Store) Heartbeat(ctx context.Context, instance string) error {
	_, err := s.exec(ctx, `INSERT INTO serve_heartbeats (instance, seen_at) VALUES (?, ?)
		ON CONFLICT (instance) DO UPDATE SET seen_at = excluded.seen_at`, instance, time.Now().UnixNano())
	return err
}

// ServeRunning reports whether a serve instance beat within maxAge.
func (s *Store) ServeRunning(ctx context.Context, maxAge time.Duration) (bool, error) {
	var n int
	err := s.queryRow(ctx, "SELECT COUNT(*) FROM serve_heartbeats WHERE seen_at > ?", time.Now().Add(-maxAge).UnixNano()).Scan(&n)
	return n > 0, err
}

// ForgetHeartbeat removes an instance's heartbeat (at a clean stop).
func (s *Store) ForgetHeartbeat(ctx context.Context, instance string) error {
	_, err := s.exec(ctx, "DELETE FROM serve_heartbeats WHERE instance = ?", instance)
	return err
}

// OutboxList returns the newest outbox messages (at most limit), with
// their recipients' states, without their bytes.
func (s *Store) OutboxList(ctx context.Context, limit int) ([]OutboxMessage, error) {
	return s.OutboxFind(ctx, OutboxFilter{}, limit)
}

// OutboxFilter selects outbox messages; an empty field selects all.
type OutboxFilter struct {
	State  string // OutboxQueued, OutboxSending, OutboxSent or OutboxFailed
	Sender string
}

// OutboxFind is OutboxList of the messages f selects.
func (s *Store) OutboxFind(ctx context.Context, f OutboxFilter, limit int) ([]OutboxMessage, error) {
	rows, err := s.query(ctx, `SELECT id FROM outbox WHERE (? = '' OR state = ?) AND (? = '' OR sender = ?)
		ORDER BY id DESC LIMIT ?`, f.State, f.State, f.Sender, f.Sender, limit)
	if err != nil {
		return nil, fmt.Errorf("store: outbox: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]OutboxMessage, 0, len(ids))
	for _, id := range ids {
		m, err := s.OutboxMessageStatus(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		var created int64
		if err := s.queryRow(ctx, "SELECT created_at FROM outbox WHERE id = ?", id).Scan(&created); err == nil {
			m.CreatedAt = time.Unix(0, created)
		}
		out = append(out, *m)
	}
	return out, nil
}
