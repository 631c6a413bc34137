package store

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestOutboxClaimsDisjoint: two store handles (two serve instances), four
// claimers each, claim concurrently from one queue of 400 messages: every
// message is claimed exactly once.
func TestOutboxClaimsDisjoint(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		key := newKey(t)
		a, b := mustOpen(t, dsn, key), mustOpen(t, dsn, key)
		const n = 400
		for i := range n {
			if _, err := a.Enqueue(t.Context(), "noreply", "x@example.com", []string{"y@example.com"}, fmt.Appendf(nil, "Subject: %d\r\n\r\nx\r\n", i)); err != nil {
				t.Fatal(err)
			}
		}
		var mu sync.Mutex
		claims := map[int64][]string{}
		var wg sync.WaitGroup
		for h, st := range []*Store{a, b} {
			for k := range 4 {
				by := fmt.Sprintf("instance%d/noreply/%d", h, k)
				wg.Go(func() {
					for {
						msgs, _, err := st.ClaimDue(t.Context(), "noreply", 7, OutboxClaim{By: by, Until: time.Now().Add(time.Hour)})
						if err != nil {
							t.Error(err)
							return
						}
						if len(msgs) == 0 {
							return
						}
						mu.Lock()
						for _, m := range msgs {
							claims[m.ID] = append(claims[m.ID], by)
							if len(m.Rcpts) != 1 || m.Rcpts[0].Addr != "y@example.com" {
								t.Errorf("message %d: recipients %+v", m.ID, m.Rcpts)
							}
						}
						mu.Unlock()
					}
				})
			}
		}
		wg.Wait()
		if len(claims) != n {
			t.Fatalf("%d messages claimed, want %d", len(claims), n)
		}
		for id, by := range claims {
			if len(by) != 1 {
				t.Errorf("message %d claimed by %v", id, by)
			}
		}
		counts, err := a.OutboxCounts(t.Context())
		if err != nil || counts[OutboxSending] != n {
			t.Fatalf("counts %v, %v; want %d sending", counts, err, n)
		}
	})
}

// TestOutboxClaimLapse: a message in sending under a live claim is not
// taken again; once the claim lapsed it is, counted as recovered; a
// released message is queued again with its attempt taken back; an
// extended claim holds.
func TestOutboxClaimLapse(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		s := mustOpen(t, dsn, newKey(t))
		ctx := t.Context()
		id, err := s.Enqueue(ctx, "noreply", "x@example.com", []string{"y@example.com"}, []byte("Subject: a\r\n\r\nx\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		claim := func(by string, until time.Time) ([]OutboxMessage, int) {
			t.Helper()
			msgs, rec, err := s.ClaimDue(ctx, "noreply", 10, OutboxClaim{By: by, Until: until})
			if err != nil {
				t.Fatal(err)
			}
			return msgs, rec
		}
		if msgs, _ := claim("one", time.Now().Add(-time.Second)); len(msgs) != 1 || msgs[0].State != OutboxQueued || msgs[0].Attempts != 0 {
			t.Fatalf("first claim: %+v", msgs)
		}
		// the claim lapsed already: another claimer takes it as recovered
		msgs, rec := claim("two", time.Now().Add(time.Hour))
		if len(msgs) != 1 || rec != 1 || msgs[0].State != OutboxSending || msgs[0].Attempts != 1 {
			t.Fatalf("after lapse: %+v, recovered %d", msgs, rec)
		}
		if msgs, _ := claim("three", time.Now().Add(time.Hour)); len(msgs) != 0 {
			t.Fatalf("a live claim was taken: %+v", msgs)
		}
		// release by the wrong claimer does nothing, by the holder queues it
		if err := s.ReleaseClaim(ctx, "three", id); err != nil {
			t.Fatal(err)
		}
		if m, _ := s.OutboxMessageStatus(ctx, id); m.State != OutboxSending {
			t.Fatalf("released by a stranger: %s", m.State)
		}
		if err := s.ReleaseClaim(ctx, "two", id); err != nil {
			t.Fatal(err)
		}
		if m, _ := s.OutboxMessageStatus(ctx, id); m.State != OutboxQueued || m.Attempts != 1 {
			t.Fatalf("after release: %s, %d attempts", m.State, m.Attempts)
		}
		// a claim about to lapse, extended, holds
		claim("four", time.Now().Add(-time.Second))
		if err := s.ExtendClaim(ctx, "four", time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if msgs, _ := claim("five", time.Now().Add(time.Hour)); len(msgs) != 0 {
			t.Fatalf("an extended claim was taken: %+v", msgs)
		}
		if err := s.MarkSentAll(ctx, []SentMessage{{ID: id}}); err != nil {
			t.Fatal(err)
		}
		if m, _ := s.OutboxMessageStatus(ctx, id); m.State != OutboxSent || m.Rcpts[0].State != OutboxSent {
			t.Fatalf("after MarkSentAll: %+v", m)
		}
	})
}

