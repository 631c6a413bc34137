package outbox

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/store"
)

// TestBudget: the rolling 24-hour recipient budget spends, refuses with
// the moment enough frees up, forgets what left the window, gives back,
// and lets a message larger than the whole budget go when nothing else
// was spent.
func TestBudget(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	type step struct {
		at      time.Duration // after t0
		n       int
		ok      bool
		until   time.Duration // after t0, when refused
		give    bool          // give the previous spend back instead
		wantUse int
	}
	tests := []struct {
		name  string
		max   int
		steps []step
	}{
		{"within", 10, []step{{0, 4, true, 0, false, 4}, {time.Hour, 6, true, 0, false, 10}}},
		{"over, then the window rolls", 10, []step{
			{0, 4, true, 0, false, 4}, {time.Hour, 5, true, 0, false, 9},
			{2 * time.Hour, 2, false, day, false, 9},
			{2*time.Hour + 1, 6, false, day + time.Hour, false, 9},
			{day + time.Minute, 2, true, 0, false, 7},
		}},
		{"larger than the budget", 3, []step{{0, 5, true, 0, false, 5}, {time.Minute, 1, false, day, false, 5}}},
		{"given back", 5, []step{{0, 5, true, 0, false, 5}, {0, 5, false, 0, true, 0}, {time.Minute, 5, true, 0, false, 5}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := &budget{max: tc.max}
			var last spend
			for i, s := range tc.steps {
				at := t0.Add(s.at)
				if s.give {
					b.give(last.at, last.n)
				} else {
					ok, until := b.take(at, s.n)
					if ok != s.ok || !ok && !until.Equal(t0.Add(s.until)) {
						t.Fatalf("step %d: take(%d) = %v, %v; want %v, %v", i, s.n, ok, until, s.ok, t0.Add(s.until))
					}
					if ok {
						last = spend{at: at, n: s.n}
					}
				}
				if b.used != s.wantUse {
					t.Fatalf("step %d: used %d, want %d", i, b.used, s.wantUse)
				}
			}
		})
	}
}

// TestRecipientBudgetWaits: a sender allowed 5 recipients a day, with 2
// already sent today (from the store), sends 3 of 6 single-recipient
// messages; the others stay queued, not failed, with the reason, and the
// status says over_budget until a day after the first send.
func TestRecipientBudgetWaits(t *testing.T) {
	t.Parallel()
	ps := startSMTP(t)
	st := openStore(t)
	enqueue := func(subj string) int64 {
		id, err := st.Enqueue(t.Context(), "s", "a@example.com", []string{"b@example.com"}, []byte("Subject: "+subj+"\r\n\r\nbody\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	before := time.Now()
	var earlier []store.SentMessage
	for i := range 2 {
		earlier = append(earlier, store.SentMessage{ID: enqueue(fmt.Sprintf("earlier%d", i))})
	}
	if err := st.MarkSentAll(t.Context(), earlier); err != nil {
		t.Fatal(err)
	}
	first := time.Now()
	for i := range 6 {
		enqueue(fmt.Sprintf("m%02d", i))
	}
	snd := &Sender{Name: "s", MaxRcptsPerDay: 5, Dial: ps.dial}
	w := &Worker{Store: st, Senders: []*Sender{snd}, Poll: 20 * time.Millisecond, Backoff: time.Hour}
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() { stop(); <-done }()
	deadline := time.Now().Add(time.Minute)
	var status []SenderStatus
	var err error
	for {
		status, err = w.Status(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if status[0].State == stateOverBudget && w.Stats().Sent == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status %+v, stats %+v: never over budget after 3 sent", status, w.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	s := status[0]
	if s.Queued != 3 || s.RecipientsLeft != 0 || s.Until.Before(before.Add(day)) || s.Until.After(first.Add(day)) {
		t.Errorf("status %+v, want 3 queued, no recipient left, paused until a day after the first earlier send", s)
	}
	c, _ := st.OutboxCounts(t.Context())
	if c[store.OutboxSent] != 5 || c[store.OutboxFailed] != 0 || c[store.OutboxQueued] != 3 {
		t.Errorf("outbox %v, want 5 sent, 3 queued, none failed", c)
	}
	queued, err := st.OutboxFind(t.Context(), store.OutboxFilter{State: store.OutboxQueued}, 10)
	if err != nil {
		t.Fatal(err)
	}
	reasons := 0
	for _, m := range queued {
		if strings.Contains(m.LastError, "daily recipient budget") {
			reasons++
		}
	}
	if reasons == 0 {
		t.Errorf("no queued message says why it waits: %+v", queued)
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if len(ps.arrived) != 3 {
		t.Errorf("%d messages reached the server, want 3", len(ps.arrived))
	}
}
