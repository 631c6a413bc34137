// Package outbox sends the messages queued in the store: per sender
// max_connections connections (Sender.MaxConns), each reused across
// messages and sending its own claimed batch, paced at the sender's rate
// and within its daily recipient budget; retries with backoff for
// temporary failures (4xx, network), a permanent failure (5xx) recorded
// with the server's reply and its explanation, and a status per recipient.
//
// Nothing queued is lost: a connection claims a batch (store.ClaimDue
// marks it "sending" in one transaction, with the claimer's name and a
// claim that lapses unless renewed, so that several serve instances on one
// PostgreSQL store never send the same message) and records each message
// "sent" right after the server accepted it, in a transaction shared with
// the other connections' (group commit), before the server can take the
// next: the next message's envelope and content travel during that
// commit, its final dot (which makes the server take it) only after. The one
// window in which a crash sends a message twice is between the server's
// 250 to the end of DATA and that commit (one transaction, a few
// milliseconds; Stats.Window reports the longest seen), one message per
// connection at most. SMTP has no way to close it: the server cannot be
// asked whether it took a message. After a crash, the messages of the
// batch being sent are taken again once their claim lapsed, and counted as
// possible duplicates (Stats.Recovered).
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
	"os"
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
	// MaxConns is how many connections (SMTP sessions, or concurrent API
	// requests) send at once, each with its own claimed batch; 0 is 1.
	MaxConns int
	// MaxRcptsPerDay is the most recipients submitted in any 24 hours;
	// messages beyond it stay queued until the budget frees up. 0: no
	// limit.
	MaxRcptsPerDay int
	// Pace, when set, is the PaceKey of the mailbox the sender submits as:
	// its gate is the one Worker.Gates holds for that key, shared with
	// others submitting as the mailbox. Empty: a gate of its own.
	Pace string
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
	// Poll is how often the queue is looked at when nothing wakes the
	// worker (Store.OutboxWake rings at every Enqueue); default 1 s.
	Poll time.Duration
	// Backoff is the first retry delay (doubled per attempt, capped at 1 h,
	// with jitter); default 30 s.
	Backoff time.Duration
	// Instance names this worker in the claims it takes (several serve
	// instances share one PostgreSQL outbox); default host-pid.
	Instance string
	// ClaimTTL is how long a claim holds before another worker may take
	// its messages (a claimer that crashed); a live claimer renews its
	// claim every third of it, however long a message takes. Default 15 s:
	// after a crash, its batch is sent again that much later.
	ClaimTTL time.Duration
	// OnSent and OnThrottled, when set, are called with the sender's name
	// for each message the server accepted and each throttling answer
	// (metrics).
	OnSent, OnThrottled func(sender string)
	// Gates, when set, holds the gates of senders with a Pace key (shared
	// with the legacy-client proxy, kept across reloads).
	Gates *Gates

	mu      sync.Mutex
	stats   Stats
	commits chan commit
	bell    bell
	lanes   map[string]*lane
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
	if w.ClaimTTL <= 0 {
		w.ClaimTTL = 15 * time.Second
	}
	if w.Instance == "" {
		host, _ := os.Hostname()
		w.Instance = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	wakeCtx, stopWake := context.WithCancel(ctx)
	defer stopWake()
	if wake, err := w.Store.OutboxWake(wakeCtx); wake != nil {
		if err != nil {
			w.Log.Warn("outbox: no wake from other processes; polling", "every", w.Poll, "err", err)
		}
		go func() {
			for {
				select {
				case <-wakeCtx.Done():
					return
				case <-wake:
					w.bell.ring()
				}
			}
		}()
	}
	w.commits = make(chan commit, 256)
	committed := make(chan struct{})
	go func() { w.commit(context.WithoutCancel(ctx)); close(committed) }()
	w.mu.Lock()
	w.lanes = map[string]*lane{}
	for _, s := range w.Senders {
		w.lanes[s.Name] = w.newLane(ctx, s)
	}
	w.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range w.Senders {
		for k := range max(s.MaxConns, 1) {
			by := fmt.Sprintf("%s/%s/%d", w.Instance, s.Name, k)
			wg.Go(func() { w.loop(context.WithoutCancel(ctx), ctx.Done(), w.lanes[s.Name], by) })
		}
	}
	wg.Wait()
	close(w.commits)
	<-committed
}

