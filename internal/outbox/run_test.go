package outbox

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/store"
)

// gateMailer holds Send until released and fails it if its context was
// cancelled by then.
type gateMailer struct {
	entered, release chan struct{}
}

func (m *gateMailer) Send(ctx context.Context, _ []byte) error {
	close(m.entered)
	<-m.release
	return ctx.Err()
}

func (m *gateMailer) Sent(context.Context, string) (bool, bool) { return false, false }

func (m *gateMailer) Permanent(err error) bool { return !errors.Is(err, context.Canceled) }

// TestRunStopFinishesTheMessage: cancelling Run's context does not cancel
// the message being sent: it is sent and recorded, then Run returns.
func TestRunStopFinishesTheMessage(t *testing.T) {
	st := openStore(t)
	id, err := st.Enqueue(t.Context(), "g", "a@example.com", []string{"b@example.com"}, []byte("Subject: x\r\n\r\nbody\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	m := &gateMailer{entered: make(chan struct{}), release: make(chan struct{})}
	w := &Worker{Store: st, Senders: []*Sender{{Name: "g", Mailer: m}}, Poll: 20 * time.Millisecond, Backoff: time.Hour}
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	select {
	case <-m.entered:
	case <-time.After(time.Minute):
		t.Fatal("nothing sent")
	}
	stop()
	close(m.release)
	<-done
	got, err := st.OutboxMessageStatus(t.Context(), id)
	if err != nil || got.State != store.OutboxSent {
		t.Fatalf("message %+v %v, want sent", got, err)
	}
}

// openStore opens a SQLite store in the test's directory, closed when the
// test ends.
func openStore(t *testing.T) *store.Store {
	t.Helper()
	return openStoreAt(t, "sqlite:"+filepath.Join(t.TempDir(), "db"))
}

// openStoreAt opens a handle of the store at dsn, closed when the test
// ends.
func openStoreAt(t *testing.T, dsn string) *store.Store {
	t.Helper()
	st, err := store.Open(t.Context(), dsn, &store.Options{Key: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
