package outbox

import (
	"context"
	"time"
)

// A sender's state in SenderStatus.
const (
	stateIdle       = "idle"        // nothing queued
	stateSending    = "sending"     // queued messages go as fast as the server takes them
	statePaced      = "paced"       // queued messages go at the sender's rate
	stateThrottled  = "throttled"   // the server asked it to slow down: paused until Until
	stateOverBudget = "over_budget" // the day's recipient budget is spent: paused until Until
)

// SenderStatus is where one sender's queue stands.
type SenderStatus struct {
	Name string
	// State is idle, sending, paced, throttled or over_budget.
	State string
	// Until is the end of a throttled or over_budget pause.
	Until time.Time
	// Queued counts the messages waiting (queued or being sent).
	Queued int
	// Rate is the sender's pace in messages a minute (0: unpaced).
	Rate int
	// RecipientsLeft is what the day's recipient budget still allows (-1:
	// no budget).
	RecipientsLeft int
	// Drain is when the queue is expected to be empty, from now: the
	// messages at the sender's rate plus the pause in force (0 when
	// unpaced and not paused: as fast as the server takes them).
	Drain time.Duration
}

// Status reports each sender's queue, pace and pause. It is meant for a
// running worker; before Run it knows no pause.
func (w *Worker) Status(ctx context.Context) ([]SenderStatus, error) {
	queued, err := w.Store.OutboxQueuedBySender(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	out := make([]SenderStatus, 0, len(w.Senders))
	for _, s := range w.Senders {
		w.mu.Lock()
		l := w.lanes[s.Name]
		w.mu.Unlock()
		if l == nil {
			l = &lane{s: s, g: &gate{every: s.every()}}
		}
		st := SenderStatus{Name: s.Name, Queued: queued[s.Name], Rate: s.Rate, RecipientsLeft: -1}
		if l.b != nil {
			st.RecipientsLeft = l.b.left(now)
		}
		until, why := l.g.held(now)
		switch {
		case why != "":
			st.State, st.Until = why, until
			st.Drain = until.Sub(now)
		case st.Queued == 0:
			st.State = stateIdle
		case s.Rate > 0:
			st.State = statePaced
		default:
			st.State = stateSending
		}
		if st.Queued > 0 {
			st.Drain += time.Duration(st.Queued) * l.g.spacing()
		}
		out = append(out, st)
	}
	return out, nil
}