// lane is one sender as its connections share it: the pacing gate and
// the daily recipient budget (nil: no limit).
type lane struct {
	s *Sender
	g *gate
	b *budget
}

// newLane sets a sender up, its budget counting what the store recorded
// as sent in the last 24 hours.
func (w *Worker) newLane(ctx context.Context, s *Sender) *lane {
	l := &lane{s: s, g: w.Gates.gate(s.Pace, s.every())}
	if s.MaxRcptsPerDay > 0 {
		l.b = &budget{max: s.MaxRcptsPerDay}
		sent, err := w.Store.OutboxSentRcpts(ctx, s.Name, time.Now().Add(-day))
		if err != nil {
			w.Log.Warn("outbox: the day's recipients so far are unknown; counting from now", "sender", s.Name, "err", err)
		}
		for _, r := range sent {
			l.b.spent = append(l.b.spent, spend{at: r.At, n: r.N})
			l.b.used += r.N
		}
	}
	return l
}

// every is the spacing of s's messages at its rate (0: unpaced).
func (s *Sender) every() time.Duration {
	if s.Rate <= 0 {
		return 0
	}
	return time.Minute / time.Duration(s.Rate)
}

// batchSize is how many messages a connection claims at once: 50, or what
// the sender's pace lets it send in half a claim's time.
func (w *Worker) batchSize(l *lane) int {
	every := l.g.spacing()
	if every <= 0 {
		return 50
	}
	return min(max(int(w.ClaimTTL/2/every), 1), 50)
}

// loop is one connection of a sender: it claims a batch, sends it, and
// starts again; with nothing due it waits for the bell or the poll.
func (w *Worker) loop(base context.Context, stop <-chan struct{}, l *lane, by string) {
	ctx, cancel := context.WithCancel(base)
	defer cancel()
	cn := &conn{}
	defer cn.quit()
	for {
		select {
		case <-stop:
			return
		default:
		}
		// a throttled or over-budget sender claims nothing until it resumes
		if !l.g.waitHold(stop) {
			return
		}
		rung := w.bell.wait()
		claimed := time.Now()
		msgs, recovered, err := w.Store.ClaimDue(ctx, l.s.Name, w.batchSize(l), store.OutboxClaim{By: by, Until: claimed.Add(w.ClaimTTL)})
		if err != nil {
			w.Log.Error("outbox: queue", "sender", l.s.Name, "err", err)
		}
		if recovered > 0 {
			w.Log.Warn("outbox: messages left in sending by a crash are sent again (possible duplicates)", "sender", l.s.Name, "n", recovered)
			w.mu.Lock()
			w.stats.Recovered += recovered
			w.mu.Unlock()
		}
		renewed := w.renew(ctx, l.s.Name, by, len(msgs) > 0)
		for i, m := range msgs {
			if !l.g.wait(stop) {
				w.release(ctx, by, msgs[i:])
				renewed()
				return
			}
			var spent time.Time
			if l.b != nil {
				spent = time.Now()
				if ok, until := l.b.take(spent, live(m)); !ok {
					w.overBudget(ctx, l, by, msgs[i:], until)
					break
				}
			}
			var next, accepted bool
			if l.s.Mailer != nil {
				next, accepted = w.sendAPI(ctx, l.s.Mailer, m, l.g)
				next = !next
			} else {
				next, accepted = w.sendSMTP(ctx, l, cn, msgs[i:])
			}
			if l.b != nil && !accepted {
				l.b.give(spent, live(m))
			}
			if !next {
				w.release(ctx, by, msgs[i+1:])
				break
			}
		}
		renewed()
		if len(msgs) == 0 {
			t := time.NewTimer(w.Poll)
			select {
			case <-stop:
				t.Stop()
				return
			case <-rung:
				t.Stop()
			case <-t.C:
			}
		}
	}
}

