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
//
// Senders that go through Microsoft Graph (Sender.Mailer) close that window
// where the API allows it: a recovered message is looked up by its
// Message-ID in the sender's Sent Items and sent again only if it is not
// there (Stats.Confirmed counts the ones found).
package outbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/mail"
	"strings"
	"sync"
	"time"

	"github.com/mailgate/mailgate/internal/smtp"
	"github.com/mailgate/mailgate/internal/store"
)

// Sender is one configured sender as the worker uses it: SMTP (Dial) or
// an API that takes whole messages (Mailer, for Microsoft Graph).
type Sender struct {
	Name string
	// Dial connects and authenticates (with a current token).
	Dial func(ctx context.Context) (*smtp.Client, error)
	// Bearer is the token Dial logs in with; its Invalidate drops the
	// cached token after an authentication refusal. Nil: nothing to drop.
	Bearer interface{ Invalidate() }
	// Mailer, when set, sends instead of SMTP; Dial is not used.
	Mailer Mailer
	// Rate is the most messages a minute the sender submits: no two
	// submissions closer than 60/Rate seconds. 0: no pacing.
	Rate int
}

// Mailer sends a whole message through an API that reads the recipients
// from its headers (Graph's sendMail).
type Mailer interface {
	Send(ctx context.Context, raw []byte) error
	// Sent reports whether the message with this Message-ID already went
	// (Graph: it is in the sender's Sent Items); known is false when the
	// API cannot tell. A message a crash left in "sending" is looked up
	// before it is sent again.
	Sent(ctx context.Context, messageID string) (sent, known bool)
	// Permanent says whether an error from Send will recur for this
	// message (the message is refused, not the sender's setup).
	Permanent(err error) bool
}

// Stats counts what the worker did since it started.
type Stats struct {
	Sent, Retried, Failed, Recovered int
	// Confirmed counts recovered messages found already sent (Mailer.Sent)
	// and so not sent again.
	Confirmed int
	// Throttled counts throttling answers (SMTP 421, 451, 452, 4.3.2,
	// SubmissionQuotaExceeded; Graph 429, 503): the message waits and the
	// sender pauses; nothing is failed for it.
	Throttled int
	Window    time.Duration // longest 250-to-commit time seen
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
	// OnSent and OnThrottled, when set, are called with the sender's name
	// for each message the server accepted and each throttling answer
	// (metrics).
	OnSent, OnThrottled func(sender string)

	mu    sync.Mutex
	stats Stats
}

// Stats returns a copy of the counters.
func (w *Worker) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats
}

// Run works until ctx is done; a message being sent then is finished
// first (the work sees ctx's values, not its cancellation).
func (w *Worker) Run(ctx context.Context) {
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
		wg.Go(func() { w.loop(context.WithoutCancel(ctx), ctx.Done(), s) })
	}
	wg.Wait()
}

