package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

const chunkSize = 256 << 10

// Kept messages are sealed like the other secrets: each chunk with
// AES-256-GCM, bound to its message id and sequence number, and a marker
// chunk at sequence -1 holds the sealed number of chunks, so that a
// message is refused rather than returned cut short. Rows written before
// sealing (no marker chunk) are read as they are. What lists a message
// stays clear: its mailbox, key (mailbox/protocol/UIDVALIDITY/UID or the
// server's id), size and dates; nothing of its headers or body.
const (
	chunksTable = "message_chunks"
	markerSeq   = -1
)

func chunkAD(id int64, seq int) []byte {
	return sealAD(chunksTable, "data", strconv.FormatInt(id, 10), strconv.Itoa(seq))
}

// PutMessage keeps a message of mailbox mb under its idempotency key (the
// "store" sink: it implements sink.MessageStore), sealed in 256 KB chunks, in
// one transaction. A key stored before is a duplicate: r is drained,
// nothing is written, and the first copy's id is returned.
func (s *Store) PutMessage(ctx context.Context, mb, key string, receivedAt time.Time, r io.Reader) (string, bool, error) {
	var id int64
	err := s.queryRow(ctx, "SELECT id FROM messages WHERE msg_key = ?", key).Scan(&id)
	if err == nil {
		_, _ = io.Copy(io.Discard, r)
		return strconv.FormatInt(id, 10), true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", false, fmt.Errorf("store: message %q: %w", key, err)
	}
	err = s.inTx(ctx, func(tx *txn) error {
		if err := tx.QueryRow(ctx, "INSERT INTO messages (mailbox, msg_key, size, received_at, stored_at) VALUES (?, ?, 0, ?, ?) RETURNING id",
			mb, key, nanos(receivedAt), time.Now().UnixNano()).Scan(&id); err != nil {
			return err
		}
		put := func(seq int, plain []byte) error {
			sealed, err := s.seal.seal(plain, chunkAD(id, seq))
			if err != nil {
				return err
			}
			_, err = tx.Exec(ctx, "INSERT INTO message_chunks (message_id, seq, data) VALUES (?, ?, ?)", id, seq, sealed)
			return err
		}
		buf := make([]byte, chunkSize)
		var total int64
		chunks := 0
		for {
			n, rerr := io.ReadFull(r, buf)
			if n > 0 {
				if err := put(chunks, buf[:n]); err != nil {
					return err
				}
				chunks++
				total += int64(n)
			}
			if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
				break
			}
			if rerr != nil {
				return rerr
			}
		}
		if err := put(markerSeq, []byte(strconv.Itoa(chunks))); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "UPDATE messages SET size = ? WHERE id = ?", total, id)
		return err
	})
	if err != nil {
		return "", false, fmt.Errorf("store: keep message %q: %w", key, err)
	}
	return strconv.FormatInt(id, 10), false, nil
}

// StoredMessage describes a kept message.
type StoredMessage struct {
	ID, Mailbox, Key string
	Size             int64
	ReceivedAt       time.Time
	StoredAt         time.Time
}

// Messages lists kept messages, newest first (at most limit).
func (s *Store) Messages(ctx context.Context, limit int) ([]StoredMessage, error) {
	rows, err := s.query(ctx, "SELECT id, mailbox, msg_key, size, received_at, stored_at FROM messages ORDER BY id DESC LIMIT ?", limit)
	if err != nil {
		return nil, fmt.Errorf("store: messages: %w", err)
	}
	defer rows.Close()
	var out []StoredMessage
	for rows.Next() {
		var m StoredMessage
		var id, stored int64
		var recv sql.NullInt64
		if err := rows.Scan(&id, &m.Mailbox, &m.Key, &m.Size, &recv, &stored); err != nil {
			return nil, err
		}
		m.ID, m.ReceivedAt, m.StoredAt = strconv.FormatInt(id, 10), fromNanos(recv), time.Unix(0, stored)
		out = append(out, m)
	}
	return out, rows.Err()
}

// OpenMessage writes a kept message's raw bytes to w, chunk by chunk,
// opening each sealed chunk (a *DecryptError for one that does not open).
func (s *Store) OpenMessage(ctx context.Context, id string, w io.Writer) error {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return fmt.Errorf("store: message id %q: %w", id, ErrNotFound)
	}
	var exists int
	if err := s.queryRow(ctx, "SELECT 1 FROM messages WHERE id = ?", n).Scan(&exists); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("store: message %s: %w", id, ErrNotFound)
		}
		return err
	}
	chunk := func(seq int) ([]byte, error) {
		var data []byte
		err := s.queryRow(ctx, "SELECT data FROM message_chunks WHERE message_id = ? AND seq = ?", n, seq).Scan(&data)
		return data, err
	}
	open := func(seq int, data []byte) ([]byte, error) {
		pt, err := s.seal.open(data, chunkAD(n, seq))
		if err != nil {
			return nil, &DecryptError{Table: chunksTable, Column: "data", Row: id + "/" + strconv.Itoa(seq)}
		}
		return pt, nil
	}
	count := -1 // unknown: a message kept in clear text before sealing
	if data, err := chunk(markerSeq); err == nil {
		pt, err := open(markerSeq, data)
		if err != nil {
			return err
		}
		if count, err = strconv.Atoi(string(pt)); err != nil {
			return fmt.Errorf("store: message %s: chunk count %q: %w", id, pt, err)
		}
	} else if !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("store: message %s: %w", id, err)
	}
	for seq := 0; count < 0 || seq < count; seq++ {
		data, err := chunk(seq)
		if errors.Is(err, sql.ErrNoRows) {
			if count < 0 {
				return nil
			}
			return fmt.Errorf("store: message %s: chunk %d of %d is missing", id, seq, count)
		}
		if err != nil {
			return fmt.Errorf("store: message %s: %w", id, err)
		}
		if count >= 0 {
			if data, err = open(seq, data); err != nil {
				return err
			}
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
	}
	return nil
}
