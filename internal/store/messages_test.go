package store

import (
	"bytes"
	"io"
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
