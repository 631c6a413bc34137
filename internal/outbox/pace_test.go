package outbox

import (
	"context"
	"fmt"
	"io"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/smtp"
	"github.com/mailgate/mailgate/internal/store"
)

// paceWorker queues n messages for sender "s" (at rate, per minute) and
// runs a worker until all are sent or failed; probe, when given, looks at
// the running worker once, right after it started.
func paceWorker(t *testing.T, ps *testSMTP, rate, n int, backoff time.Duration, probe ...func(*Worker)) (*Worker, *store.Store) {
	t.Helper()
	st := openStore(t)
	for i := range n {
		raw := fmt.Sprintf("Subject: m%02d\r\n\r\nbody\r\n", i)
		if _, err := st.Enqueue(t.Context(), "s", "a@example.com", []string{"b@example.com"}, []byte(raw)); err != nil {
			t.Fatal(err)
		}
	}
	snd := &Sender{Name: "s", Rate: rate, Dial: ps.dial}
	w := &Worker{Store: st, Senders: []*Sender{snd}, Poll: 50 * time.Millisecond, Backoff: backoff}
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	var once sync.Once
	halt := func() { once.Do(func() { stop(); <-done }) }
	t.Cleanup(halt)
	for _, p := range probe {
		p(w)
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		c, err := st.OutboxCounts(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if c[store.OutboxSent]+c[store.OutboxFailed] == n {
			halt() // the worker's counts are in
			return w, st
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox after 5 min: %v, stats %+v", c, w.Stats())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestPacedSender: a sender paced at 60 messages a minute submits its 30
// messages no two within 0.9 s of each other (arrival at the server; a
// lower bound on the spacing, never an upper bound on speed), and its
// status at the start says paced, with the queue drained in about 30 s
// (the queue at the rate: computed, not timed).
func TestPacedSender(t *testing.T) {
	t.Parallel()
	ps := startSMTP(t)
	var start SenderStatus
	w, _ := paceWorker(t, ps, 60, 30, time.Second, func(w *Worker) {
		st, err := w.Status(t.Context())
		if err != nil || len(st) != 1 {
			t.Fatalf("status %+v, %v", st, err)
		}
		start = st[0]
	})
	if start.State != statePaced || start.Rate != 60 || start.Queued < 28 || start.Drain < 28*time.Second || start.Drain > 30*time.Second {
		t.Errorf("status at the start %+v, want paced at 60/min with about 30 s to drain", start)
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if len(ps.arrived) != 30 {
		t.Fatalf("%d messages arrived, want 30", len(ps.arrived))
	}
	var at []time.Time
	for subj, n := range ps.count {
		if n != 1 {
			t.Errorf("%s arrived %d times", subj, n)
		}
		at = append(at, ps.arrived[subj])
	}
	sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
	for i := 1; i < len(at); i++ {
		if gap := at[i].Sub(at[i-1]); gap < 900*time.Millisecond {
			t.Errorf("messages %d and %d arrived %v apart, want at least 0.9 s at 60/min", i-1, i, gap)
		}
	}
	if s := w.Stats(); s.Sent != 30 || s.Failed != 0 {
		t.Errorf("stats %+v, want 30 sent, none failed", s)
	}
}

// TestThrottledSenderPauses: a server answering "451 4.7.500 Server busy"
// for 20 s throttles the sender: it pauses as a whole (no two refusals
// closer than the first backoff), every message arrives once after, and
// none is failed.
func TestThrottledSenderPauses(t *testing.T) {
	t.Parallel()
	ps := startSMTP(t)
	ps.mu.Lock()
	ps.busy = time.Now().Add(20 * time.Second)
	ps.mu.Unlock()
	const backoff = 2 * time.Second
	w, st := paceWorker(t, ps, 0, 5, backoff)
	c, err := st.OutboxCounts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if c[store.OutboxSent] != 5 || c[store.OutboxFailed] != 0 {
		t.Errorf("outbox %v, want 5 sent, none failed", c)
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for i := range 5 {
		if n := ps.count[fmt.Sprintf("m%02d", i)]; n != 1 {
			t.Errorf("m%02d arrived %d times, want once", i, n)
		}
	}
	if len(ps.refusals) == 0 {
		t.Fatal("the server never refused: the test did not throttle")
	}
	for i := 1; i < len(ps.refusals); i++ {
		if gap := ps.refusals[i].Sub(ps.refusals[i-1]); gap < backoff*9/10 {
			t.Errorf("refusals %d and %d %v apart: the sender did not pause after a throttling answer", i-1, i, gap)
		}
	}
	if s := w.Stats(); s.Failed != 0 || s.Throttled != len(ps.refusals) {
		t.Errorf("stats %+v, want none failed and %d throttled", s, len(ps.refusals))
	}
}

// throttledErr is an API error that asks for a wait (as Graph's 429 with
// Retry-After does).
type throttledErr struct{ wait time.Duration }

func (e *throttledErr) Error() string                    { return "HTTP 429 too many requests" }
func (e *throttledErr) Throttled() (time.Duration, bool) { return e.wait, true }

// throttleMailer answers the first Send with a throttling error.
type throttleMailer struct {
	mu    sync.Mutex
	calls []time.Time
}

func (m *throttleMailer) Send(context.Context, []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, time.Now())
	if len(m.calls) == 1 {
		return &throttledErr{wait: 3 * time.Second}
	}
	return nil
}
func (m *throttleMailer) Sent(context.Context, string) (bool, bool) { return false, false }
func (m *throttleMailer) Permanent(error) bool                      { return true }

// TestMailerRetryAfter: an API throttling answer with Retry-After pauses
// the sender for that long and does not fail the message, although the
// Mailer calls every other error permanent.
func TestMailerRetryAfter(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	id, err := st.Enqueue(t.Context(), "g", "a@example.com", []string{"b@example.com"}, []byte("Subject: x\r\n\r\nbody\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	m := &throttleMailer{}
	var hooks sync.Map // event -> sender
	w := &Worker{Store: st, Senders: []*Sender{{Name: "g", Mailer: m}}, Poll: 20 * time.Millisecond, Backoff: 10 * time.Millisecond,
		OnSent: func(s string) { hooks.Store("sent", s) }, OnThrottled: func(s string) { hooks.Store("throttled", s) }}
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	var once sync.Once
	halt := func() { once.Do(func() { stop(); <-done }) }
	defer halt()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		got, err := st.OutboxMessageStatus(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if got.State == store.OutboxSent || got.State == store.OutboxFailed {
			if got.State != store.OutboxSent {
				t.Fatalf("message %+v, want sent", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("message still %s", got.State)
		}
		time.Sleep(50 * time.Millisecond)
	}
	halt() // the worker's last hooks and counts are in
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.calls) != 2 {
		t.Fatalf("%d sends, want 2", len(m.calls))
	}
	if gap := m.calls[1].Sub(m.calls[0]); gap < 2700*time.Millisecond {
		t.Errorf("sent again %v after a 3 s Retry-After", gap)
	}
	if s := w.Stats(); s.Throttled != 1 || s.Failed != 0 {
		t.Errorf("stats %+v, want 1 throttled, none failed", s)
	}
	for _, ev := range []string{"sent", "throttled"} {
		if v, _ := hooks.Load(ev); v != "g" {
			t.Errorf("On%s hook: %v, want called with g", ev, v)
		}
	}
}

func TestThrottling(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
		wait time.Duration
	}{
		{"421", &smtp.Error{Step: "mail", Code: 421, Enhanced: "4.3.2", Message: "Service not available"}, true, 0},
		{"451 busy", &smtp.Error{Step: "data", Code: 451, Enhanced: "4.7.500", Message: "Server busy"}, true, 0},
		{"452", &smtp.Error{Step: "rcpt", Code: 452, Enhanced: "4.5.3", Message: "Too many recipients"}, true, 0},
		{"4.3.2", &smtp.Error{Step: "data", Code: 450, Enhanced: "4.3.2", Message: "System not accepting network messages"}, true, 0},
		{"quota", &smtp.Error{Step: "data", Code: 450, Enhanced: "4.4.2", Message: "SubmissionQuotaExceeded; Too many messages"}, true, 0},
		{"450 mailbox", &smtp.Error{Step: "rcpt", Code: 450, Enhanced: "4.2.1", Message: "Mailbox busy"}, false, 0},
		{"550", &smtp.Error{Step: "rcpt", Code: 550, Enhanced: "5.1.1", Message: "User unknown"}, false, 0},
		{"554 quota", &smtp.Error{Step: "data", Code: 554, Enhanced: "5.2.0", Message: "SubmissionQuotaExceeded"}, false, 0},
		{"network", fmt.Errorf("send: %w", io.ErrUnexpectedEOF), false, 0},
		{"api wrapped", fmt.Errorf("send: %w", &throttledErr{wait: 7 * time.Second}), true, 7 * time.Second},
		{"nil", nil, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wait, got := throttling(tc.err)
			if got != tc.want || wait != tc.wait {
				t.Errorf("throttling(%v) = %v, %v; want %v, %v", tc.err, wait, got, tc.want, tc.wait)
			}
		})
	}
}
