package agent

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/mailgate/mailgate/internal/mailbox"
)

// Status is a mailbox's state as Serve sees it.
type Status struct {
	Mailbox   string
	LastRun   time.Time
	LastError error
	Stats     Stats // of the last successful run
	// Last is the latest run's, successful or not: a run that failed
	// half-way may have delivered messages before it did.
	Last     Stats
	Total    int // delivered since start
	Failures int // consecutive failures
	// Duration is how long the last run took (the connection's set-up
	// included for a session's first run).
	Duration time.Duration
}

// Supervisor runs every mailbox until stopped: poll mailboxes are read
// every Interval, idle mailboxes keep a connection open and wait for new
// mail. Failures are retried with exponential backoff and jitter (1 s to
// 5 min); an expired or refused token is renewed once per failure.
type Supervisor struct {
	Mailboxes []*Mailbox
	Ledger    Ledger
	Log       *slog.Logger
	// OnRun is called after every run (for metrics and the console).
	OnRun func(Status)
	// LoginRate bounds how many connections per second are opened to one
	// host, with bursts of as many (default DefaultLoginRate). It bounds a
	// connect storm after a start or an outage, never how many mailboxes
	// stay connected: Exchange Online limits connections per mailbox, and
	// every Exchange Online mailbox has the same host name.
	LoginRate int
	// Logins, when set, paces the logins instead of a pacer of this
	// supervisor's own made from LoginRate: supervisors sharing one share
	// each host's rate.
	Logins *Logins
	// Abort, when closed, cancels the runs at once instead of grace after
	// Serve's context is done (the mailbox's lease is lost: its session
	// must close before another instance's starts). Close it with or
	// after cancelling Serve's context.
	Abort <-chan struct{}
	// IdleRenew is how long one IDLE command lasts before it is ended and
	// re-issued on the same connection (default DefaultIdleRenew).
	IdleRenew time.Duration

	mu     sync.Mutex
	status map[string]*Status
	wake   map[string]chan struct{}
}

// DefaultLoginRate is how many connections per second are opened to one
// host unless Supervisor.LoginRate says otherwise; `mailgate run` follows
// it too.
const DefaultLoginRate = 20

// DefaultIdleRenew is how long an IDLE command lasts before it is
// re-issued: servers may drop a client idle for 30 minutes (RFC 2177 asks
// clients to re-issue IDLE at least every 29).
const DefaultIdleRenew = 25 * time.Minute

// Wake makes a mailbox run now instead of at the end of its poll
// interval, backoff or IDLE wait (an administrator asked to retry a held
// message). Unknown names and a supervisor not serving are ignored.
func (s *Supervisor) Wake(mailbox string) {
	s.mu.Lock()
	ch := s.wake[mailbox]
	s.mu.Unlock()
	if ch == nil {
		return
	}
	select {
	case ch <- struct{}{}:
	default:
	}
}

// login waits for host's login rate to allow one more connection; it
// reports false when stopped first.
func (s *Supervisor) login(stop <-chan struct{}, host string) bool {
	return s.Logins.Wait(stop, host)
}

// Statuses returns a copy of every mailbox's status.
func (s *Supervisor) Statuses() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Status
	for _, m := range s.Mailboxes {
		if st, ok := s.status[m.Name]; ok {
			out = append(out, *st)
		}
	}
	return out
}

// Serve runs until ctx is done, then lets each mailbox finish the batch
// it is delivering (at most grace) and returns. The runs see ctx's values,
// not its cancellation: they are cancelled grace after it.
func (s *Supervisor) Serve(ctx context.Context, grace time.Duration) {
	stop := ctx.Done()
	if s.Log == nil {
		s.Log = slog.New(slog.DiscardHandler)
	}
	s.mu.Lock()
	s.status = map[string]*Status{}
	if s.Logins == nil {
		s.Logins = NewLogins(s.LoginRate)
	}
	s.wake = map[string]chan struct{}{}
	for _, m := range s.Mailboxes {
		s.status[m.Name] = &Status{Mailbox: m.Name}
		s.wake[m.Name] = make(chan struct{}, 1)
	}
	s.mu.Unlock()
	// work is cancelled only grace after stop: a run in progress finishes
	// its batch and acknowledges it.
	work, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	abort := s.Abort
	go func() {
		<-stop
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-abort:
			cancel()
		case <-work.Done():
		}
	}()
	var wg sync.WaitGroup
	for _, m := range s.Mailboxes {
		wg.Go(func() { s.loop(work, stop, m) })
	}
	wg.Wait()
}

