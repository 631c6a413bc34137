package agent

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/mailbox"
	"github.com/mailgate/mailgate/internal/sink"
)

// pickySink refuses the messages whose key ends in one of its suffixes,
// permanently (a webhook's 4xx, a command's exit 1) or temporarily (a 503,
// exit 75), at Commit as the real sinks do.
type pickySink struct {
	sink.Sink
	mu        sync.Mutex
	refuse    map[string]bool // key suffix → permanent
	attempts  map[string]int
	committed map[string]int
}

func newPicky(s sink.Sink) *pickySink {
	return &pickySink{Sink: s, refuse: map[string]bool{}, attempts: map[string]int{}, committed: map[string]int{}}
}

func (s *pickySink) set(suffix string, permanent bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse[suffix] = permanent
}

func (s *pickySink) fix() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse = map[string]bool{}
}

func (s *pickySink) tries(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts[key]
}

type pickyDelivery struct {
	sink.Delivery
	s   *pickySink
	key string
}

func (s *pickySink) Begin(ctx context.Context, m sink.Message) (sink.Delivery, error) {
	d, err := s.Sink.Begin(ctx, m)
	if err != nil {
		return nil, err
	}
	return &pickyDelivery{Delivery: d, s: s, key: m.Key}, nil
}

func (d *pickyDelivery) Commit(ctx context.Context) (sink.Receipt, error) {
	d.s.mu.Lock()
	d.s.attempts[d.key]++
	for suffix, perm := range d.s.refuse {
		if strings.HasSuffix(d.key, suffix) {
			d.s.mu.Unlock()
			d.Delivery.Abort()
			return sink.Receipt{}, &sink.Error{Sink: "picky", Permanent: perm, Err: errors.New("refused " + d.key)}
		}
	}
	d.s.committed[d.key]++
	d.s.mu.Unlock()
	return d.Delivery.Commit(ctx)
}

