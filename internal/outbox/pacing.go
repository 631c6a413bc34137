package outbox

import (
	"context"
	"strings"
	"sync"
	"time"
)

// Gates hands out one pacing gate per mailbox at a submission host, so
// that everything submitting as that mailbox (the outbox's sender, the
// legacy-client proxy's SMTP accounts) shares one pace and one pause: the
// provider's limits are per mailbox (Exchange Online: 30 messages a
// minute), not per program. A Gates outlives reloads; the zero value is
// ready.
type Gates struct {
	mu sync.Mutex
	m  map[string]*gate
}

// PaceKey names a mailbox at a submission host, the key of its gate.
func PaceKey(mailbox, host string) string {
	return strings.ToLower(strings.TrimSpace(mailbox)) + " at " + strings.ToLower(strings.TrimSpace(host))
}

// gate returns key's gate paced every (a sender's rate; it replaces what
// an earlier configuration set), or a gate of its own when gs is nil or
// key empty.
func (gs *Gates) gate(key string, every time.Duration) *gate {
	if gs == nil || key == "" {
		return &gate{every: every}
	}
	g := gs.get(key)
	g.mu.Lock()
	g.every = every
	g.mu.Unlock()
	return g
}

func (gs *Gates) get(key string) *gate {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	if gs.m == nil {
		gs.m = map[string]*gate{}
	}
	g, ok := gs.m[key]
	if !ok {
		g = &gate{}
		gs.m[key] = g
	}
	return g
}

// PacedError is a turn further away than the caller would wait.
type PacedError struct {
	// Wait is how long until the mailbox may submit again.
	Wait time.Duration
	// Why is "paced", or the pause in force: "throttled" or "over_budget".
	Why string
}

// RetryIn is Wait (the legacy-client proxy's 451 names it).
func (e *PacedError) RetryIn() time.Duration { return e.Wait }

func (e *PacedError) Error() string {
	return "outbox: " + e.Why + "; the mailbox may submit again in " + e.Wait.Round(time.Second).String()
}

// Turn waits for key's next submission turn, spaced at least every apart
// from the one before (the gate's own spacing, an outbox sender's rate,
// when it is longer), and takes it. A turn further away than patience, a
// pause in force included, is not taken: Turn returns at once with a
// *PacedError. done is to be called with the submission's outcome: nil
// (accepted), a throttling answer (421, 451, 452, 4.3.2,
// SubmissionQuotaExceeded; the gate pauses for wait or backoff doubled per
// answer in a row) or any other error.
func (gs *Gates) Turn(ctx context.Context, key string, every, patience, backoff time.Duration) (done func(error), err error) {
	g := gs.get(key)
	for {
		at, perr := g.reserve(time.Now(), every, patience)
		if perr != nil {
			return nil, perr
		}
		if d := time.Until(at); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			case <-t.C:
			}
		}
		// a pause that started while this turn waited comes first
		if until, _ := g.held(time.Now()); until.IsZero() {
			break
		}
	}
	return func(err error) {
		g.sentEvery(every)
		if err == nil {
			g.ok()
			return
		}
		if wait, ok := throttling(err); ok {
			g.pause(wait, backoff)
		}
	}, nil
}

// reserve takes the first turn at or after now when it is no further
// than patience away: the next turn is spaced the longer of g.every and
// every after it.
func (g *gate) reserve(now time.Time, every, patience time.Duration) (time.Time, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	at := later(g.next, now)
	if g.holdUntil.After(now) {
		at = later(at, g.holdUntil)
	}
	if wait := at.Sub(now); wait > patience {
		why := statePaced
		if g.holdUntil.After(now) {
			why = g.why
		}
		return time.Time{}, &PacedError{Wait: wait, Why: why}
	}
	g.next = at.Add(max(g.every, every))
	return at, nil
}

// sentEvery records a submission's end: the next turn is spaced from
// here (the longer of g.every and every; an outbox sender's own
// submissions pass 0, its rate's spacing).
func (g *gate) sentEvery(every time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.next = later(g.next, time.Now().Add(max(g.every, every)))
}
