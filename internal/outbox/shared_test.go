package outbox

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/pgtest"
	"github.com/mailgate/mailgate/internal/store"
)

// TestTwoWorkersShareOutbox: two workers (two serve instances, each with
// its own store handle and two connections) on one PostgreSQL outbox send
// every one of 300 messages exactly once.
func TestTwoWorkersShareOutbox(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Start(t)
	ps := startSMTP(t)
	const n = 300
	a, b := openStoreAt(t, dsn), openStoreAt(t, dsn)
	for i := range n {
		raw := fmt.Sprintf("Subject: m%03d\r\n\r\nbody\r\n", i)
		if _, err := a.Enqueue(t.Context(), "s", "a@example.com", []string{"b@example.com"}, []byte(raw)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	var workers []*Worker
	for i, st := range []*store.Store{a, b} {
		snd := &Sender{Name: "s", MaxConns: 2, Dial: ps.dial}
		w := &Worker{Store: st, Senders: []*Sender{snd}, Instance: fmt.Sprintf("instance%d", i), Poll: 20 * time.Millisecond, Backoff: time.Hour}
		workers = append(workers, w)
		wg.Go(func() { w.Run(ctx) })
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		c, err := a.OutboxCounts(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if c[store.OutboxSent] == n {
			break
		}
		if time.Now().After(deadline) {
			stop()
			wg.Wait()
			t.Fatalf("outbox after 3 min: %v", c)
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	wg.Wait()
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if len(ps.count) != n {
		t.Errorf("%d distinct messages arrived, want %d", len(ps.count), n)
	}
	for subj, k := range ps.count {
		if k != 1 {
			t.Errorf("%s arrived %d times", subj, k)
		}
	}
	sa, sb := workers[0].Stats(), workers[1].Stats()
	if sa.Sent+sb.Sent != n || sa.Recovered+sb.Recovered != 0 {
		t.Errorf("stats %+v and %+v: want %d sent between them, none recovered", sa, sb, n)
	}
	t.Logf("instance0 sent %d, instance1 sent %d", sa.Sent, sb.Sent)
}
