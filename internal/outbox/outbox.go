// Package outbox sends the messages queued in the store: one worker per
// sender, a connection reused across messages, retries with backoff for
// temporary failures (4xx, network), a permanent failure (5xx) recorded
// with the server's reply and its explanation, and a status per recipient.
//
// Nothing queued is lost: a message is marked "sending" in the store before
// it goes to the server and "sent" after the server accepted it. The one
// window in which a crash sends a message twice is between the server's
// 250 to the end of DATA and the store's commit of "sent" (one durable
// transaction, a few milliseconds; Worker.Window reports what it measured).
// SMTP has no way to close it: the server cannot be asked whether it took a
// message. After a crash, messages found in "sending" are sent again and
// counted as possible duplicates (Stats.Recovered).
package outbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/mailgate/mailgate/internal/smtp"
	"github.com/mailgate/mailgate/internal/store"
)

// Sender is one configured sender as the worker uses it.
type Sender struct {
	Name string
	// Dial connects and authenticates (with a current token).
	Dial func(ctx context.Context) (*smtp.Client, error)
	// RenewToken drops the cached token after an authentication refusal.
	RenewToken func()
}

// Stats counts what the worker did since it started.
type Stats struct {
	Sent, Retried, Failed, Recovered int
	Window                           time.Duration // longest 250-to-commit time seen
}

// Worker sends queued messages until stopped.
type Worker struct {
	Store   *store.Store
	Senders []*Sender
	Log     *slog.Logger
	// Poll is how often the queue is looked at; default 1 s.
	Poll time.Duration
	// Backoff is the first retry delay (doubled per attempt, capped at 1 h,
	// with jitter); default 30 s.
	Backoff time.Duration

	mu    sync.Mutex
	stats Stats
}

// Stats returns a copy of the counters.
func (w *Worker) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats
}

// Run works until stop is closed.
func (w *Worker) Run(stop <-chan struct{}) {
	if w.Log == nil {
		w.Log = slog.New(slog.DiscardHandler)
	}
	if w.Poll <= 0 {
		w.Poll = time.Second
	}
	if w.Backoff <= 0 {
		w.Backoff = 30 * time.Second
	}
	var wg sync.WaitGroup
	for _, s := range w.Senders {
		wg.Go(func() { w.loop(stop, s) })
	}
	wg.Wait()
}

func (w *Worker) loop(stop <-chan struct{}, s *Sender) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var c *smtp.Client
	var lastUse time.Time
	defer func() {
		if c != nil {
			_ = c.Quit()
		}
	}()
	for {
		select {
		case <-stop:
			return
		default:
		}
		msgs, recovered, err := w.Store.ClaimDue(ctx, s.Name, 50)
		if err != nil {
			w.Log.Error("outbox: queue", "sender", s.Name, "err", err)
		}
		if recovered > 0 {
			w.Log.Warn("outbox: messages left in sending by a crash are sent again (possible duplicates)", "sender", s.Name, "n", recovered)
			w.mu.Lock()
			w.stats.Recovered += recovered
			w.mu.Unlock()
		}
		for i, m := range msgs {
			// a connection idle for a while may have been dropped (or its
			// server restarted): check before trusting it with a message
			if c != nil && time.Since(lastUse) > 5*time.Second && c.Noop() != nil {
				_ = c.Close()
				c = nil
			}
			if c == nil {
				c, err = s.Dial(ctx)
				var se *smtp.Error
				if err != nil && errors.As(err, &se) && se.Step == "auth" && s.RenewToken != nil {
					s.RenewToken()
					c, err = s.Dial(ctx)
				}
				if err != nil {
					w.Log.Warn("outbox: connect", "sender", s.Name, "err", err)
					for _, rest := range msgs[i:] {
						w.retry(ctx, rest, err)
					}
					c = nil
					break
				}
			}
			if !w.send(ctx, c, m) {
				_ = c.Close()
				c = nil
			}
			lastUse = time.Now()
		}
		if len(msgs) == 0 {
			t := time.NewTimer(w.Poll)
			select {
			case <-stop:
				t.Stop()
				return
			case <-t.C:
			}
		}
	}
}

// send submits one message; it reports whether the connection is still
// good.
func (w *Worker) send(ctx context.Context, c *smtp.Client, m store.OutboxMessage) bool {
	var rcpts []string
	for _, r := range m.Rcpts {
		if r.State != store.OutboxFailed {
			rcpts = append(rcpts, r.Addr)
		}
	}
	if err := w.Store.MarkSending(ctx, m.ID); err != nil {
		w.retry(ctx, m, err)
		return true
	}
	m.Attempts++
	refused, err := c.SendEach(m.From, rcpts, bytes.NewReader(m.Raw))
	accepted := time.Now()
	if err == nil {
		if cerr := w.Store.MarkSent(ctx, m.ID); cerr != nil {
			w.Log.Error("outbox: record sent", "id", m.ID, "err", cerr)
		}
		window := time.Since(accepted)
		for _, r := range refused {
			_ = w.Store.MarkFailed(ctx, m.ID, r.Rcpt, reply(r.Err))
		}
		w.mu.Lock()
		w.stats.Sent++
		w.stats.Failed += len(refused)
		w.stats.Window = max(w.stats.Window, window)
		w.mu.Unlock()
		return true
	}
	var se *smtp.Error
	if errors.As(err, &se) && se.Code >= 500 {
		w.Log.Warn("outbox: refused", "id", m.ID, "reply", reply(se))
		for _, r := range refused {
			_ = w.Store.MarkFailed(ctx, m.ID, r.Rcpt, reply(r.Err))
		}
		_ = w.Store.MarkFailed(ctx, m.ID, "", reply(se))
		w.mu.Lock()
		w.stats.Failed++
		w.mu.Unlock()
		return true
	}
	w.retry(ctx, m, err)
	return false
}

func (w *Worker) retry(ctx context.Context, m store.OutboxMessage, err error) {
	d := w.Backoff << min(max(m.Attempts-1, 0), 7)
	d = min(d, time.Hour)
	next := time.Now().Add(d/2 + rand.N(d/2+1))
	msg := err.Error()
	var se *smtp.Error
	if errors.As(err, &se) {
		msg = reply(se)
	}
	_ = w.Store.MarkRetry(ctx, m.ID, next, msg)
	w.mu.Lock()
	w.stats.Retried++
	w.mu.Unlock()
}

// reply is the server's reply with its explanation, for the status.
func reply(e *smtp.Error) string {
	s := strings.TrimPrefix(e.Error(), "smtp: ")
	if meaning, fix := e.Explain(); meaning != "" {
		s += fmt.Sprintf(" — %s; fix: %s", meaning, fix)
	}
	return s
}
