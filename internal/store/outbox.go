package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
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
	ids, err := s.EnqueueAll(ctx, []NewOutboxMessage{{Sender: sender, From: from, Rcpts: rcpts, Raw: raw}})
	if err != nil {
		return 0, err
	}
	return ids[0], nil
}

// NewOutboxMessage is a message to queue.
type NewOutboxMessage struct {
	Sender, From string
	Rcpts        []string
	Raw          []byte
}

// EnqueueAll stores messages for sending in one transaction (all or none)
// and returns their ids once they are durable; the outbox is woken once.
func (s *Store) EnqueueAll(ctx context.Context, msgs []NewOutboxMessage) ([]int64, error) {
	now := time.Now().UnixNano()
	ids := make([]int64, 0, len(msgs))
	senders := map[string]bool{}
	err := s.inTx(ctx, func(tx *txn) error {
		ids = ids[:0]
		for _, m := range msgs {
			senders[m.Sender] = true
		}
		if s.d.name == "postgres" {
			var err error
			if ids, err = enqueueRows(ctx, tx, msgs, now); err != nil {
				return err
			}
			// delivered at commit to every serve LISTENing (OutboxWake)
			for sender := range senders {
				if _, err := tx.Exec(ctx, "SELECT pg_notify(?, ?)", outboxChannel, sender); err != nil {
					return err
				}
			}
			return nil
		}
		rcpt, err := tx.Prepare(ctx, "INSERT INTO outbox_rcpts (outbox_id, rcpt, state) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
		if err != nil {
			return err
		}
		defer rcpt.Close()
		for _, m := range msgs {
			var id int64
			if err := tx.QueryRow(ctx, `INSERT INTO outbox (sender, mail_from, raw, state, next_attempt, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`, m.Sender, m.From, m.Raw, OutboxQueued, now, now, now).Scan(&id); err != nil {
				return err
			}
			for _, r := range m.Rcpts {
				if _, err := rcpt.ExecContext(ctx, id, r, OutboxQueued); err != nil {
					return err
				}
			}
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: enqueue: %w", err)
	}
	s.wakeOutbox()
	return ids, nil
}

// OutboxClaim is a worker's hold on the messages it takes: who holds
// them (an instance and connection name) and until when.
type OutboxClaim struct {
	By    string
	Until time.Time
}

// ClaimDue takes up to limit due messages of sender for the claimer c and
// marks them sending, all in one transaction (on PostgreSQL with SELECT …
// FOR UPDATE SKIP LOCKED, so that concurrent claimers get disjoint
// batches; SQLite's transactions are single-writer). Messages left in
// sending are taken again only when their claim lapsed: a crashed
// claimer's (they may have been sent: recovered counts them as possible
// duplicates, and their State is still OutboxSending in msgs). The
// messages come back with their attempts as before the claim; the claim
// counts one more. Release what is not sent; extend a claim that may
// outlive Until with ExtendClaim.
func (s *Store) ClaimDue(ctx context.Context, sender string, limit int, c OutboxClaim) (msgs []OutboxMessage, recovered int, err error) {
	now := time.Now().UnixNano()
	err = s.inTx(ctx, func(tx *txn) error {
		rows, err := tx.Query(ctx, `SELECT id, mail_from, raw, state, attempts, created_at FROM outbox
			WHERE sender = ? AND (state = ? AND next_attempt <= ? OR state = ? AND claim_until <= ?) ORDER BY id LIMIT ?`+s.d.skipLocked,
			sender, OutboxQueued, now, OutboxSending, now, limit)
		if err != nil {
			return err
		}
		byID := map[int64]int{}
		var ids []int64
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
			byID[m.ID] = len(msgs)
			msgs, ids = append(msgs, m), append(ids, m.ID)
		}
		rows.Close()
		if err := rows.Err(); err != nil || len(msgs) == 0 {
			return err
		}
		in, args := idList(ids)
		if _, err := tx.Exec(ctx, "UPDATE outbox SET state = ?, attempts = attempts + 1, claimed_by = ?, claim_until = ?, updated_at = ? WHERE id IN ("+in+")",
			append([]any{OutboxSending, c.By, c.Until.UnixNano(), now}, args...)...); err != nil {
			return err
		}
		rrows, err := tx.Query(ctx, "SELECT outbox_id, rcpt, state FROM outbox_rcpts WHERE outbox_id IN ("+in+") AND state <> ? ORDER BY outbox_id, rcpt",
			append(args, OutboxSent)...)
		if err != nil {
			return err
		}
		defer rrows.Close()
		for rrows.Next() {
			var id int64
			var r OutboxRcpt
			if err := rrows.Scan(&id, &r.Addr, &r.State); err != nil {
				return err
			}
			m := &msgs[byID[id]]
			m.Rcpts = append(m.Rcpts, r)
		}
		return rrows.Err()
	})
	if err != nil {
		return nil, 0, fmt.Errorf("store: outbox: %w", err)
	}
	return msgs, recovered, nil
}

// enqueueRows inserts msgs with multi-row INSERTs, the way to queue a
// chunk on PostgreSQL in a few round trips instead of one per message and
// recipient (SQLite, in-process, gains nothing from it). The ids are drawn
// from the sequence first, so each message's recipients get its id
// without relying on the order of RETURNING rows.
func enqueueRows(ctx context.Context, tx *txn, msgs []NewOutboxMessage, now int64) ([]int64, error) {
	rows, err := tx.Query(ctx, "SELECT nextval(pg_get_serial_sequence('outbox', 'id')) FROM generate_series(1, CAST(? AS integer))", len(msgs))
	if err != nil {
		return nil, err
	}
	ids, err := scanIDs(rows)
	if err != nil {
		return nil, err
	}
	if len(ids) != len(msgs) {
		return nil, fmt.Errorf("%d ids drawn for %d messages", len(ids), len(msgs))
	}
	// PostgreSQL takes at most 65,535 parameters in a statement
	const maxRows = 8000
	for i := 0; i < len(msgs); i += maxRows / 8 {
		chunk := msgs[i:min(i+maxRows/8, len(msgs))]
		args := make([]any, 0, 8*len(chunk))
		for j, m := range chunk {
			args = append(args, ids[i+j], m.Sender, m.From, m.Raw, OutboxQueued, now, now, now)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO outbox (id, sender, mail_from, raw, state, next_attempt, created_at, updated_at) VALUES "+
			valuesList(len(chunk), 8), args...); err != nil {
			return nil, err
		}
	}
	var args []any
	flush := func() error {
		if len(args) == 0 {
			return nil
		}
		_, err := tx.Exec(ctx, "INSERT INTO outbox_rcpts (outbox_id, rcpt, state) VALUES "+valuesList(len(args)/3, 3)+" ON CONFLICT DO NOTHING", args...)
		args = args[:0]
		return err
	}
	for i, m := range msgs {
		for _, r := range m.Rcpts {
			args = append(args, ids[i], r, OutboxQueued)
			if len(args) >= 3*maxRows {
				if err := flush(); err != nil {
					return nil, err
				}
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return ids, nil
}

// scanIDs reads rows of one integer column and closes rows.
func scanIDs(rows *sql.Rows) ([]int64, error) {
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// valuesList is "(?, ?), (?, ?)" for rows of cols placeholders.
func valuesList(rows, cols int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", cols), ", ") + ")"
	return strings.TrimSuffix(strings.Repeat(row+", ", rows), ", ")
}

// idList is "?, ?, …" for ids and the ids as arguments.
func idList(ids []int64) (string, []any) {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", "), args
}

// ReleaseClaim puts claimed messages that were not handed to the server
// back in the queue as they were (state queued, the claim's attempt taken
// back). Only messages still sending under by's claim are touched.
func (s *Store) ReleaseClaim(ctx context.Context, by string, ids ...int64) error {
	if len(ids) == 0 {
		return nil
	}
	in, args := idList(ids)
	_, err := s.exec(ctx, "UPDATE outbox SET state = ?, attempts = attempts - 1, claimed_by = '', claim_until = 0, updated_at = ? WHERE state = ? AND claimed_by = ? AND id IN ("+in+")",
		append([]any{OutboxQueued, time.Now().UnixNano(), OutboxSending, by}, args...)...)
	if err != nil {
		return fmt.Errorf("store: outbox: release: %w", err)
	}
	return nil
}

// ExtendClaim moves the lapse of by's claim on its messages still sending
// to until.
func (s *Store) ExtendClaim(ctx context.Context, by string, until time.Time) error {
	_, err := s.exec(ctx, "UPDATE outbox SET claim_until = ? WHERE state = ? AND claimed_by = ?", until.UnixNano(), OutboxSending, by)
	if err != nil {
		return fmt.Errorf("store: outbox: extend claim: %w", err)
	}
	return nil
}

// MarkSending records that the message is about to go to the server,
// outside any claim (a message so marked is taken again by the next
// ClaimDue: it stands for one a crash left behind).
func (s *Store) MarkSending(ctx context.Context, id int64) error {
	_, err := s.exec(ctx, "UPDATE outbox SET state = ?, attempts = attempts + 1, claimed_by = '', claim_until = 0, updated_at = ? WHERE id = ?", OutboxSending, time.Now().UnixNano(), id)
	return err
}

// SentMessage is one message the server accepted, with the recipients it
// refused (Reply holds the refusal).
type SentMessage struct {
	ID      int64
	Refused []OutboxRcpt
}

// MarkSentAll records in one transaction that the server accepted each
// message (group commit): the refused recipients failed with their reply,
// the others sent, the message sent.
func (s *Store) MarkSentAll(ctx context.Context, sent []SentMessage) error {
	if len(sent) == 0 {
		return nil
	}
	now := time.Now().UnixNano()
	sentIDs := make([]int64, len(sent))
	var refused int
	for i, m := range sent {
		sentIDs[i] = m.ID
		refused += len(m.Refused)
	}
	in, ids := idList(sentIDs)
	const (
		msgs  = "UPDATE outbox SET state = ?, last_error = '', claimed_by = '', claim_until = 0, updated_at = ? WHERE id IN ("
		rcpts = "UPDATE outbox_rcpts SET state = ?, reply = '' WHERE outbox_id IN ("
	)
	msgArgs := append([]any{OutboxSent, now}, ids...)
	rcptArgs := append(append([]any{OutboxSent}, ids...), OutboxFailed)
	var err error
	if s.d.name == "postgres" && refused == 0 {
		// the usual batch in one statement: one round trip and one WAL
		// flush (SQLite has no UPDATE in a WITH)
		_, err = s.exec(ctx, "WITH m AS ("+msgs+in+")) "+rcpts+in+") AND state <> ?", append(msgArgs, rcptArgs...)...)
	} else {
		// the refused recipients failed first, so that the batch's
		// statement, which skips failed ones, leaves them so
		err = s.inTx(ctx, func(tx *txn) error {
			for _, m := range sent {
				for _, r := range m.Refused {
					if _, err := tx.Exec(ctx, "UPDATE outbox_rcpts SET state = ?, reply = ? WHERE outbox_id = ? AND rcpt = ?", OutboxFailed, r.Reply, m.ID, r.Addr); err != nil {
						return err
					}
				}
			}
			if _, err := tx.Exec(ctx, msgs+in+")", msgArgs...); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, rcpts+in+") AND state <> ?", rcptArgs...)
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("store: outbox: record sent: %w", err)
	}
	return nil
}

// MarkSent records that the server accepted the message, all its
// recipients (MarkSentAll of one message, none refused).
func (s *Store) MarkSent(ctx context.Context, id int64) error {
	return s.MarkSentAll(ctx, []SentMessage{{ID: id}})
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
	ids, err := scanIDs(rows)
	if err != nil {
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

// SentRcpts is how many recipients one sent message had, and when.
type SentRcpts struct {
	At time.Time
	N  int
}

// OutboxSentRcpts lists the messages of sender sent since since, oldest
// first, with their recipients that were sent (the daily recipient
// budget).
func (s *Store) OutboxSentRcpts(ctx context.Context, sender string, since time.Time) ([]SentRcpts, error) {
	rows, err := s.query(ctx, `SELECT o.updated_at, COUNT(*) FROM outbox o JOIN outbox_rcpts r ON r.outbox_id = o.id
		WHERE o.sender = ? AND o.state = ? AND o.updated_at > ? AND r.state = ? GROUP BY o.id, o.updated_at ORDER BY o.updated_at`,
		sender, OutboxSent, since.UnixNano(), OutboxSent)
	if err != nil {
		return nil, fmt.Errorf("store: outbox: %w", err)
	}
	defer rows.Close()
	var out []SentRcpts
	for rows.Next() {
		var at int64
		var n int
		if err := rows.Scan(&at, &n); err != nil {
			return nil, fmt.Errorf("store: outbox: %w", err)
		}
		out = append(out, SentRcpts{At: time.Unix(0, at), N: n})
	}
	return out, rows.Err()
}

// OutboxQueuedBySender counts each sender's messages waiting to be sent
// (queued or sending).
func (s *Store) OutboxQueuedBySender(ctx context.Context) (map[string]int, error) {
	rows, err := s.query(ctx, "SELECT sender, COUNT(*) FROM outbox WHERE state IN (?, ?) GROUP BY sender", OutboxQueued, OutboxSending)
	if err != nil {
		return nil, fmt.Errorf("store: outbox: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var sender string
		var n int
		if err := rows.Scan(&sender, &n); err != nil {
			return nil, fmt.Errorf("store: outbox: %w", err)
		}
		out[sender] = n
	}
	return out, rows.Err()
}
