package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

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

// HeldMessage is a message a sink refused (agent.HeldMessage's fields; the
// agent decides what its states mean).
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

const heldColumns = "mailbox, msg_key, uid, message_id, subject, sender, size, msg_date, state, permanent, reason, attempts, first_at, last_at, next_at"

func scanHeld(sc interface{ Scan(...any) error }) (HeldMessage, error) {
	var h HeldMessage
	var date, next sql.NullInt64
	var first, last int64
	var perm int
	if err := sc.Scan(&h.Mailbox, &h.Key, &h.UID, &h.MessageID, &h.Subject, &h.From, &h.Size, &date, &h.State, &perm, &h.Reason,
		&h.Attempts, &first, &last, &next); err != nil {
		return h, err
	}
	h.Date, h.NextAt, h.Permanent = fromNanos(date), fromNanos(next), perm != 0
	h.FirstAt, h.LastAt = time.Unix(0, first), time.Unix(0, last)
	return h, nil
}

func (s *Store) heldRows(ctx context.Context, where string, args ...any) ([]HeldMessage, error) {
	rows, err := s.query(ctx, "SELECT "+heldColumns+" FROM held_messages "+where+" ORDER BY mailbox, first_at, msg_key", args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []HeldMessage
	for rows.Next() {
		h, err := scanHeld(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// Held lists the refused messages of one mailbox or ("") of all, oldest
// first; dropped ones are left out.
func (s *Store) Held(ctx context.Context, mb string) ([]HeldMessage, error) {
	where, args := "WHERE state <> ?", []any{string(HeldDropped)}
	if mb != "" {
		where += " AND mailbox = ?"
		args = append(args, mb)
	}
	out, err := s.heldRows(ctx, where, args...)
	if err != nil {
		return nil, fmt.Errorf("store: held messages: %w", err)
	}
	return out, nil
}

// HeldKeys returns every refused message of a mailbox, dropped ones
// included, by key: what the agent consults on each run.
func (s *Store) HeldKeys(ctx context.Context, mb string) (map[string]HeldMessage, error) {
	rows, err := s.heldRows(ctx, "WHERE mailbox = ?", mb)
	if err != nil {
		return nil, fmt.Errorf("store: held messages of mailbox %q: %w", mb, err)
	}
	out := make(map[string]HeldMessage, len(rows))
	for _, h := range rows {
		out[h.Key] = h
	}
	return out, nil
}

// PutHeld records refusals (insert or replace; FirstAt of an existing row
// is kept).
func (s *Store) PutHeld(ctx context.Context, mb string, hs []HeldMessage) error {
	if len(hs) == 0 {
		return nil
	}
	err := s.ledgerTx(ctx, mb, func(tx *txn) error {
		st, err := tx.Prepare(ctx, `INSERT INTO held_messages (`+heldColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (mailbox, msg_key) DO UPDATE SET uid = excluded.uid, message_id = excluded.message_id,
			subject = excluded.subject, sender = excluded.sender, size = excluded.size, msg_date = excluded.msg_date,
			state = excluded.state, permanent = excluded.permanent, reason = excluded.reason, attempts = excluded.attempts,
			last_at = excluded.last_at, next_at = excluded.next_at`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, h := range hs {
			perm := 0
			if h.Permanent {
				perm = 1
			}
			first, last := h.FirstAt, h.LastAt
			if last.IsZero() {
				last = time.Now()
			}
			if first.IsZero() {
				first = last
			}
			if _, err := st.ExecContext(ctx, mb, h.Key, h.UID, h.MessageID, h.Subject, h.From, h.Size, nanos(h.Date), string(h.State), perm,
				h.Reason, h.Attempts, first.UnixNano(), last.UnixNano(), nanos(h.NextAt)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: record refused messages of mailbox %q: %w", mb, err)
	}
	return nil
}

// RetryHeld asks the agent to try a refused message again on its next run;
// key "" retries every refused message of the mailbox. It returns how many
// were set to retry; ErrNotFound when a key names no refused message (a
// dropped one included).
func (s *Store) RetryHeld(ctx context.Context, mb, key string) (int, error) {
	q := "UPDATE held_messages SET state = ?, next_at = NULL WHERE mailbox = ? AND state <> ?"
	args := []any{string(HeldRetry), mb, string(HeldDropped)}
	if key != "" {
		q += " AND msg_key = ?"
		args = append(args, key)
	}
	res, err := s.exec(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("store: retry held messages of mailbox %q: %w", mb, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: retry held messages of mailbox %q: %w", mb, err)
	}
	if key != "" && n == 0 {
		return 0, fmt.Errorf("store: held message %q of mailbox %q: %w", key, mb, ErrNotFound)
	}
	return int(n), nil
}

// DropHeld lets a refused message go: the agent never fetches it again
// and leaves it on the server as it is. ErrNotFound when key names no
// refused message.
func (s *Store) DropHeld(ctx context.Context, mb, key string) error {
	res, err := s.exec(ctx, "UPDATE held_messages SET state = ?, next_at = NULL, last_at = ? WHERE mailbox = ? AND msg_key = ? AND state <> ?",
		string(HeldDropped), time.Now().UnixNano(), mb, key, string(HeldDropped))
	if err != nil {
		return fmt.Errorf("store: drop held message %q of mailbox %q: %w", key, mb, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: drop held message %q of mailbox %q: %w", key, mb, err)
	}
	if n == 0 {
		return fmt.Errorf("store: held message %q of mailbox %q: %w", key, mb, ErrNotFound)
	}
	return nil
}

// HeldCounts returns, per mailbox and state, how many refused messages
// there are (dropped ones left out).
func (s *Store) HeldCounts(ctx context.Context) (map[string]map[HeldState]int, error) {
	rows, err := s.query(ctx, "SELECT mailbox, state, COUNT(*) FROM held_messages WHERE state <> ? GROUP BY mailbox, state", string(HeldDropped))
	if err != nil {
		return nil, fmt.Errorf("store: held message counts: %w", err)
	}
	defer rows.Close()
	out := map[string]map[HeldState]int{}
	for rows.Next() {
		var mb string
		var st HeldState
		var n int
		if err := rows.Scan(&mb, &st, &n); err != nil {
			return nil, fmt.Errorf("store: held message counts: %w", err)
		}
		if out[mb] == nil {
			out[mb] = map[HeldState]int{}
		}
		out[mb][st] = n
	}
	return out, rows.Err()
}

// RekeyHeld moves a refused message to a new key and UID (after a
// UIDVALIDITY change).
func (s *Store) RekeyHeld(ctx context.Context, mb, oldKey, newKey, newUID string) error {
	err := s.ledgerTx(ctx, mb, func(tx *txn) error {
		_, err := tx.Exec(ctx, "UPDATE held_messages SET msg_key = ?, uid = ? WHERE mailbox = ? AND msg_key = ?", newKey, newUID, mb, oldKey)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: rekey held message %q of mailbox %q: %w", oldKey, mb, err)
	}
	return nil
}

// ForgetHeld deletes refused messages' rows (their keys no longer name
// a message: the folder was recreated and they were not found in it).
func (s *Store) ForgetHeld(ctx context.Context, mb string, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	err := s.ledgerTx(ctx, mb, func(tx *txn) error {
		st, err := tx.Prepare(ctx, "DELETE FROM held_messages WHERE mailbox = ? AND msg_key = ?")
		if err != nil {
			return err
		}
		defer st.Close()
		for _, k := range keys {
			if _, err := st.ExecContext(ctx, mb, k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: forget held messages of mailbox %q: %w", mb, err)
	}
	return nil
}