// TestMarkSentAll: one transaction records several messages sent, a
// refused recipient failed with its reply and the others sent.
func TestMarkSentAll(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		s := mustOpen(t, dsn, newKey(t))
		ctx := t.Context()
		var ids []int64
		for i := range 3 {
			id, err := s.Enqueue(ctx, "noreply", "x@example.com", []string{"a@example.com", "b@example.com"}, fmt.Appendf(nil, "Subject: %d\r\n\r\nx\r\n", i))
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		if err := s.MarkSentAll(ctx, []SentMessage{{ID: ids[0]}, {ID: ids[1], Refused: []OutboxRcpt{{Addr: "b@example.com", Reply: "550 5.1.1 no such user"}}}}); err != nil {
			t.Fatal(err)
		}
		m, _ := s.OutboxMessageStatus(ctx, ids[1])
		if m.State != OutboxSent || m.Rcpts[0].State != OutboxSent || m.Rcpts[1].State != OutboxFailed || m.Rcpts[1].Reply != "550 5.1.1 no such user" {
			t.Fatalf("refused recipient: %+v", m)
		}
		if m, _ := s.OutboxMessageStatus(ctx, ids[0]); m.State != OutboxSent || m.Rcpts[0].State != OutboxSent || m.Rcpts[1].State != OutboxSent {
			t.Fatalf("a message sent to all: %+v", m)
		}
		if m, _ := s.OutboxMessageStatus(ctx, ids[2]); m.State != OutboxQueued {
			t.Fatalf("a message outside the batch: %s", m.State)
		}
		// a batch with nothing refused (PostgreSQL's one-statement path):
		// a recipient refused on an earlier attempt stays failed, the
		// claim is cleared, a message outside the batch is untouched
		more := []int64{ids[2]}
		for i := range 2 {
			id, err := s.Enqueue(ctx, "noreply", "x@example.com", []string{"c@example.com"}, fmt.Appendf(nil, "Subject: more %d\r\n\r\nx\r\n", i))
			if err != nil {
				t.Fatal(err)
			}
			more = append(more, id)
		}
		if err := s.MarkFailed(ctx, ids[2], "a@example.com", "550 5.1.1 gone"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.ClaimDue(ctx, "noreply", 10, OutboxClaim{By: "w", Until: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkSentAll(ctx, []SentMessage{{ID: more[0]}, {ID: more[1]}}); err != nil {
			t.Fatal(err)
		}
		m, _ = s.OutboxMessageStatus(ctx, more[0])
		if m.State != OutboxSent || m.Rcpts[0].State != OutboxFailed || m.Rcpts[0].Reply != "550 5.1.1 gone" || m.Rcpts[1].State != OutboxSent {
			t.Fatalf("an earlier refusal after a batch: %+v", m)
		}
		if m, _ := s.OutboxMessageStatus(ctx, more[1]); m.State != OutboxSent || m.Rcpts[0].State != OutboxSent {
			t.Fatalf("in the batch: %+v", m)
		}
		if m, _ := s.OutboxMessageStatus(ctx, more[2]); m.State != OutboxSending || m.Rcpts[0].State != OutboxQueued {
			t.Fatalf("claimed, outside the batch: %+v", m)
		}
		// the claim of a recorded message is gone: releasing it does nothing
		if err := s.ReleaseClaim(ctx, "w", more[0], more[1]); err != nil {
			t.Fatal(err)
		}
		if m, _ := s.OutboxMessageStatus(ctx, more[0]); m.State != OutboxSent {
			t.Fatalf("released after sent: %s", m.State)
		}
	})
}

// TestOutboxWake: a message queued through one store handle wakes a
// listener on another handle of the same database (another process:
// PostgreSQL's NOTIFY, SQLite's socket beside the file).
func TestOutboxWake(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		key := newKey(t)
		a, b := mustOpen(t, dsn, key), mustOpen(t, dsn, key)
		wake, err := a.OutboxWake(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if a.Dialect() == "postgres" {
			// LISTEN is in place once the first ring came
			select {
			case <-wake:
			case <-time.After(30 * time.Second):
				t.Fatal("no LISTEN")
			}
		}
		if _, err := b.Enqueue(t.Context(), "noreply", "x@example.com", []string{"y@example.com"}, []byte("Subject: a\r\n\r\nx\r\n")); err != nil {
			t.Fatal(err)
		}
		select {
		case <-wake:
		case <-time.After(30 * time.Second):
			t.Fatal("the enqueue did not wake the other handle")
		}
	})
}

// TestEnqueueAll: each message of a chunk comes back under its own id
// with its sender, envelope, bytes and recipients (a repeated recipient
// once), whatever the dialect's way of inserting them.
func TestEnqueueAll(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		s := mustOpen(t, dsn, newKey(t))
		ctx := t.Context()
		var msgs []NewOutboxMessage
		for i := range 250 {
			m := NewOutboxMessage{Sender: []string{"noreply", "billing"}[i%2], From: fmt.Sprintf("f%d@example.com", i),
				Raw: fmt.Appendf(nil, "Subject: %d\r\n\r\nbody %d\r\n", i, i)}
			for r := range i % 4 {
				m.Rcpts = append(m.Rcpts, fmt.Sprintf("r%d-%d@example.com", i, r))
			}
			if i%4 == 3 {
				m.Rcpts = append(m.Rcpts, m.Rcpts[0])
			}
			msgs = append(msgs, m)
		}
		if ids, err := s.EnqueueAll(ctx, nil); err != nil || len(ids) != 0 {
			t.Fatalf("nothing queued: %v, %v", ids, err)
		}
		ids, err := s.EnqueueAll(ctx, msgs)
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) != len(msgs) {
			t.Fatalf("%d ids for %d messages", len(ids), len(msgs))
		}
		seen := map[int64]bool{}
		for i, id := range ids {
			if seen[id] {
				t.Fatalf("id %d twice", id)
			}
			seen[id] = true
			m, err := s.OutboxMessageStatus(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			want := msgs[i]
			if m.Sender != want.Sender || m.From != want.From || m.State != OutboxQueued {
				t.Fatalf("message %d (id %d): %s %s %s, want %s %s queued", i, id, m.Sender, m.From, m.State, want.Sender, want.From)
			}
			var got []string
			for _, r := range m.Rcpts {
				got = append(got, r.Addr)
			}
			wantRcpts := slices.Compact(slices.Sorted(slices.Values(want.Rcpts)))
			if !slices.Equal(slices.Sorted(slices.Values(got)), wantRcpts) {
				t.Fatalf("message %d recipients %v, want %v", i, got, wantRcpts)
			}
		}
		claimed, _, err := s.ClaimDue(ctx, "billing", 500, OutboxClaim{By: "w", Until: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if len(claimed) != 125 {
			t.Fatalf("claimed %d of billing's 125", len(claimed))
		}
		for _, m := range claimed {
			i := slices.Index(ids, m.ID)
			if string(m.Raw) != string(msgs[i].Raw) {
				t.Fatalf("id %d: raw %q, want %q", m.ID, m.Raw, msgs[i].Raw)
			}
		}
	})
}
