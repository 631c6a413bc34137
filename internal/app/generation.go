package app

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailgate/mailgate/internal/agent"
	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/outbox"
	"github.com/mailgate/mailgate/internal/store"
	"github.com/mailgate/mailgate/internal/web"
)

// generation is the agents and the outbox worker of one configuration;
// serve replaces it on a reload (a console change, SIGHUP), handing over
// the agents of the mailboxes that did not change.
type generation struct {
	rt     *parts
	names  []string         // the enabled mailboxes, in the configuration's order
	units  map[string]*unit // by mailbox name
	ob     *outbox.Worker
	halt   context.CancelFunc // stops the outbox
	done   chan struct{}
	closed bool
}

// unit is one mailbox's agent under its own supervisor, so that it can
// outlive the generation that started it. It runs while serve holds the
// mailbox's lease (leaser), and may be started again after losing it.
type unit struct {
	sup *agent.Supervisor
	rt  *parts // where its sink and token come from
	// same is what the agent was built from: the mailbox's settings, its
	// profile's and its sink's; a reload keeps the unit when they are equal
	same []any
	// fence is the lease the agent's ledger writes are made under
	fence atomic.Pointer[store.Fence]

	mu      sync.Mutex
	running bool // from run until its Serve returned
	aborted bool
	retired bool // a reload replaced it: never started again
	halt    context.CancelFunc
	abortCh chan struct{}
	done    chan struct{} // closed when the last run of Serve returned
}

// run starts the agent under lease f unless it runs (or is still
// stopping) or was retired; it reports whether it started.
func (u *unit) run(grace time.Duration, f store.Fence) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.running || u.retired {
		return false
	}
	u.fence.Store(&f)
	ctx, halt := context.WithCancel(context.Background())
	abort, done := make(chan struct{}), make(chan struct{})
	u.sup.Abort = abort
	u.halt, u.abortCh, u.done, u.running, u.aborted = halt, abort, done, true, false
	go func() {
		u.sup.Serve(ctx, grace)
		u.mu.Lock()
		u.running = false
		u.mu.Unlock()
		close(done)
	}()
	return true
}

// stop stops the agent, letting it finish its batch (at most the grace
// period, unless abort cuts it short), and waits for it.
func (u *unit) stop() {
	u.mu.Lock()
	halt, done := u.halt, u.done
	u.mu.Unlock()
	if halt != nil {
		halt()
		<-done
	}
}

// abort stops the agent at once (its lease is lost or about to expire):
// the batch in progress is cancelled and its session closed.
func (u *unit) abort() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.running && !u.aborted {
		u.aborted = true
		close(u.abortCh)
		u.halt()
	}
}

// retire stops the unit for good (a reload replaced it).
func (u *unit) retire() {
	u.mu.Lock()
	u.retired = true
	u.mu.Unlock()
	u.stop()
}

// rescan makes the unit's sinks know what another process delivered into
// them before since (sink.Rescanner: a maildir several instances share).
func (u *unit) rescan(ctx context.Context, since time.Time) error {
	return rescanSinks(ctx, u.sup.Mailboxes, since)
}

// unitKey is what a mailbox's agent depends on in cfg.
func unitKey(cfg *config.Config, m *config.Mailbox) []any {
	key := []any{*m}
	if p, ok := cfg.Profile(m.Profile); ok {
		key = append(key, *p)
	}
	if s, ok := cfg.Sink(m.Sink); ok {
		key = append(key, *s)
	}
	return key
}

// newGeneration builds the agents and the outbox of cfg without starting
// them; a mailbox of prev whose unitKey is unchanged keeps prev's unit.
func newGeneration(st *store.Store, cfg *config.Config, tel *telemetry, logins *agent.Logins, log, rtlog *slog.Logger, prev *generation) (*generation, error) {
	rt, err := newParts(st, cfg, rtlog, tel.onToken)
	if err != nil {
		return nil, err
	}
	g := &generation{rt: rt, units: map[string]*unit{}, ob: &outbox.Worker{Store: st, Log: log, OnSent: tel.onOutboxSent, OnThrottled: tel.onThrottled}, done: make(chan struct{})}
	for i := range cfg.Mailboxes {
		m := &cfg.Mailboxes[i]
		if !m.Enabled {
			continue
		}
		key := unitKey(cfg, m)
		if prev != nil {
			if u, ok := prev.units[m.Name]; ok && reflect.DeepEqual(u.same, key) {
				g.names, g.units[m.Name] = append(g.names, m.Name), u
				continue
			}
		}
		a, err := rt.agentMailbox(m)
		if err != nil {
			rt.closeSinks()
			return nil, fmt.Errorf("mailboxes[%s]: %w", m.Name, err)
		}
		u := &unit{rt: rt, same: key}
		u.sup = &agent.Supervisor{Mailboxes: []*agent.Mailbox{a}, Ledger: fencedLedger{storeLedger{st}, unitFence(&u.fence)}, Log: log, OnRun: tel.onRun, Logins: logins}
		g.names, g.units[m.Name] = append(g.names, m.Name), u
	}
	for i := range cfg.Senders {
		if snd := &cfg.Senders[i]; snd.Protocol == "smtp" || snd.Protocol == "graph" || snd.Protocol == "" {
			s, err := rt.outboxSender(snd)
			if err != nil {
				rt.closeSinks()
				return nil, fmt.Errorf("senders[%s]: %w", snd.Name, err)
			}
			g.ob.Senders = append(g.ob.Senders, s)
		}
	}
	return g, nil
}

// start starts the units whose lease serve holds and that do not run
// yet, and the outbox, and shows the configuration in the console.
func (g *generation) start(ctx context.Context, console *web.Server, lz *leaser) {
	for _, name := range g.names {
		lz.start(ctx, name, g.units[name])
	}
	running, halt := context.WithCancel(context.Background())
	g.halt = halt
	console.SetConfig(g.rt.cfg)
	go func() {
		g.ob.Run(running)
		close(g.done)
	}()
}

// stop ends the generation: each agent finishes its batch (at most the
// grace period), the outbox its message; then the sinks are closed.
// Serve releases the leases after it.
func (g *generation) stop() { g.handOver(nil) }

// handOver stops g for next: its outbox, and its units next does not
// keep (each finishes its batch, at most the grace period, all at once);
// then it closes the sinks no unit of next uses. It returns how many units
// next keeps running.
func (g *generation) handOver(next *generation) (kept int) {
	if g.closed {
		return 0
	}
	g.closed = true
	g.halt()
	var wg sync.WaitGroup
	inUse := map[*parts]bool{}
	if next != nil {
		inUse[next.rt] = true
	}
	old := map[*parts]bool{g.rt: true}
	for _, name := range g.names {
		u := g.units[name]
		old[u.rt] = true
		if next != nil && next.units[name] == u {
			kept++
			inUse[u.rt] = true
			continue
		}
		wg.Go(u.retire)
	}
	wg.Wait()
	<-g.done
	for rt := range old {
		if !inUse[rt] {
			rt.closeSinks()
		}
	}
	return kept
}

// statuses are the running agents' states, in the configuration's order.
func (g *generation) statuses() []agent.Status {
	var out []agent.Status
	for _, name := range g.names {
		out = append(out, g.units[name].sup.Statuses()...)
	}
	return out
}
