package store

import (
	"fmt"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/mailbox"
)

func TestLedger(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		s := mustOpen(t, dsn, newKey(t))
		ctx := t.Context()
		if c, err := s.MailboxCursor(ctx, "forms"); err != nil || c != (mailbox.Cursor{}) {
			t.Fatalf("fresh cursor %+v %v", c, err)
		}
		want := mailbox.Cursor{Validity: "1234", Last: "17"}
		if err := s.SetMailboxCursor(ctx, "forms", want); err != nil {
			t.Fatal(err)
		}
		if err := s.SetMailboxCursor(ctx, "other", mailbox.Cursor{Validity: "9"}); err != nil {
			t.Fatal(err)
		}
		if c, err := s.MailboxCursor(ctx, "forms"); err != nil || c != want {
			t.Fatalf("cursor %+v %v", c, err)
		}
		// a Graph cursor's delta link is stored where older versions put
		// it (last_uid), so their rows read back as delta links
		link := "https://graph.microsoft.com/v1.0/users/a/mailFolders/inbox/messages/delta?$deltatoken=x"
		graphCur := mailbox.Cursor{Validity: mailbox.GraphValidity, DeltaLink: link}
		if err := s.SetMailboxCursor(ctx, "g", graphCur); err != nil {
			t.Fatal(err)
		}
		var stored string
		if err := s.queryRow(ctx, "SELECT last_uid FROM mailbox_cursors WHERE mailbox = ?", "g").Scan(&stored); err != nil || stored != link {
			t.Fatalf("stored %q %v, want the delta link in last_uid", stored, err)
		}
		if c, err := s.MailboxCursor(ctx, "g"); err != nil || c != graphCur {
			t.Fatalf("graph cursor %+v %v", c, err)
		}

		date := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
		var entries []LedgerEntry
		var keys []string
		for i := range 700 { // more than one IN (…) chunk
			k := fmt.Sprintf("forms/imap/1234/%d", i+1)
			keys = append(keys, k)
			entries = append(entries, LedgerEntry{Key: k, UID: fmt.Sprint(i + 1), MessageID: fmt.Sprintf("<m%d@x>", i), Size: int64(100 + i), Date: date, SinkRef: "new/" + k})
		}
		if err := s.MarkDelivered(ctx, "forms", entries); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkAcked(ctx, "forms", keys[:500]); err != nil {
			t.Fatal(err)
		}
		// a replay of delivered entries does not undo the acknowledgement
		if err := s.MarkDelivered(ctx, "forms", entries[:10]); err != nil {
			t.Fatal(err)
		}
		states, err := s.Delivered(ctx, "forms", append([]string{"forms/imap/1234/99999"}, keys...))
		if err != nil {
			t.Fatal(err)
		}
		if len(states) != 700 || states[keys[0]] != Acked || states[keys[699]] != Delivered {
			t.Fatalf("states: %d entries, first %v, last %v", len(states), states[keys[0]], states[keys[699]])
		}
		if other, _ := s.Delivered(ctx, "other", keys[:5]); len(other) != 0 {
			t.Error("ledger leaks across mailboxes")
		}
		un, err := s.Unacked(ctx, "forms")
		if err != nil || len(un) != 200 {
			t.Fatalf("unacked: %d %v", len(un), err)
		}
		if e := un[0]; e.State != Delivered || !e.Date.Equal(date) || e.SinkRef == "" || e.DeliveredAt.IsZero() || !e.AckedAt.IsZero() {
			t.Errorf("entry %+v", e)
		}
		e, err := s.FindByIdentity(ctx, "forms", "<m5@x>", 105, date)
		if err != nil || e == nil || e.Key != keys[5] {
			t.Fatalf("FindByIdentity: %+v %v", e, err)
		}
		if e, _ := s.FindByIdentity(ctx, "forms", "<m5@x>", 999, date); e != nil {
			t.Error("matched a different size")
		}
		if err := s.Rekey(ctx, "forms", keys[5], "forms/imap/5678/1", "1"); err != nil {
			t.Fatal(err)
		}
		states, _ = s.Delivered(ctx, "forms", []string{keys[5], "forms/imap/5678/1"})
		if _, old := states[keys[5]]; old || states["forms/imap/5678/1"] != Acked {
			t.Errorf("rekey: %v", states)
		}
	})
}
