package agent

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/mailbox"
)

// lostLedger refuses every MarkDelivered as a ledger does once the
// mailbox's lease is another instance's.
type lostLedger struct {
	storeLedger
	refused atomic.Int64
}

func (l *lostLedger) MarkDelivered(context.Context, string, []LedgerEntry) error {
	l.refused.Add(1)
	return fmt.Errorf("store: lease lost: %w", ErrLeaseLost)
}

// TestLeaseLostStopsTheMailbox: a ledger write refused because the lease
// moved on ends the run before any after-action on the server, and the
// supervisor stops serving the mailbox instead of reconnecting (Serve
// returns by itself).
func TestLeaseLostStopsTheMailbox(t *testing.T) {
	srv := newServer(20)
	mb, st, _, _ := setup(t, srv, "seen")
	l := &lostLedger{storeLedger: st}
	dials := &countingDialer{Dialer: srv}
	mb.Dialer = dials
	sup := &Supervisor{Mailboxes: []*Mailbox{mb}, Ledger: l}
	done := make(chan struct{})
	go func() { sup.Serve(t.Context(), time.Minute); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("Serve kept serving a mailbox whose lease is lost")
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.seen) != 0 {
		t.Errorf("%d messages marked on the server after the lease was lost", len(srv.seen))
	}
	if n := dials.n.Load(); n != 1 || l.refused.Load() == 0 {
		t.Errorf("%d connections and %d refused ledger writes, want 1 connection (no reconnect after the loss)", n, l.refused.Load())
	}
}

type countingDialer struct {
	mailbox.Dialer
	n atomic.Int64
}

func (d *countingDialer) Dial(ctx context.Context) (mailbox.Conn, error) {
	d.n.Add(1)
	return d.Dialer.Dial(ctx)
}

// ctxGate is a syncGate whose Sync also ends when its context does.
type ctxGate struct{ *syncGate }

func (g ctxGate) Sync(ctx context.Context) error {
	g.once.Do(func() { close(g.entered) })
	select {
	case <-g.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.Sink.Sync(ctx)
}

// TestServeAbortCancelsAtOnce: closing Abort with the stop cancels the
// batch in progress instead of letting it finish (the grace period is a
// minute here): nothing is recorded or acknowledged.
func TestServeAbortCancelsAtOnce(t *testing.T) {
	srv := newServer(3)
	mb, st, _, _ := setup(t, srv, "seen")
	gate := &syncGate{Sink: mb.Sink, entered: make(chan struct{}), release: make(chan struct{})}
	mb.Sink = ctxGate{gate}
	abort := make(chan struct{})
	sup := &Supervisor{Mailboxes: []*Mailbox{mb}, Ledger: st, Abort: abort}
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { sup.Serve(ctx, time.Hour); close(done) }()
	select {
	case <-gate.entered:
	case <-time.After(time.Minute):
		t.Fatal("no Sync began")
	}
	stop()
	close(abort)
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("Serve waited for the batch despite Abort")
	}
	close(gate.release)
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.seen) != 0 {
		t.Errorf("%d messages acknowledged after Abort", len(srv.seen))
	}
	if got, err := st.Delivered(t.Context(), mb.Name, []string{"mb/imap/100/1", "mb/imap/100/2", "mb/imap/100/3"}); err != nil || len(got) != 0 {
		t.Errorf("recorded after Abort: %v %v", got, err)
	}
}
