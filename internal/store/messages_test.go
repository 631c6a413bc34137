package store

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/sink"
)

func TestStoreSink(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		s := mustOpen(t, dsn, newKey(t))
		sk, err := sink.NewStore(s)
		if err != nil {
			t.Fatal(err)
		}
		big := strings.Repeat("0123456789abcdef", 40000) // 640 KB: three chunks
		for i, body := range []string{"Subject: small\r\n\r\nhi\r\n", big} {
			m := sink.Message{Mailbox: "mb", Key: "mb/imap/1/" + string(rune('1'+i)), ReceivedAt: time.Unix(1700000000, 0)}
			d, _ := sk.Begin(t.Context(), m)
			io.WriteString(d, body)
			rc, err := d.Commit(t.Context())
			if err != nil || rc.Duplicate {
				t.Fatalf("%+v %v", rc, err)
			}
			d, _ = sk.Begin(t.Context(), m)
			io.WriteString(d, "other")
			if rc2, err := d.Commit(t.Context()); err != nil || !rc2.Duplicate || rc2.Ref != rc.Ref {
				t.Fatalf("again: %+v %v", rc2, err)
			}
			var out bytes.Buffer
			if err := s.OpenMessage(t.Context(), strings.TrimPrefix(rc.Ref, "message "), &out); err != nil || out.String() != body {
				t.Fatalf("read back %d bytes, %v", out.Len(), err)
			}
		}
		ms, err := s.Messages(t.Context(), 10)
		if err != nil || len(ms) != 2 || ms[0].Size != int64(len(big)) || !ms[1].ReceivedAt.Equal(time.Unix(1700000000, 0)) {
			t.Fatalf("%+v %v", ms, err)
		}
	})
}

// TestStoredMessagesSealed: what a store sink keeps is sealed like the
// other secrets: the raw database (SQLite's files, PostgreSQL's column
// bytes) holds no byte of the message's text, a chunk moved to another
// message or a missing chunk is refused, and rows an older mailgate wrote
// in clear text still read back.
func TestStoredMessagesSealed(t *testing.T) {
	const secret = "Quarterly-numbers-CONFIDENTIAL-7f3a9"
	body := "Subject: " + secret + "\r\n\r\n" + strings.Repeat(secret+" ", 30000) // 1.1 MB: five chunks
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			dsn := b.dsn(t)
			s := mustOpen(t, dsn, newKey(t))
			ctx := t.Context()
			ref, dup, err := s.PutMessage(ctx, "mb", "mb/imap/1/1", time.Time{}, strings.NewReader(body))
			if err != nil || dup {
				t.Fatalf("%v %v", dup, err)
			}
			var out bytes.Buffer
			if err := s.OpenMessage(ctx, ref, &out); err != nil || out.String() != body {
				t.Fatalf("read back %d bytes, %v", out.Len(), err)
			}
			// the column bytes, as PostgreSQL and SQLite hand them out
			rows, err := s.query(ctx, "SELECT data FROM message_chunks")
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for rows.Next() {
				var data []byte
				if err := rows.Scan(&data); err != nil {
					t.Fatal(err)
				}
				n++
				if bytes.Contains(data, []byte(secret[:16])) {
					t.Errorf("a chunk holds the message in clear text")
				}
			}
			rows.Close()
			if n < 5 {
				t.Fatalf("%d chunks: the check looked at the wrong rows", n)
			}
			if path, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
				for _, suffix := range []string{"", "-wal"} {
					raw, _ := os.ReadFile(path + suffix)
					if bytes.Contains(raw, []byte(secret[:16])) {
						t.Errorf("%s holds the message in clear text", filepath.Base(path+suffix))
					}
				}
			}

			// a message an older mailgate kept, in clear text
			var old int64
			if err := s.queryRow(ctx, "INSERT INTO messages (mailbox, msg_key, size, received_at, stored_at) VALUES (?, ?, ?, NULL, ?) RETURNING id",
				"mb", "mb/imap/1/old", 2*len("clear "), time.Now().UnixNano()).Scan(&old); err != nil {
				t.Fatal(err)
			}
			for seq, part := range []string{"clear ", "clear "} {
				if _, err := s.exec(ctx, "INSERT INTO message_chunks (message_id, seq, data) VALUES (?, ?, ?)", old, seq, []byte(part)); err != nil {
					t.Fatal(err)
				}
			}
			out.Reset()
			if err := s.OpenMessage(ctx, strconv.FormatInt(old, 10), &out); err != nil || out.String() != "clear clear " {
				t.Fatalf("older clear-text message: %q %v", out.String(), err)
			}

			// a chunk moved into another sealed message does not open
			ref2, _, err := s.PutMessage(ctx, "mb", "mb/imap/1/2", time.Time{}, strings.NewReader("Subject: two\r\n\r\nsecond\r\n"))
			if err != nil {
				t.Fatal(err)
			}
			id1, _ := strconv.ParseInt(ref, 10, 64)
			id2, _ := strconv.ParseInt(ref2, 10, 64)
			if _, err := s.exec(ctx, "UPDATE message_chunks SET data = (SELECT data FROM message_chunks WHERE message_id = ? AND seq = 0) WHERE message_id = ? AND seq = 0", id1, id2); err != nil {
				t.Fatal(err)
			}
			if err := s.OpenMessage(ctx, ref2, io.Discard); !errors.Is(err, ErrDecrypt) {
				t.Errorf("moved chunk: %v, want ErrDecrypt", err)
			}
			// a sealed message cut short is refused, not returned truncated
			if _, err := s.exec(ctx, "DELETE FROM message_chunks WHERE message_id = ? AND seq = 4", id1); err != nil {
				t.Fatal(err)
			}
			if err := s.OpenMessage(ctx, ref, io.Discard); err == nil {
				t.Error("a message missing a chunk read back without error")
			}
		})
	}
}