func (s *Supervisor) record(m *Mailbox, st Stats, err error, took time.Duration) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.status[m.Name]
	cur.LastRun, cur.LastError, cur.Duration, cur.Last = time.Now(), err, took, st
	cur.Total += st.Delivered
	if err != nil {
		cur.Failures++
	} else {
		cur.Failures, cur.Stats = 0, st
	}
	if s.OnRun != nil {
		s.OnRun(*cur)
	}
	if err == nil {
		return 0
	}
	d := time.Second << min(cur.Failures-1, 9)
	d = min(d, 5*time.Minute)
	d = d/2 + rand.N(d/2+1) // jitter: [d/2, d]
	if e, ok := mailbox.AsError(err); ok && e.Wait > d {
		d = e.Wait // the server asked for more (Gmail's connection cap)
	}
	return d
}

// routineEnd reports a session the server ended as it routinely does
// (Gmail's "Session expired"): reconnect at once, quietly, no failure.
func routineEnd(err error) bool {
	e, ok := mailbox.AsError(err)
	return ok && e.Reconnect
}

// sleep waits d, until woken, or until stop; it reports false when
// stopped.
func sleep(stop, wake <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-stop:
		return false
	case <-wake:
		return true
	case <-t.C:
		return true
	}
}

func stopped(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}

func (s *Supervisor) loop(ctx context.Context, stop <-chan struct{}, m *Mailbox) {
	interval := m.Interval
	if interval <= 0 {
		interval = time.Minute
	}
	s.mu.Lock()
	wake := s.wake[m.Name]
	s.mu.Unlock()
	for !stopped(stop) {
		if !s.login(stop, m.Host) {
			return
		}
		pause, lost := s.session(ctx, stop, wake, m, interval)
		if lost {
			s.Log.Warn("agent: another instance serves the mailbox now; stopped", "mailbox", m.Name)
			return
		}
		if pause > 0 && !sleep(stop, wake, pause) {
			return
		}
	}
}

// session runs one connection: one run (poll) or runs and IDLE waits until
// the connection fails (idle). It returns how long to wait before the next
// session: the poll interval, a backoff after a failure, 0 to reconnect
// now; lost when the ledger refused a write because the mailbox's lease
// is another instance's (the connection is closed on return).
func (s *Supervisor) session(ctx context.Context, stop, wake <-chan struct{}, m *Mailbox, interval time.Duration) (pause time.Duration, lost bool) {
	start := time.Now()
	conn, err := dial(ctx, m, s.Log)
	if err != nil {
		s.Log.Warn("agent: connect failed", "mailbox", m.Name, "err", err)
		return s.record(m, Stats{}, err, time.Since(start)), false
	}
	defer conn.Close()
	for ran := false; !stopped(stop); ran = true {
		st, err := run(ctx, m, conn, s.Ledger, s.Log, nil)
		// a session that served at least one run may end routinely; one
		// ended at once is a failure (no reconnect loop)
		if ran && routineEnd(err) {
			s.Log.Info("agent: the server ended the session, reconnecting", "mailbox", m.Name, "err", err)
			s.record(m, st, nil, time.Since(start))
			return 0, false
		}
		backoff := s.record(m, st, err, time.Since(start))
		if errors.Is(err, ErrLeaseLost) {
			return 0, true
		}
		if err != nil {
			s.Log.Warn("agent: run failed", "mailbox", m.Name, "err", err)
			return backoff, false
		}
		if st.Delivered > 0 {
			s.Log.Info("agent: delivered", "mailbox", m.Name, "n", st.Delivered, "duplicates", st.Duplicates)
		}
		w, canWait := conn.(mailbox.Waiter)
		if !m.Idle || !canWait {
			return interval, false
		}
		// IDLE until new mail, IdleRenew, a wake-up or stop; then a run
		// and a new IDLE on the same connection
		wctx, wcancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-stop:
			case <-wake:
			case <-wctx.Done():
			}
			wcancel()
		}()
		renew := s.IdleRenew
		if renew <= 0 {
			renew = DefaultIdleRenew
		}
		err = w.Wait(wctx, renew)
		wcancel()
		start = time.Now()
		if stopped(stop) {
			return 0, false
		}
		if err != nil {
			s.Log.Info("agent: idle ended, reconnecting", "mailbox", m.Name, "err", err)
			return 0, false
		}
	}
	return 0, false
}
