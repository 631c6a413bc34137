package app

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailgate/mailgate/internal/agent"
	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/mailbox"
	"github.com/mailgate/mailgate/internal/store"
)

// Leases (DEVELOPING.md, "Leases and fencing"): serve runs a mailbox's
// agent only while it holds the mailbox's lease in the store, so that
// several serve instances on one PostgreSQL store serve each mailbox once.
// One leaser per serve renews all its leases in one statement every
// third of the lease, takes free or expired leases up to its fair share
// (ceil(mailboxes / live instances)) and gives up the excess gracefully
// (the agent stops, then the lease is released). Each agent's ledger
// writes carry its lease's epoch (store.WithFence). If renewing fails, a
// watchdog stops every agent at once a fifth of the lease before the
// leases could expire, measured from the start of the last successful
// renewal on this machine's monotonic clock.

// newInstanceID names this process among serve instances: host name, pid
// and a short random part (a restarted process with the same pid is
// another instance).
func newInstanceID(prefix string) string {
	b := make([]byte, 3)
	_, _ = crand.Read(b)
	id := fmt.Sprintf("%s-%d-%s", hostname(), os.Getpid(), hex.EncodeToString(b))
	if prefix != "" {
		id = prefix + "-" + id
	}
	return id
}

// leaseTTL is agents.lease, defaulted.
func leaseTTL(cfg *config.Config) time.Duration {
	if d := cfg.Agents.Lease.D(); d > 0 {
		return d
	}
	return config.DefaultLease.D()
}

// leaser holds this instance's leases and starts and stops the current
// generation's units to match.
type leaser struct {
	st      *store.Store
	id      string
	ttl     time.Duration
	every   time.Duration // renewal period: ttl/3
	grace   time.Duration
	log     *slog.Logger
	tel     *telemetry
	current func() *generation

	mu      sync.Mutex
	held    map[string]int64 // mailbox → epoch
	leaving map[string]bool  // being given up: its agent is stopping
	// taken are the mailboxes whose lease this instance took and whose
	// sinks were not read again since (rescan), by when it took them
	taken map[string]time.Time
	// units are the units started under a lease, by mailbox (a reload's
	// new unit replaces its predecessor)
	units map[string]*unit
	// draining: serve is stopping; renew, take and give up nothing
	draining atomic.Bool
	watchdog *time.Timer
}

func newLeaser(st *store.Store, id string, ttl, grace time.Duration, log *slog.Logger, tel *telemetry, current func() *generation) *leaser {
	l := &leaser{st: st, id: id, ttl: ttl, every: ttl / 3, grace: grace, log: log, tel: tel, current: current,
		held: map[string]int64{}, leaving: map[string]bool{}, taken: map[string]time.Time{}, units: map[string]*unit{}}
	l.watchdog = time.AfterFunc(time.Hour, l.expire)
	l.watchdog.Stop()
	return l
}

// fence returns the lease mailbox runs under, if held.
func (l *leaser) fence(mailbox string) (store.Fence, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.held[mailbox]
	return store.Fence{Owner: l.id, Epoch: e}, ok && !l.leaving[mailbox]
}

// start runs u, mailbox's unit, if this instance holds the mailbox's
// lease (and is not giving it up). After the lease was taken, u's sinks
// first read again what another instance may have delivered for the
// mailbox before (rescan); if that fails the unit is not started, and the
// next tick tries again.
func (l *leaser) start(ctx context.Context, mailbox string, u *unit) {
	f, ok := l.fence(mailbox)
	if !ok {
		return
	}
	l.mu.Lock()
	since, fresh := l.taken[mailbox]
	l.mu.Unlock()
	if fresh {
		if err := u.rescan(ctx, since); err != nil {
			l.log.Warn("serve: reading the sink again after taking the mailbox failed; its agent waits", "mailbox", mailbox, "err", err)
			return
		}
		l.mu.Lock()
		if l.taken[mailbox] == since {
			delete(l.taken, mailbox)
		}
		l.mu.Unlock()
	}
	if u.run(l.grace, f) {
		l.mu.Lock()
		l.units[mailbox] = u
		l.mu.Unlock()
	}
}

// abort stops mailbox's running unit at once.
func (l *leaser) abort(mailbox string) {
	l.mu.Lock()
	u := l.units[mailbox]
	delete(l.units, mailbox)
	l.mu.Unlock()
	if u != nil {
		u.abort()
	}
}

// run ticks until ctx ends: at once, then every renewal period.
func (l *leaser) run(ctx context.Context) {
	l.tick(ctx)
	every(ctx, l.every, func() { l.tick(ctx) })
}

// tick beats, renews, and moves towards the fair share.
func (l *leaser) tick(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.every)
	defer cancel()
	if err := l.st.InstanceBeat(ctx, l.id); err != nil {
		l.log.Warn("serve: instance heartbeat failed", "instance", l.id, "err", err)
	}
	start := time.Now()
	got, err := l.st.RenewLeases(ctx, l.id, l.ttl)
	if err != nil {
		l.log.Warn("serve: renewing the mailbox leases failed; their sessions close before the leases could expire unless the next renewal works", "instance", l.id, "err", err)
		return
	}
	l.trust(start)
	l.settle(ctx, got)
	if l.draining.Load() {
		return
	}
	l.balance(ctx)
}

