package agent

import (
	"sync"
	"time"
)

// Limiter is a token bucket: Rate events per second on average, in bursts
// of up to Rate. The supervisor and `mailgate run` keep one per host to
// pace logins.
type Limiter struct {
	mu    sync.Mutex
	every time.Duration // between two events at the steady rate
	burst int
	tat   time.Time // theoretical arrival time of the next event (GCRA)
}

// NewLimiter allows rate events per second with bursts of rate; rate <= 0
// means DefaultLoginRate.
func NewLimiter(rate int) *Limiter {
	if rate <= 0 {
		rate = DefaultLoginRate
	}
	return &Limiter{every: time.Second / time.Duration(rate), burst: rate}
}

// reserve takes the next event at now and returns how long its taker must
// wait before it.
func (l *Limiter) reserve(now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tat.Before(now) {
		l.tat = now
	}
	wait := l.tat.Sub(now) - time.Duration(l.burst-1)*l.every
	l.tat = l.tat.Add(l.every)
	return max(wait, 0)
}

// Wait takes an event, waiting for it as long as needed; it reports false
// when stop closes first (the event is spent anyway).
func (l *Limiter) Wait(stop <-chan struct{}) bool {
	d := l.reserve(time.Now())
	if d <= 0 {
		return !stopped(stop)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	}
}

// Logins paces logins per host: one Limiter per host name, made on first
// use. Supervisors that share one (serve runs a supervisor per mailbox)
// share each host's rate.
type Logins struct {
	rate  int
	mu    sync.Mutex
	hosts map[string]*Limiter
}

// NewLogins paces each host at rate logins per second with bursts of rate
// (rate <= 0: DefaultLoginRate).
func NewLogins(rate int) *Logins {
	return &Logins{rate: rate, hosts: map[string]*Limiter{}}
}

// Wait takes one login to host, waiting as long as its rate asks; it
// reports false when stop closes first. An empty host is not paced.
func (l *Logins) Wait(stop <-chan struct{}, host string) bool {
	if host == "" {
		return true
	}
	l.mu.Lock()
	lim, ok := l.hosts[host]
	if !ok {
		lim = NewLimiter(l.rate)
		l.hosts[host] = lim
	}
	l.mu.Unlock()
	return lim.Wait(stop)
}
