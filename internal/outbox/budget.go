package outbox

import (
	"sync"
	"time"
)

// day is the window of a sender's recipient budget (rolling).
const day = 24 * time.Hour

// budget is a sender's daily recipient budget (Sender.MaxRcptsPerDay) as
// one worker counts it: the recipients submitted in the last 24 hours,
// loaded from the store at start and kept in memory since. Several
// instances sharing an outbox each count their own submissions and the
// ones recorded before they started.
type budget struct {
	max int

	mu    sync.Mutex
	spent []spend // oldest first
	used  int
}

// spend is one submission's recipients.
type spend struct {
	at time.Time
	n  int
}

// forget drops what fell out of the window before now.
func (b *budget) forget(now time.Time) {
	i := 0
	for i < len(b.spent) && !b.spent[i].at.After(now.Add(-day)) {
		b.used -= b.spent[i].n
		i++
	}
	b.spent = b.spent[i:]
}

// take spends n recipients at now when the budget allows it (a message
// larger than the whole budget goes when nothing else was spent); else it
// reports when enough of the budget frees up.
func (b *budget) take(now time.Time, n int) (ok bool, until time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.forget(now)
	if b.used == 0 || b.used+n <= b.max {
		b.spent = append(b.spent, spend{at: now, n: n})
		b.used += n
		return true, time.Time{}
	}
	need := b.used + n - b.max
	for _, s := range b.spent {
		need -= s.n
		if need <= 0 {
			return false, s.at.Add(day)
		}
	}
	return false, b.spent[len(b.spent)-1].at.Add(day)
}

// give takes back a spend that was not submitted after all.
func (b *budget) give(at time.Time, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := len(b.spent) - 1; i >= 0; i-- {
		if b.spent[i].at.Equal(at) && b.spent[i].n == n {
			b.spent = append(b.spent[:i], b.spent[i+1:]...)
			b.used -= n
			return
		}
	}
}

// left is how many recipients the budget allows now.
func (b *budget) left(now time.Time) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.forget(now)
	return max(b.max-b.used, 0)
}
