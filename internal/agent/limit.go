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
