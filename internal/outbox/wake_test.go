package outbox

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// TestEnqueueWakesWorker: a worker whose poll is an hour sends a message
// queued through another handle of its SQLite store (another process, as
// `mailgate send` is) without waiting for the poll: the enqueue's wake
// reaches it through the socket beside the database.
func TestEnqueueWakesWorker(t *testing.T) {
	t.Parallel()
	ps := startSMTP(t)
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "db")
	serve, send := openStoreAt(t, dsn), openStoreAt(t, dsn)
	snd := &Sender{Name: "s", Dial: ps.dial}
	w := &Worker{Store: serve, Senders: []*Sender{snd}, Poll: time.Hour, Backoff: time.Hour}
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() { stop(); <-done }()
	// the worker's first look at the (empty) queue, then its hour-long wait
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if st, _ := w.Status(t.Context()); len(st) == 1 && st[0].State == stateIdle {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the worker did not start")
		}
	}
	time.Sleep(200 * time.Millisecond)
	if _, err := send.Enqueue(t.Context(), "s", "a@example.com", []string{"b@example.com"}, []byte("Subject: woken\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); w.Stats().Sent != 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not sent 30 s after the enqueue with an hour's poll: the wake did not reach the worker (stats %+v)", w.Stats())
		}
	}
}
