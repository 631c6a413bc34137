package outbox

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/smtp"
	"github.com/mailgate/mailgate/internal/store"
)

// TestNextMessageWaitsForTheRecord: the connection sends the next
// message's envelope and content while the previous one is being recorded
// as sent, but the server never takes a message (its final dot) before the
// one it took before is recorded: a crash leaves at most one accepted,
// unrecorded message per connection.
func TestNextMessageWaitsForTheRecord(t *testing.T) {
	st := openStore(t)
	ids := map[string]int64{} // Subject -> outbox id
	const n = 40
	for i := range n {
		subj := fmt.Sprintf("m%02d", i)
		id, err := st.Enqueue(t.Context(), "s", "a@example.com", []string{"b@example.com"}, []byte("Subject: "+subj+"\r\n\r\nbody\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		ids[subj] = id
	}
	// each time the server takes a message, it reads from the store
	// whether the one it took before is recorded as sent yet
	ps := startSMTP(t)
	var prev int64
	var checked int         // messages taken through the check
	var unrecorded []string // messages still unrecorded when the next was taken
	ps.mu.Lock()
	ps.onTake = func(subj string) {
		checked++
		if prev != 0 {
			m, err := st.OutboxMessageStatus(context.Background(), prev)
			if err != nil || m.State != store.OutboxSent {
				unrecorded = append(unrecorded, fmt.Sprintf("%d (%v)", prev, err))
			}
		}
		prev = ids[subj]
	}
	ps.mu.Unlock()
	pipelined := make(chan bool, 1)
	snd := &Sender{Name: "s", Dial: func(ctx context.Context) (*smtp.Client, error) {
		c, err := ps.dial(ctx)
		if err == nil {
			select {
			case pipelined <- c.Pipelining():
			default:
			}
		}
		return c, err
	}}
	w := &Worker{Store: st, Senders: []*Sender{snd}, Poll: 50 * time.Millisecond, Backoff: time.Hour}
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		c, err := st.OutboxCounts(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if c[store.OutboxSent] == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox after 2 min: %v, stats %+v", c, w.Stats())
		}
	}
	stop()
	<-done
	if !<-pipelined {
		t.Fatal("the server offers PIPELINING but the client does not use it")
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	taken := 0
	for _, k := range ps.count {
		taken += k
	}
	if taken != n || checked != n || len(unrecorded) > 0 {
		t.Fatalf("taken %d of %d, %d checked; taken while the previous was unrecorded: %v", taken, n, checked, unrecorded)
	}
	if s := w.Stats(); s.Sent != n || s.Recovered != 0 {
		t.Errorf("stats %+v", s)
	}
}