// trust arms the watchdog: the leases renewed at start hold until at least
// start+ttl by the database's clock; the sessions close a fifth before.
func (l *leaser) trust(start time.Time) {
	l.watchdog.Reset(time.Until(start.Add(l.ttl - l.ttl/5)))
}

// expire is the watchdog: no renewal worked in time, so every agent stops
// at once and the leases are forgotten here (the next renewal that works
// releases what is still ours in the store).
func (l *leaser) expire() {
	l.mu.Lock()
	names := make([]string, 0, len(l.held))
	for mb := range l.held {
		names = append(names, mb)
	}
	l.held, l.leaving = map[string]int64{}, map[string]bool{}
	l.mu.Unlock()
	if len(names) == 0 {
		return
	}
	l.log.Error("serve: the mailbox leases could not be renewed in time; closed their sessions", "instance", l.id, "mailboxes", len(names))
	for _, mb := range names {
		l.abort(mb)
	}
}

// settle compares the renewed leases with the held ones: a lease lost
// stops its agent at once; a lease of ours the store renewed that is not
// held here (after the watchdog) is released.
func (l *leaser) settle(ctx context.Context, got map[string]int64) {
	var lost []string
	l.mu.Lock()
	var cut []string
	for mb, e := range l.held {
		switch {
		case got[mb] == e:
		case l.leaving[mb]: // being given up: released just now, or lost
			cut = append(cut, mb)
		default:
			lost = append(lost, mb)
			delete(l.held, mb)
		}
	}
	var stray []string
	for mb := range got {
		if _, ok := l.held[mb]; !ok {
			stray = append(stray, mb)
		}
	}
	l.mu.Unlock()
	for _, mb := range lost {
		l.log.Warn("serve: another instance took the mailbox's lease over; stopped its agent", "instance", l.id, "mailbox", mb)
		l.abort(mb)
	}
	for _, mb := range cut { // not ours any more: its batch must not go on
		l.abort(mb)
	}
	for _, mb := range stray {
		if err := l.st.ReleaseLease(ctx, mb, l.id, got[mb]); err != nil {
			l.log.Warn("serve: releasing a lease failed", "mailbox", mb, "err", err)
		}
	}
}

// balance gives up the leases of mailboxes no longer configured and those
// above the fair share, or takes free ones up to it.
func (l *leaser) balance(ctx context.Context) {
	g := l.current()
	instances, err := l.st.Instances(ctx, l.ttl)
	if err != nil {
		l.log.Warn("serve: listing instances failed", "err", err)
		return
	}
	l.tel.setInstances(instances)
	live := max(len(instances), 1)
	share := (len(g.names) + live - 1) / live
	l.mu.Lock()
	var drop []string
	kept := 0
	for mb := range l.held {
		if l.leaving[mb] {
			continue
		}
		if _, ok := g.units[mb]; !ok {
			drop = append(drop, mb)
			continue
		}
		kept++
	}
	for mb := range l.held {
		if kept <= share {
			break
		}
		if _, ok := g.units[mb]; ok && !l.leaving[mb] {
			drop, kept = append(drop, mb), kept-1
		}
	}
	for _, mb := range drop {
		l.leaving[mb] = true
	}
	l.mu.Unlock()
	for _, mb := range drop {
		go l.giveUp(mb)
	}
	// a unit a reload replaced while its lease was being taken
	for mb := range l.serving() {
		if u := g.units[mb]; u != nil {
			l.start(ctx, mb, u)
		}
	}
	if kept < share {
		l.take(ctx, g, share-kept)
		l.tel.instMailboxes.Set(float64(len(l.serving())), l.id)
	}
}

// giveUp stops mailbox's agent (it finishes its batch) and then releases
// its lease.
func (l *leaser) giveUp(mb string) {
	// the unit stays known while it stops, so that the watchdog or a
	// lost lease can still cut its batch short
	l.mu.Lock()
	u := l.units[mb]
	l.mu.Unlock()
	if u != nil {
		u.stop()
	}
	l.mu.Lock()
	if l.units[mb] == u {
		delete(l.units, mb)
	}
	e, ok := l.held[mb]
	l.mu.Unlock()
	// forgotten here only once released in the store (a renewal in
	// between still counts it as held)
	defer func() {
		l.mu.Lock()
		delete(l.held, mb)
		delete(l.leaving, mb)
		l.mu.Unlock()
	}()
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.every)
	defer cancel()
	if err := l.st.ReleaseLease(ctx, mb, l.id, e); err != nil {
		l.log.Warn("serve: releasing a lease failed; it expires instead", "mailbox", mb, "err", err)
		return
	}
	l.log.Info("serve: gave a mailbox up to balance the instances", "instance", l.id, "mailbox", mb)
}