// live is how many of a message's recipients are still to be sent to.
func live(m store.OutboxMessage) int {
	n := 0
	for _, r := range m.Rcpts {
		if r.State != store.OutboxFailed {
			n++
		}
	}
	return n
}

// overBudget holds the sender until its day's recipient budget allows
// msgs[0]: that message waits in the queue with the reason, the rest of
// the batch goes back unclaimed. Nothing is refused.
func (w *Worker) overBudget(ctx context.Context, l *lane, by string, msgs []store.OutboxMessage, until time.Time) {
	why := fmt.Sprintf("waits for the sender's daily recipient budget (%d in 24 h) until %s", l.s.MaxRcptsPerDay, until.UTC().Format(time.RFC3339))
	w.Log.Info("outbox: over the daily recipient budget; the sender waits", "sender", l.s.Name, "until", until)
	_ = w.Store.MarkRetry(ctx, msgs[0].ID, until, why)
	w.release(ctx, by, msgs[1:])
	l.g.hold(until, stateOverBudget)
}

// renew keeps by's claim alive while its batch is being sent (held): it
// extends the claim every third of ClaimTTL until the returned function
// is called.
func (w *Worker) renew(ctx context.Context, sender, by string, held bool) (done func()) {
	if !held {
		return func() {}
	}
	stop := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(w.ClaimTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if err := w.Store.ExtendClaim(ctx, by, time.Now().Add(w.ClaimTTL)); err != nil {
					w.Log.Warn("outbox: extend claim", "sender", sender, "err", err)
				}
			}
		}
	}()
	return func() { close(stop); <-finished }
}

// release hands claimed messages that were not sent back to the queue.
func (w *Worker) release(ctx context.Context, by string, msgs []store.OutboxMessage) {
	ids := make([]int64, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
	}
	if err := w.Store.ReleaseClaim(ctx, by, ids...); err != nil {
		w.Log.Warn("outbox: release", "err", err)
	}
}

// conn is a connection's SMTP session, kept across messages.
type conn struct {
	c       *smtp.Client
	lastUse time.Time
	// recorded is closed once the last message this connection got
	// accepted is recorded as sent (nil: none pending): the next message's
	// final dot waits for it, its envelope and content do not.
	recorded <-chan struct{}
}

func (cn *conn) quit() {
	if cn.c != nil {
		_ = cn.c.Quit()
	}
}

// sendSMTP sends msgs[0] over the connection, dialling it first when
// needed; it reports whether the connection goes on with the batch (false
// after a throttling answer, or when the connection failed and the rest
// was put back for a retry), and whether the server accepted the message.
func (w *Worker) sendSMTP(ctx context.Context, l *lane, cn *conn, msgs []store.OutboxMessage) (next, accepted bool) {
	// a connection idle for a while may have been dropped (or its server
	// restarted): check before trusting it with a message
	if cn.c != nil && time.Since(cn.lastUse) > 5*time.Second && cn.c.Noop() != nil {
		_ = cn.c.Close()
		cn.c = nil
	}
	if cn.c == nil {
		c, err := l.s.Dial(ctx)
		var se *smtp.Error
		if err != nil && errors.As(err, &se) && se.Step == "auth" && l.s.Bearer != nil {
			l.s.Bearer.Invalidate()
			c, err = l.s.Dial(ctx)
		}
		if err != nil {
			w.Log.Warn("outbox: connect", "sender", l.s.Name, "err", err)
			for _, rest := range msgs {
				w.retry(ctx, rest, err)
			}
			return false, false
		}
		cn.c = c
	}
	ok, throttled, accepted := w.send(ctx, cn, msgs[0], l.g)
	if !ok {
		_ = cn.c.Close()
		cn.c = nil
	}
	cn.lastUse = time.Now()
	return !throttled, accepted
}