func heldOf(t *testing.T, st storeLedger) map[string]HeldMessage {
	t.Helper()
	h, err := st.HeldKeys(t.Context(), "mb")
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestPermanentRefusalSetAside: a message refused permanently in the
// middle of a mailbox is held, the messages after it are delivered, its
// after-action is not applied, later runs do not fetch it again, and a
// retry once the sink is fixed delivers it exactly once.
func TestPermanentRefusalSetAside(t *testing.T) {
	for _, pop := range []bool{false, true} {
		name := "imap"
		if pop {
			name = "pop3"
		}
		t.Run(name, func(t *testing.T) {
			srv := newServer(10)
			srv.pop = pop
			mb, st, md, dir := setup(t, srv, "seen")
			ps := newPicky(md)
			mb.Sink = ps
			ps.set("/3", true)
			s, err := RunOnce(t.Context(), mb, st, nil, nil)
			if err != nil || s.Delivered != 9 || s.Held != 1 || count(t, dir) != 9 {
				t.Fatalf("first run: %+v %v, %d files; want 9 delivered and 1 held", s, err, count(t, dir))
			}
			if srv.seen[3] || len(srv.seen) != 9 {
				t.Errorf("after-action: %d seen, UID 3 seen %v; want the 9 delivered only", len(srv.seen), srv.seen[3])
			}
			h := heldOf(t, st)["mb/imap/100/3"]
			if h.State != HeldRefused || !h.Permanent || h.Attempts != 1 || h.UID != "3" || h.MessageID != "<m3@test>" || !strings.Contains(h.Reason, "refused") {
				t.Fatalf("held row: %+v", h)
			}
			srv.add()
			s, err = RunOnce(t.Context(), mb, st, nil, nil)
			if err != nil || s.Fetched != 1 || s.Delivered != 1 || ps.tries("mb/imap/100/3") != 1 {
				t.Fatalf("second run: %+v %v, %d tries of UID 3; want only the new message fetched", s, err, ps.tries("mb/imap/100/3"))
			}
			ps.fix()
			if n, err := st.RetryHeld(t.Context(), "mb", "mb/imap/100/3"); err != nil || n != 1 {
				t.Fatalf("retry: %d %v", n, err)
			}
			s, err = RunOnce(t.Context(), mb, st, nil, nil)
			if err != nil || s.Delivered != 1 || !srv.seen[3] || count(t, dir) != 11 || len(heldOf(t, st)) != 0 {
				t.Fatalf("run after retry: %+v %v, seen %v, %d files, held %v", s, err, srv.seen[3], count(t, dir), heldOf(t, st))
			}
			s, err = RunOnce(t.Context(), mb, st, nil, nil)
			if err != nil || s.Fetched != 0 || ps.committed["mb/imap/100/3"] != 1 {
				t.Fatalf("last run: %+v %v, %d commits of UID 3", s, err, ps.committed["mb/imap/100/3"])
			}
		})
	}
}

// TestDropHeld: a dropped message is never fetched again and stays on the
// server as it was.
func TestDropHeld(t *testing.T) {
	srv := newServer(4)
	srv.pop = true // the scan lists it on every run
	mb, st, md, dir := setup(t, srv, "delete")
	ps := newPicky(md)
	mb.Sink = ps
	ps.set("/2", true)
	if s, err := RunOnce(t.Context(), mb, st, nil, nil); err != nil || s.Delivered != 3 || s.Held != 1 {
		t.Fatalf("first run: %+v %v", s, err)
	}
	if err := st.DropHeld(t.Context(), "mb", "mb/imap/100/2"); err != nil {
		t.Fatal(err)
	}
	ps.fix()
	s, err := RunOnce(t.Context(), mb, st, nil, nil)
	if err != nil || s.Fetched != 0 || ps.tries("mb/imap/100/2") != 1 || count(t, dir) != 3 {
		t.Fatalf("run after drop: %+v %v, %d tries", s, err, ps.tries("mb/imap/100/2"))
	}
	if _, ok := srv.msgs[2]; !ok || len(srv.msgs) != 1 {
		t.Errorf("the dropped message must stay on the server, the others deleted: %d left", len(srv.msgs))
	}
}

// TestTemporaryRefusalDoesNotBlock: a message the sink keeps refusing
// temporarily stops the run a few times (the run's backoff), then is set
// aside as deferred so the messages after it flow; it is retried
// automatically once its time comes, with a growing delay, and delivered
// once the sink takes it.
func TestTemporaryRefusalDoesNotBlock(t *testing.T) {
	srv := newServer(10)
	mb, st, md, dir := setup(t, srv, "seen")
	ps := newPicky(md)
	mb.Sink = ps
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	mb.Clock = func() time.Time { return now }
	ps.set("/3", false)
	for i := range maxTemporary - 1 {
		s, err := RunOnce(t.Context(), mb, st, nil, nil)
		if err == nil || !errors.As(err, new(*sink.Error)) {
			t.Fatalf("run %d: %+v %v; want the sink's temporary refusal", i+1, s, err)
		}
		if h := heldOf(t, st)["mb/imap/100/3"]; h.State != HeldFailing || h.Attempts != i+1 {
			t.Fatalf("run %d: %+v", i+1, h)
		}
	}
	s, err := RunOnce(t.Context(), mb, st, nil, nil)
	if err != nil || count(t, dir) != 9 || len(srv.seen) != 9 || srv.seen[3] {
		t.Fatalf("run %d: %+v %v, %d files, %d seen; want the 9 others delivered", maxTemporary, s, err, count(t, dir), len(srv.seen))
	}
	h := heldOf(t, st)["mb/imap/100/3"]
	if h.State != HeldDeferred || h.Attempts != maxTemporary || !h.NextAt.After(now) || h.Permanent {
		t.Fatalf("deferred row: %+v", h)
	}
	first := h.NextAt.Sub(now)
	// not due: not fetched
	if s, err := RunOnce(t.Context(), mb, st, nil, nil); err != nil || s.Fetched != 0 {
		t.Fatalf("run before it is due: %+v %v", s, err)
	}
	// due, refused again: deferred longer
	now = h.NextAt
	if s, err := RunOnce(t.Context(), mb, st, nil, nil); err != nil || s.Fetched != 1 || s.Delivered != 0 {
		t.Fatalf("due run: %+v %v", s, err)
	}
	h = heldOf(t, st)["mb/imap/100/3"]
	if h.State != HeldDeferred || h.Attempts != maxTemporary+1 || h.NextAt.Sub(now) <= first {
		t.Fatalf("deferred again: %+v, delay %v after %v", h, h.NextAt.Sub(now), first)
	}
	// the sink recovers: delivered once at the next due run, then acked
	ps.fix()
	now = h.NextAt
	if s, err := RunOnce(t.Context(), mb, st, nil, nil); err != nil || s.Delivered != 1 || !srv.seen[3] || count(t, dir) != 10 || len(heldOf(t, st)) != 0 {
		t.Fatalf("recovered: %+v %v, %d files, held %v", s, err, count(t, dir), heldOf(t, st))
	}
}

// TestHeldAcrossUIDValidity: after the folder was recreated, a held
// message keeps being held under its new key, not fetched again.
func TestHeldAcrossUIDValidity(t *testing.T) {
	srv := newServer(5)
	mb, st, md, _ := setup(t, srv, "keep")
	ps := newPicky(md)
	mb.Sink = ps
	ps.set("/100/4", true)
	if s, err := RunOnce(t.Context(), mb, st, nil, nil); err != nil || s.Held != 1 {
		t.Fatalf("first run: %+v %v", s, err)
	}
	srv.mu.Lock()
	srv.validity = "200"
	srv.mu.Unlock()
	s, err := RunOnce(t.Context(), mb, st, nil, nil)
	if err != nil || s.Rekeyed != 4 || s.Fetched != 0 {
		t.Fatalf("resync: %+v %v", s, err)
	}
	held := heldOf(t, st)
	if h, ok := held["mb/imap/200/4"]; !ok || h.State != HeldRefused || len(held) != 1 {
		t.Fatalf("held after resync: %+v", held)
	}
}

// TestSupervisorWake: a retried message does not wait for the poll
// interval (an hour here) or the IDLE wait: Wake runs the mailbox now.
func TestSupervisorWake(t *testing.T) {
	for _, idle := range []bool{false, true} {
		t.Run(map[bool]string{false: "poll", true: "idle"}[idle], func(t *testing.T) {
			srv := newServer(3)
			mb, st, md, dir := setup(t, srv, "seen")
			ps := newPicky(md)
			mb.Sink, mb.Interval, mb.Idle = ps, time.Hour, idle
			mb.Dialer = waitDialer{srv}
			ps.set("/2", true)
			runs := make(chan Stats, 10)
			sup := &Supervisor{Mailboxes: []*Mailbox{mb}, Ledger: st, OnRun: func(s Status) { runs <- s.Last }}
			ctx, stop := context.WithCancel(t.Context())
			done := make(chan struct{})
			go func() { sup.Serve(ctx, time.Minute); close(done) }()
			defer func() { stop(); <-done }()
			next := func() Stats {
				select {
				case s := <-runs:
					return s
				case <-time.After(time.Minute):
					t.Fatal("no run within a minute")
				}
				return Stats{}
			}
			if s := next(); s.Held != 1 || s.Delivered != 2 {
				t.Fatalf("first run: %+v", s)
			}
			ps.fix()
			if _, err := st.RetryHeld(t.Context(), "mb", "mb/imap/100/2"); err != nil {
				t.Fatal(err)
			}
			sup.Wake("mb")
			sup.Wake("nobody")
			if s := next(); s.Delivered != 1 || count(t, dir) != 3 {
				t.Fatalf("run after Wake: %+v, %d files", s, count(t, dir))
			}
		})
	}
}

// waitDialer's connections wait for new mail (IDLE) until cancelled.
type waitDialer struct{ s *memServer }

func (d waitDialer) Dial(context.Context) (mailbox.Conn, error) {
	return waitConn{&memConn{s: d.s}}, nil
}

type waitConn struct{ *memConn }

func (waitConn) Wait(ctx context.Context, _ time.Duration) error {
	<-ctx.Done()
	return ctx.Err()
}

// TestRetryOfVanishedMessage: a held message deleted on the server in the
// meantime is forgotten at the retry that finds it gone, not asked for on
// every run.
func TestRetryOfVanishedMessage(t *testing.T) {
	srv := newServer(4)
	mb, st, md, _ := setup(t, srv, "seen")
	ps := newPicky(md)
	mb.Sink = ps
	ps.set("/2", true)
	if s, err := RunOnce(t.Context(), mb, st, nil, nil); err != nil || s.Held != 1 {
		t.Fatalf("first run: %+v %v", s, err)
	}
	srv.mu.Lock()
	delete(srv.msgs, 2)
	srv.mu.Unlock()
	if _, err := st.RetryHeld(t.Context(), "mb", "mb/imap/100/2"); err != nil {
		t.Fatal(err)
	}
	if s, err := RunOnce(t.Context(), mb, st, nil, nil); err != nil || s.Fetched != 0 {
		t.Fatalf("run after retry: %+v %v", s, err)
	}
	if h := heldOf(t, st); len(h) != 0 {
		t.Fatalf("still held: %+v", h)
	}
}

// TestHeldAcrossAFailedRun: the fetch dies after a message was refused;
// the refusal is recorded although the cursor did not move, so the next
// run skips it and delivers the rest.
func TestHeldAcrossAFailedRun(t *testing.T) {
	srv := newServer(10)
	srv.failAt = 4
	mb, st, md, dir := setup(t, srv, "seen")
	ps := newPicky(md)
	mb.Sink = ps
	ps.set("/3", true)
	if _, err := RunOnce(t.Context(), mb, st, nil, nil); err == nil {
		t.Fatal("want the fetch error")
	}
	if h := heldOf(t, st)["mb/imap/100/3"]; h.State != HeldRefused || count(t, dir) != 3 {
		t.Fatalf("after the failed run: %+v, %d files", h, count(t, dir))
	}
	srv.failAt = 0
	s, err := RunOnce(t.Context(), mb, st, nil, nil)
	if err != nil || s.Fetched != 6 || s.Delivered != 6 || ps.tries("mb/imap/100/3") != 1 || count(t, dir) != 9 || srv.seen[3] {
		t.Fatalf("next run: %+v %v, %d tries of UID 3, %d files", s, err, ps.tries("mb/imap/100/3"), count(t, dir))
	}
}
