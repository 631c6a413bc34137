package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mailgate/mailgate/internal/agent"
	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/sink"
)

// ErrNoMailbox is RunOnce's error when there is nothing to read: no
// enabled mailbox, or no mailbox of the name asked for.
var ErrNoMailbox = errors.New("app: no mailbox to read")

// Result is how one mailbox's run went.
type Result struct {
	Mailbox    string
	After      string // what was done on the server with a delivered message
	Delivered  int
	Duplicates int // the sink already had them
	Acked      int
	Held       int // refused by the sink and set aside, not acknowledged
	// ServedBy names the instance (a serve, or another run) holding the
	// mailbox's lease: the mailbox was skipped.
	ServedBy string
	Err      error    // the run failed (after Delivered messages)
	Advice   []string // what to change, when Err is set (Diagnose's)
}

// RunOnce reads every enabled mailbox, or only the one named only (enabled
// or not), once and concurrently (agents.concurrency at a time), delivers
// the new messages to their sinks and acknowledges them on the server. Like
// serve, it logs in to one host at most agents.login_rate times a second
// (agent.DefaultLoginRate by default). progress, when
// set, hears of each delivery. A mailbox that cannot be built is a
// *KeyError (nothing is read then); a mailbox that fails is a Result with
// Err and the advice. A mailbox whose lease a serve (or another run)
// holds is skipped: its Result names the holder in ServedBy; the others'
// leases are held for the run.
func (a *App) RunOnce(ctx context.Context, only string, progress func(mailbox string, done, total int)) ([]Result, error) {
	cfg := a.rt.cfg
	var boxes []*config.Mailbox
	for i := range cfg.Mailboxes {
		m := &cfg.Mailboxes[i]
		if only != "" && m.Name != only || only == "" && !m.Enabled {
			continue
		}
		boxes = append(boxes, m)
	}
	if len(boxes) == 0 {
		return nil, ErrNoMailbox
	}
	agents := make([]*agent.Mailbox, len(boxes))
	for i, m := range boxes {
		mb, err := a.rt.agentMailbox(m)
		if err != nil {
			return nil, &KeyError{Key: "mailboxes[" + m.Name + "]", Err: err}
		}
		agents[i] = mb
	}
	rl, servedBy, err := takeRunLeases(ctx, a.st, cfg, boxes)
	if err != nil {
		return nil, err
	}
	var leased []*agent.Mailbox
	for _, mb := range agents {
		if servedBy[mb.Name] == "" {
			leased = append(leased, mb)
		}
	}
	if err := rescanSinks(ctx, leased, time.Now()); err != nil {
		rl.release()
		return nil, err
	}
	var stats []agent.Stats
	var errs []error
	rl.runLeased(ctx, func(ctx context.Context) {
		stats, errs = runAll(ctx, leased, fencedLedger{storeLedger{a.st}, rl.fence}, a.log, progress, cfg.Agents.Concurrency, cfg.Agents.LoginRate)
	})
	out := make([]Result, len(agents))
	for i, mb := range agents {
		if by := servedBy[mb.Name]; by != "" {
			out[i] = Result{Mailbox: mb.Name, After: mb.After.String(), ServedBy: by}
			continue
		}
		s, err := stats[0], errs[0] // leased's order is agents'
		stats, errs = stats[1:], errs[1:]
		out[i] = Result{Mailbox: mb.Name, After: mb.After.String(), Delivered: s.Delivered, Duplicates: s.Duplicates,
			Acked: s.Acked, Held: s.Held, Err: err}
		if err != nil {
			out[i].Advice = diagnose(boxes[i], a.rt.profiles[boxes[i].Profile], err)
		}
	}
	return out, nil
}

// rescanSinks makes the sinks of agents know what another process
// delivered into them before since (sink.Rescanner): the sinks were opened
// before the leases were taken, and the previous holder of one may have
// written a message it did not record in the ledger.
func rescanSinks(ctx context.Context, agents []*agent.Mailbox, since time.Time) error {
	for _, mb := range agents {
		if r, ok := mb.Sink.(sink.Rescanner); ok {
			if err := r.Rescan(ctx, since); err != nil {
				return fmt.Errorf("mailboxes[%s]: %w", mb.Name, err)
			}
		}
	}
	return nil
}

// DefaultConcurrency is how many mailboxes RunOnce reads at once unless
// agents.concurrency says otherwise.
const DefaultConcurrency = 16

// runAll runs each mailbox once, at most concurrency (0: DefaultConcurrency)
// at a time, logging in to each host at most rate times a second
// (agent.Logins, the rule serve's supervisors follow).
func runAll(ctx context.Context, agents []*agent.Mailbox, l agent.Ledger, log *slog.Logger, progress func(string, int, int), concurrency, rate int) ([]agent.Stats, []error) {
	if concurrency <= 0 {
		concurrency = DefaultConcurrency
	}
	logins := agent.NewLogins(rate)
	stats := make([]agent.Stats, len(agents))
	errs := make([]error, len(agents))
	next := make(chan int)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(next)
		for i := range agents {
			select {
			case next <- i:
			case <-ctx.Done():
				for ; i < len(agents); i++ {
					errs[i] = ctx.Err()
				}
				return
			}
		}
	})
	for range min(concurrency, len(agents)) {
		wg.Go(func() {
			for i := range next {
				mb := agents[i]
				if !logins.Wait(ctx.Done(), mb.Host) {
					errs[i] = ctx.Err()
					continue
				}
				stats[i], errs[i] = agent.RunOnce(ctx, mb, l, log, progress)
			}
		})
	}
	wg.Wait()
	return stats, errs
}