// commit is a message the server accepted, waiting for its record.
type commit struct {
	rec      store.SentMessage
	sender   string
	accepted time.Time
	done     chan struct{} // closed once recorded
}

// record hands an accepted message to the committer and waits until it is
// recorded (an API sender sends its next message only then).
func (w *Worker) record(c commit) {
	<-w.hand(c)
}

// hand gives an accepted message to the committer and returns a channel
// closed once it is recorded. An SMTP connection sends the next message's
// envelope and content meanwhile and only its final dot after that, so
// that a crash finds at most one message per connection between the
// server's 250 and the commit (the double-send window).
func (w *Worker) hand(c commit) <-chan struct{} {
	c.done = make(chan struct{})
	w.commits <- c
	return c.done
}

// commit records accepted messages as sent, grouping those that arrive
// while a transaction is in progress into the next one (group commit):
// with several connections they share transactions; a message's
// 250-to-commit window is at most its own transaction plus the one before
// it, and with one connection it is one transaction, as if each were
// committed alone. It returns when the channel is closed and drained.
func (w *Worker) commit(ctx context.Context) {
	for c := range w.commits {
		batch := []commit{c}
	drain:
		for len(batch) < 256 {
			select {
			case c, ok := <-w.commits:
				if !ok {
					break drain
				}
				batch = append(batch, c)
			default:
				break drain
			}
		}
		recs := make([]store.SentMessage, len(batch))
		for i, c := range batch {
			recs[i] = c.rec
		}
		if err := w.Store.MarkSentAll(ctx, recs); err != nil {
			w.Log.Error("outbox: record sent", "n", len(recs), "err", err)
		}
		done := time.Now()
		for _, c := range batch {
			w.event(w.OnSent, c.sender)
		}
		w.mu.Lock()
		for _, c := range batch {
			w.stats.Sent++
			w.stats.Failed += len(c.rec.Refused)
			w.stats.Window = max(w.stats.Window, done.Sub(c.accepted))
		}
		w.mu.Unlock()
		for _, c := range batch {
			close(c.done)
		}
	}
}

// bell wakes every waiting connection at once (a closed channel).
type bell struct {
	mu sync.Mutex
	c  chan struct{}
}

// wait returns a channel closed at the next ring; take it before looking
// at the queue, so that a ring in between is not missed.
func (b *bell) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.c == nil {
		b.c = make(chan struct{})
	}
	return b.c
}

func (b *bell) ring() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.c != nil {
		close(b.c)
		b.c = nil
	}
}

// send submits one message; it reports whether the connection is still
// good, whether the server throttled the sender and whether it accepted
// the message.
func (w *Worker) send(ctx context.Context, cn *conn, m store.OutboxMessage, g *gate) (ok, throttled, accepted bool) {
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
		return true, false, false
	}
	m.Attempts++
	refused, err := cn.c.SendEachAfter(m.From, rcpts, bytes.NewReader(m.Raw), cn.recorded)
	at := time.Now()
	g.sentEvery(0)
	if err == nil {
		g.ok()
		// the refused recipients go in the same transaction as the sent
		// state, so that nobody reads the message as sent with a refused
		// recipient still queued
		rec := store.SentMessage{ID: m.ID}
		for _, r := range refused {
			rec.Refused = append(rec.Refused, store.OutboxRcpt{Addr: r.Rcpt, Reply: reply(r.Err)})
		}
		cn.recorded = w.hand(commit{rec: rec, sender: m.Sender, accepted: at})
		return true, false, true
	}
	if wait, ok := throttling(err); ok {
		w.throttle(ctx, m, g, wait, err)
		return false, true, false
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
		return true, false, false
	}
	w.retry(ctx, m, err)
	return false, false, false
}