func (w *Worker) loop(base context.Context, stop <-chan struct{}, s *Sender) {
	ctx, cancel := context.WithCancel(base)
	defer cancel()
	g := &gate{}
	if s.Rate > 0 {
		g.every = time.Minute / time.Duration(s.Rate)
	}
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
		if s.Mailer != nil {
			for _, m := range msgs {
				if !g.wait(stop) {
					return
				}
				if w.sendAPI(ctx, s.Mailer, m, g) {
					break
				}
			}
		} else {
			for i, m := range msgs {
				if !g.wait(stop) {
					return
				}
				// a connection idle for a while may have been dropped (or its
				// server restarted): check before trusting it with a message
				if c != nil && time.Since(lastUse) > 5*time.Second && c.Noop() != nil {
					_ = c.Close()
					c = nil
				}
				if c == nil {
					c, err = s.Dial(ctx)
					var se *smtp.Error
					if err != nil && errors.As(err, &se) && se.Step == "auth" && s.Bearer != nil {
						s.Bearer.Invalidate()
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
				ok, throttled := w.send(ctx, c, m, g)
				if !ok {
					_ = c.Close()
					c = nil
				}
				lastUse = time.Now()
				if throttled {
					break
				}
			}
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
// good and whether the server throttled the sender.
func (w *Worker) send(ctx context.Context, c *smtp.Client, m store.OutboxMessage, g *gate) (ok, throttled bool) {
	var rcpts []string
	for _, r := range m.Rcpts {
		if r.State != store.OutboxFailed {
			rcpts = append(rcpts, r.Addr)
		}
	}
	if len(rcpts) == 0 {
		// only a damaged row has no recipient left: fail it rather than
		// open a transaction the server must refuse
		w.Log.Warn("outbox: no recipient left", "id", m.ID)
		_ = w.Store.MarkFailed(ctx, m.ID, "", "no recipient left to send to")
		w.mu.Lock()
		w.stats.Failed++
		w.mu.Unlock()
		return true, false
	}
	if err := w.Store.MarkSending(ctx, m.ID); err != nil {
		w.retry(ctx, m, err)
		return true, false
	}
	m.Attempts++
	refused, err := c.SendEach(m.From, rcpts, bytes.NewReader(m.Raw))
	accepted := time.Now()
	g.sent()
	if err == nil {
		g.throttles = 0
		// the refused recipients first, so that nobody reads the message as
		// sent with a refused recipient still queued
		for _, r := range refused {
			_ = w.Store.MarkFailed(ctx, m.ID, r.Rcpt, reply(r.Err))
		}
		if cerr := w.Store.MarkSent(ctx, m.ID); cerr != nil {
			w.Log.Error("outbox: record sent", "id", m.ID, "err", cerr)
		}
		window := time.Since(accepted)
		w.event(w.OnSent, m.Sender)
		w.mu.Lock()
		w.stats.Sent++
		w.stats.Failed += len(refused)
		w.stats.Window = max(w.stats.Window, window)
		w.mu.Unlock()
		return true, false
	}
	if wait, ok := throttling(err); ok {
		w.throttle(ctx, m, g, wait, err)
		return false, true
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
		return true, false
	}
	w.retry(ctx, m, err)
	return false, false
}

// sendAPI sends one message through a Mailer. A message that a crash
// left in "sending" is first looked up, so that one the API already took is
// recorded as sent instead of going out twice. It reports whether the API
// throttled the sender.
func (w *Worker) sendAPI(ctx context.Context, api Mailer, m store.OutboxMessage, g *gate) bool {
	if m.State == store.OutboxSending {
		if id := messageID(m.Raw); id != "" {
			if sent, known := api.Sent(ctx, id); known && sent {
				w.Log.Info("outbox: a message left in sending by a crash had already gone; not sent again", "id", m.ID, "message_id", id)
				if err := w.Store.MarkSent(ctx, m.ID); err != nil {
					w.Log.Error("outbox: record sent", "id", m.ID, "err", err)
				}
				w.mu.Lock()
				w.stats.Confirmed++
				w.stats.Recovered--
				w.mu.Unlock()
				return false
			}
		}
	}
	if err := w.Store.MarkSending(ctx, m.ID); err != nil {
		w.retry(ctx, m, err)
		return false
	}
	m.Attempts++
	err := api.Send(ctx, m.Raw)
	g.sent()
	if wait, ok := throttling(err); ok {
		w.throttle(ctx, m, g, wait, err)
		return true
	}
	switch {
	case err == nil:
		g.throttles = 0
		if cerr := w.Store.MarkSent(ctx, m.ID); cerr != nil {
			w.Log.Error("outbox: record sent", "id", m.ID, "err", cerr)
		}
		w.event(w.OnSent, m.Sender)
		w.mu.Lock()
		w.stats.Sent++
		w.mu.Unlock()
	case api.Permanent(err):
		w.Log.Warn("outbox: refused", "id", m.ID, "err", err)
		_ = w.Store.MarkFailed(ctx, m.ID, "", withHint(err))
		w.mu.Lock()
		w.stats.Failed++
		w.mu.Unlock()
	default:
		w.Log.Warn("outbox: will retry", "id", m.ID, "err", err)
		w.retry(ctx, m, err)
	}
	return false
}

// messageID is the Message-ID header of a message, angle brackets kept.
func messageID(raw []byte) string {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(msg.Header.Get("Message-Id"))
}

// withHint is an error's text with its fix, when it has one.
func withHint(err error) string {
	var h interface{ Hint() string }
	if errors.As(err, &h) && h.Hint() != "" {
		return err.Error() + " — fix: " + h.Hint()
	}
	return err.Error()
}

func (w *Worker) retry(ctx context.Context, m store.OutboxMessage, err error) {
	d := w.Backoff << min(max(m.Attempts-1, 0), 7)
	d = min(d, time.Hour)
	next := time.Now().Add(d/2 + rand.N(d/2+1))
	msg := withHint(err)
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

// gate paces one sender: the spacing its Rate asks for, and the pause
// after the server throttled it.
type gate struct {
	every     time.Duration
	next      time.Time // earliest next submission
	throttles int       // throttling answers in a row
}

// wait sleeps until the sender may submit; false when stopped first.
func (g *gate) wait(stop <-chan struct{}) bool {
	d := time.Until(g.next)
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-stop:
		return false
	case <-t.C:
		return true
	}
}

// sent records a submission: the next one waits for the rate's spacing.
func (g *gate) sent() {
	g.next = time.Now().Add(g.every)
}

// throttling says whether err is the server or API asking the sender to
// slow down, and how long it asked to wait (0: not said). SMTP: 421, 451,
// 452, enhanced 4.3.2, or Exchange's SubmissionQuotaExceeded; an API error
// with a Throttled method (Graph's 429 and 503) and its RetryAfter.
func throttling(err error) (time.Duration, bool) {
	if err == nil {
		return 0, false
	}
	var te interface{ Throttled() (time.Duration, bool) }
	if errors.As(err, &te) {
		return te.Throttled()
	}
	var se *smtp.Error
	if !errors.As(err, &se) {
		return 0, false
	}
	switch {
	case se.Code == 421, se.Code == 451, se.Code == 452, se.Enhanced == "4.3.2",
		se.Code/100 == 4 && strings.Contains(se.Message, "SubmissionQuotaExceeded"):
		return 0, true
	}
	return 0, false
}

// throttle puts the message back in the queue behind a pause of the whole
// sender: wait when the server named it, else Backoff doubled per
// throttling answer in a row (capped at 1 h). The message is not failed.
func (w *Worker) throttle(ctx context.Context, m store.OutboxMessage, g *gate, wait time.Duration, err error) {
	if wait <= 0 {
		wait = min(w.Backoff<<min(g.throttles, 7), time.Hour)
	}
	g.throttles++
	g.next = time.Now().Add(wait)
	msg := withHint(err)
	var se *smtp.Error
	if errors.As(err, &se) {
		msg = reply(se)
	}
	w.Log.Warn("outbox: throttled; the sender pauses", "id", m.ID, "wait", wait, "err", msg)
	_ = w.Store.MarkRetry(ctx, m.ID, g.next, msg)
	w.event(w.OnThrottled, m.Sender)
	w.mu.Lock()
	w.stats.Throttled++
	w.stats.Retried++
	w.mu.Unlock()
}

// event calls a hook when it is set.
func (w *Worker) event(hook func(string), sender string) {
	if hook != nil {
		hook(sender)
	}
}
