package store

import (
	"testing"
	"time"
)

// TestOutboxFind: the outbox list filters by state and by sender, newest
// first, on both backends.
func TestOutboxFind(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		s := mustOpen(t, dsn, newKey(t))
		ids := map[string]int64{}
		for _, q := range []struct{ name, sender string }{{"a", "noreply"}, {"b", "noreply"}, {"c", "reports"}} {
			id, err := s.Enqueue(t.Context(), q.sender, "x@example.com", []string{"y@example.com"}, []byte("Subject: "+q.name+"\r\n\r\nx\r\n"))
			if err != nil {
				t.Fatal(err)
			}
			ids[q.name] = id
		}
		if err := s.MarkSent(t.Context(), ids["a"]); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			f    OutboxFilter
			want []int64
		}{
			{"all", OutboxFilter{}, []int64{ids["c"], ids["b"], ids["a"]}},
			{"queued", OutboxFilter{State: OutboxQueued}, []int64{ids["c"], ids["b"]}},
			{"sender", OutboxFilter{Sender: "noreply"}, []int64{ids["b"], ids["a"]}},
			{"both", OutboxFilter{State: OutboxQueued, Sender: "noreply"}, []int64{ids["b"]}},
			{"none", OutboxFilter{State: OutboxFailed}, nil},
		} {
			got, err := s.OutboxFind(t.Context(), tc.f, 10)
			if err != nil {
				t.Fatal(err)
			}
			var gotIDs []int64
			for _, m := range got {
				gotIDs = append(gotIDs, m.ID)
			}
			if len(gotIDs) != len(tc.want) {
				t.Errorf("%s: %v, want %v", tc.name, gotIDs, tc.want)
				continue
			}
			for i := range gotIDs {
				if gotIDs[i] != tc.want[i] {
					t.Errorf("%s: %v, want %v", tc.name, gotIDs, tc.want)
					break
				}
			}
		}
	})
}

// TestOutboxOldestQueued: the oldest queued message's queue time, none
// once nothing is queued (a sent message does not count).
func TestOutboxOldestQueued(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		s := mustOpen(t, dsn, newKey(t))
		if _, ok, err := s.OutboxOldestQueued(t.Context()); err != nil || ok {
			t.Fatalf("empty outbox: %v %v, want nothing", ok, err)
		}
		before := time.Now()
		id, err := s.Enqueue(t.Context(), "noreply", "x@example.com", []string{"y@example.com"}, []byte("Subject: a\r\n\r\nx\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		at, ok, err := s.OutboxOldestQueued(t.Context())
		if err != nil || !ok || at.Before(before.Add(-time.Second)) {
			t.Fatalf("one queued: %v %v %v, want about %v", at, ok, err, before)
		}
		if err := s.MarkSent(t.Context(), id); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := s.OutboxOldestQueued(t.Context()); err != nil || ok {
			t.Fatalf("all sent: %v %v, want nothing", ok, err)
		}
	})
}