// sendAPI sends one message through a Mailer. A message that a crash
// left in "sending" is first looked up, so that one the API already took is
// recorded as sent instead of going out twice. It reports whether the API
// throttled the sender and whether it took the message.
func (w *Worker) sendAPI(ctx context.Context, api Mailer, m store.OutboxMessage, g *gate) (throttled, accepted bool) {
	if m.State == store.OutboxSending {
		if id := messageID(m.Raw); id != "" {
			if sent, known := api.Sent(ctx, id); known && sent {
				w.Log.Info("outbox: a message left in sending by a crash had already gone; not sent again", "id", m.ID, "message_id", id)
				if err := w.Store.MarkSentAll(ctx, []store.SentMessage{{ID: m.ID}}); err != nil {
					w.Log.Error("outbox: record sent", "id", m.ID, "err", err)
				}
				w.mu.Lock()
				w.stats.Confirmed++
				w.stats.Recovered--
				w.mu.Unlock()
				return false, false
			}
		}
	}
	m.Attempts++
	err := api.Send(ctx, m.Raw)
	at := time.Now()
	g.sentEvery(0)
	if wait, ok := throttling(err); ok {
		w.throttle(ctx, m, g, wait, err)
		return true, false
	}
	switch {
	case err == nil:
		g.ok()
		w.record(commit{rec: store.SentMessage{ID: m.ID}, sender: m.Sender, accepted: at})
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
	return false, err == nil
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

// gate paces one sender across its connections: the spacing its Rate
// asks for, and the pause after the server throttled it.
type gate struct {
	every time.Duration

	mu        sync.Mutex
	next      time.Time // earliest next submission
	throttles int       // throttling answers in a row
	holdUntil time.Time // end of a pause (throttled or over budget)
	why       string    // stateThrottled or stateOverBudget
}

// hold pauses the sender until until, for why.
func (g *gate) hold(until time.Time, why string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.next = later(g.next, until)
	g.holdUntil, g.why = until, why
}

// held returns the pause in force at now, if any.
func (g *gate) held(now time.Time) (until time.Time, why string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.holdUntil.After(now) {
		return g.holdUntil, g.why
	}
	return time.Time{}, ""
}

// spacing is the gate's current spacing (a reload may change it).
func (g *gate) spacing() time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.every
}

// waitHold sleeps through a pause; false when stopped first.
func (g *gate) waitHold(stop <-chan struct{}) bool {
	for {
		until, _ := g.held(time.Now())
		if until.IsZero() {
			return true
		}
		t := time.NewTimer(time.Until(until))
		select {
		case <-stop:
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

// wait sleeps until the sender may submit and takes that turn (the next
// one is every later); false when stopped first.
func (g *gate) wait(stop <-chan struct{}) bool {
	for {
		g.mu.Lock()
		d := time.Until(g.next)
		if d <= 0 {
			g.next = time.Now().Add(g.every)
			g.mu.Unlock()
			return true
		}
		g.mu.Unlock()
		t := time.NewTimer(d)
		select {
		case <-stop:
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

// ok records an accepted submission: the throttling run is over.
func (g *gate) ok() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.throttles = 0
}

// pause holds the sender for wait, or for backoff doubled per throttling
// answer in a row (capped at 1 h) when wait is 0; it returns when the
// sender resumes.
func (g *gate) pause(wait, backoff time.Duration) time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	if wait <= 0 {
		wait = min(backoff<<min(g.throttles, 7), time.Hour)
	}
	g.throttles++
	g.next = later(g.next, time.Now().Add(wait))
	g.holdUntil, g.why = g.next, stateThrottled
	return g.next
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
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
	until := g.pause(wait, w.Backoff)
	wait = time.Until(until)
	msg := withHint(err)
	var se *smtp.Error
	if errors.As(err, &se) {
		msg = reply(se)
	}
	w.Log.Warn("outbox: throttled; the sender pauses", "id", m.ID, "wait", wait, "err", msg)
	_ = w.Store.MarkRetry(ctx, m.ID, until, msg)
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