// take acquires up to n free or expired leases of g's mailboxes, in
// random order (so that instances starting together rarely collide), and
// then starts their agents. It stops acquiring after half a renewal
// period. The agents start after all the acquisitions, so that a shared
// sink is read again once for all of them (start, rescan).
func (l *leaser) take(ctx context.Context, g *generation, n int) {
	leases, err := l.st.Leases(ctx)
	if err != nil {
		l.log.Warn("serve: listing leases failed", "err", err)
		return
	}
	taken := map[string]bool{}
	expired := map[string]string{} // mailbox → the owner whose lease expired
	for _, le := range leases {
		if le.Live {
			taken[le.Mailbox] = true
		} else if le.Owner != "" {
			expired[le.Mailbox] = le.Owner
		}
	}
	l.mu.Lock()
	var free []string
	for _, mb := range g.names {
		if _, ok := l.held[mb]; !ok && !taken[mb] {
			free = append(free, mb)
		}
	}
	l.mu.Unlock()
	rand.Shuffle(len(free), func(i, j int) { free[i], free[j] = free[j], free[i] })
	deadline := time.Now().Add(l.every / 2)
	var got []string
	defer func() {
		for _, mb := range got {
			if u := l.current().units[mb]; u != nil {
				l.start(ctx, mb, u)
			}
		}
	}()
	for _, mb := range free {
		if n == 0 || time.Now().After(deadline) {
			return
		}
		epoch, ok, err := l.st.AcquireLease(ctx, mb, l.id, l.ttl)
		if err != nil {
			l.log.Warn("serve: acquiring a lease failed", "mailbox", mb, "err", err)
			return
		}
		if !ok {
			continue
		}
		n--
		l.mu.Lock()
		l.held[mb] = epoch
		l.taken[mb] = time.Now()
		l.mu.Unlock()
		got = append(got, mb)
		if from := expired[mb]; from != "" {
			l.tel.takeovers.Add(1)
			l.log.Info("serve: took a mailbox over from an instance whose lease expired", "instance", l.id, "mailbox", mb, "from", from, "epoch", epoch)
		} else {
			l.log.Info("serve: serving a mailbox", "instance", l.id, "mailbox", mb, "epoch", epoch)
		}
	}
}

// release gives every lease up (serve stops, after its agents did).
func (l *leaser) release() {
	l.watchdog.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.st.ReleaseLeases(ctx, l.id); err != nil {
		l.log.Warn("serve: releasing the leases failed; they expire instead", "instance", l.id, "err", err)
	}
	_ = l.st.ForgetInstance(ctx, l.id)
	l.mu.Lock()
	l.held = map[string]int64{}
	l.mu.Unlock()
}

// serving reports the mailboxes whose lease this instance holds.
func (l *leaser) serving() map[string]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]bool, len(l.held))
	for mb := range l.held {
		out[mb] = true
	}
	return out
}

// fencedLedger is the store as an agent's ledger whose writes carry the
// mailbox's current lease: a write after the lease moved on fails with
// agent.ErrLeaseLost (and store.ErrLeaseLost) and writes nothing.
type fencedLedger struct {
	storeLedger
	fence func(mailbox string) *store.Fence // nil: not fenced
}

// unitFence is the fence of a unit's current lease.
func unitFence(p *atomic.Pointer[store.Fence]) func(string) *store.Fence {
	return func(string) *store.Fence { return p.Load() }
}

func (l fencedLedger) with(ctx context.Context, mb string) context.Context {
	if f := l.fence(mb); f != nil {
		return store.WithFence(ctx, *f)
	}
	return ctx
}

// lost marks the store's refusal as the agent's ErrLeaseLost too.
func lost(err error) error {
	if errors.Is(err, store.ErrLeaseLost) {
		return fmt.Errorf("%w: %w", agent.ErrLeaseLost, err)
	}
	return err
}

func (l fencedLedger) SetMailboxCursor(ctx context.Context, mb string, c mailbox.Cursor) error {
	return lost(l.storeLedger.SetMailboxCursor(l.with(ctx, mb), mb, c))
}

func (l fencedLedger) MarkDelivered(ctx context.Context, mb string, entries []agent.LedgerEntry) error {
	return lost(l.storeLedger.MarkDelivered(l.with(ctx, mb), mb, entries))
}

func (l fencedLedger) MarkAcked(ctx context.Context, mb string, keys []string) error {
	return lost(l.storeLedger.MarkAcked(l.with(ctx, mb), mb, keys))
}

func (l fencedLedger) Rekey(ctx context.Context, mb, oldKey, newKey, newUID string) error {
	return lost(l.storeLedger.Rekey(l.with(ctx, mb), mb, oldKey, newKey, newUID))
}

func (l fencedLedger) PutHeld(ctx context.Context, mb string, hs []agent.HeldMessage) error {
	return lost(l.storeLedger.PutHeld(l.with(ctx, mb), mb, hs))
}

func (l fencedLedger) RekeyHeld(ctx context.Context, mb, oldKey, newKey, newUID string) error {
	return lost(l.storeLedger.RekeyHeld(l.with(ctx, mb), mb, oldKey, newKey, newUID))
}

func (l fencedLedger) ForgetHeld(ctx context.Context, mb string, keys []string) error {
	return lost(l.storeLedger.ForgetHeld(l.with(ctx, mb), mb, keys))
}
