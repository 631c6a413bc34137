package app

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/mailgate/mailgate/internal/agent"
	"github.com/mailgate/mailgate/internal/metrics"
	"github.com/mailgate/mailgate/internal/store"
	"github.com/mailgate/mailgate/internal/web"
)

// telemetry is the metrics `mailgate serve` exposes on /metrics.
type telemetry struct {
	reg           *metrics.Registry
	fetched       *metrics.CounterVec
	failed        *metrics.CounterVec
	delivered     *metrics.CounterVec
	duplicates    *metrics.CounterVec
	polls         *metrics.CounterVec
	lastOK        *metrics.GaugeVec
	tokenReqs     *metrics.CounterVec
	outboxByState *metrics.GaugeVec
	outboxSent    *metrics.CounterVec
	throttled     *metrics.CounterVec
	oldestQueued  *metrics.GaugeVec
	pollSeconds   *metrics.HistogramVec
	refused       *metrics.CounterVec
	held          *metrics.GaugeVec

	instMailboxes *metrics.GaugeVec
	instAge       *metrics.GaugeVec
	takeovers     *metrics.CounterVec
	instSeen      map[string]bool // instances in the gauges, to delete them

	heldSeen map[[2]string]bool // (mailbox, state) pairs set, to zero them
	heldKick chan struct{}      // a run had refusals: refresh the gauge now

	mu        sync.Mutex
	lastToken map[string]web.TokenHealth // by profile
	// status is each mailbox's latest run, Total counted since serve
	// started: a reload (a record saved in the console) starts new agents
	// whose own counts start at zero.
	status map[string]agent.Status
}

func newTelemetry() *telemetry {
	r := (&metrics.Registry{}).WithProcess()
	r.Gauge("mailgate_build_info", "Always 1; the labels name the running binary's version and commit (see mailgate version).",
		"version", "commit").Set(1, Version, BuildCommit())
	return &telemetry{
		reg:        r,
		fetched:    r.Counter("mailgate_messages_fetched_total", "Messages read from a mailbox's server.", "mailbox"),
		failed:     r.Counter("mailgate_messages_failed_total", "Messages the sink refused or that failed while being copied (see mailgate_messages_refused_total and mailgate_messages_held).", "mailbox"),
		delivered:  r.Counter("mailgate_messages_delivered_total", "Messages handed to a mailbox's sink.", "mailbox"),
		duplicates: r.Counter("mailgate_messages_duplicate_total", "Messages fetched again that the sink already had.", "mailbox"),
		polls:      r.Counter("mailgate_polls_total", "Mailbox runs (poll or idle wake-up) by result (ok, error).", "mailbox", "result"),
		lastOK:     r.Gauge("mailgate_last_successful_poll_timestamp_seconds", "When a mailbox last ran without error (Unix time).", "mailbox"),
		tokenReqs:  r.Counter("mailgate_token_requests_total", "Token endpoint requests by profile, result and AADSTS code (0: none).", "profile", "result", "aadsts"),
		pollSeconds: r.Histogram("mailgate_poll_duration_seconds", "How long a mailbox run took (connecting included for a session's first), by mailbox.",
			[]float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300}, "mailbox"),
		outboxByState: r.Gauge("mailgate_outbox_messages", "Messages in the outbox by state (queued, sending, sent, failed).", "state"),
		outboxSent:    r.Counter("mailgate_outbox_sent_total", "Messages a sender's server accepted.", "sender"),
		throttled:     r.Counter("mailgate_outbox_throttled_total", "Throttling answers a sender got (SMTP 421/451/452/4.3.2, Graph 429/503); the sender paused, the message waits.", "sender"),
		oldestQueued:  r.Gauge("mailgate_outbox_oldest_age_seconds", "How long the oldest queued outbox message has waited (0: nothing queued)."),
		refused:       r.Counter("mailgate_messages_refused_total", "Messages a mailbox's sink refused, by kind (permanent, temporary).", "mailbox", "kind"),
		held: r.Gauge("mailgate_messages_held", "Messages a sink refused that are set aside, by mailbox and state (held, deferred, failing, retry); mailgate messages held lists them.",
			"mailbox", "state"),
		instMailboxes: r.Gauge("mailgate_instance_mailboxes", "Mailboxes each live serve instance on the store holds the lease of.", "instance"),
		instAge:       r.Gauge("mailgate_instance_heartbeat_age_seconds", "How long ago each live serve instance on the store last beat, by the database's clock.", "instance"),
		takeovers:     r.Counter("mailgate_lease_takeovers_total", "Mailbox leases this instance took over from another instance (or from an earlier run of itself) rather than finding them new or released."),
		instSeen:      map[string]bool{},
		heldSeen:      map[[2]string]bool{},
		heldKick:      make(chan struct{}, 1),
	}
}

// setInstances shows the live serve instances in the gauges (and removes
// those gone).
func (t *telemetry) setInstances(ins []store.Instance) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := map[string]bool{}
	for _, in := range ins {
		now[in.ID] = true
		t.instMailboxes.Set(float64(in.Mailboxes), in.ID)
		t.instAge.Set(in.Age.Seconds(), in.ID)
	}
	for id := range t.instSeen {
		if !now[id] {
			t.instMailboxes.Delete(id)
			t.instAge.Delete(id)
		}
	}
	t.instSeen = now
}

// onRun records one agent run.
func (t *telemetry) onRun(s agent.Status) {
	t.pollSeconds.Observe(s.Duration.Seconds(), s.Mailbox)
	t.fetched.Add(float64(s.Last.Fetched), s.Mailbox)
	t.failed.Add(float64(s.Last.Failed), s.Mailbox)
	t.delivered.Add(float64(s.Last.Delivered), s.Mailbox)
	t.duplicates.Add(float64(s.Last.Duplicates), s.Mailbox)
	t.mu.Lock()
	if t.status == nil {
		t.status = map[string]agent.Status{}
	}
	s.Total = t.status[s.Mailbox].Total + s.Last.Delivered
	t.status[s.Mailbox] = s
	t.mu.Unlock()
	if s.Last.RefusedPermanent+s.Last.RefusedTemporary > 0 {
		t.refused.Add(float64(s.Last.RefusedPermanent), s.Mailbox, "permanent")
		t.refused.Add(float64(s.Last.RefusedTemporary), s.Mailbox, "temporary")
		select {
		case t.heldKick <- struct{}{}:
		default:
		}
	}
	if s.LastError != nil {
		t.polls.Add(1, s.Mailbox, "error")
		return
	}
	t.polls.Add(1, s.Mailbox, "ok")
	t.lastOK.Set(float64(s.LastRun.Unix()), s.Mailbox)
}

// statuses is what the console shows of the agents of the current
// generation: each mailbox's delivered count since serve started, and its
// last run until the generation's first run of it.
func (t *telemetry) statuses(current func() []agent.Status) func() []agent.Status {
	return func() []agent.Status {
		out := current()
		t.mu.Lock()
		defer t.mu.Unlock()
		for i := range out {
			seen, ok := t.status[out[i].Mailbox]
			if !ok {
				continue
			}
			if out[i].LastRun.IsZero() {
				out[i] = seen
			}
			out[i].Total = seen.Total
		}
		return out
	}
}

// onToken records one token endpoint exchange.
func (t *telemetry) onToken(profile, result string, aadsts int) {
	t.tokenReqs.Add(1, profile, result, strconv.Itoa(aadsts))
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.lastToken == nil {
		t.lastToken = map[string]web.TokenHealth{}
	}
	t.lastToken[profile] = web.TokenHealth{Result: result, AADSTS: aadsts, At: time.Now()}
}

// tokenHealth is the last token request's outcome of a profile.
func (t *telemetry) tokenHealth(profile string) (web.TokenHealth, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	h, ok := t.lastToken[profile]
	return h, ok
}

// watchOutbox refreshes the outbox and held-message gauges until ctx
// ends (the latter also right after a run with refusals).
func (t *telemetry) watchOutbox(ctx context.Context, st *store.Store, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		t.refreshOutbox(ctx, st)
		t.refreshHeld(ctx, st)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-t.heldKick:
		}
	}
}

// refreshHeld sets the held-message gauge from the store; a (mailbox,
// state) pair that had messages and has none now goes to 0.
func (t *telemetry) refreshHeld(ctx context.Context, st *store.Store) {
	counts, err := st.HeldCounts(ctx)
	if err != nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for k := range t.heldSeen {
		if counts[k[0]][store.HeldState(k[1])] == 0 {
			t.held.Set(0, k[0], k[1])
		}
	}
	for mb, byState := range counts {
		for state, n := range byState {
			t.held.Set(float64(n), mb, string(state))
			t.heldSeen[[2]string{mb, string(state)}] = true
		}
	}
}

// onOutboxSent and onThrottled count the outbox worker's events by sender.
func (t *telemetry) onOutboxSent(sender string) { t.outboxSent.Add(1, sender) }
func (t *telemetry) onThrottled(sender string)  { t.throttled.Add(1, sender) }

// refreshOutbox sets the outbox gauges from the store: messages by state
// and the age of the oldest queued one.
func (t *telemetry) refreshOutbox(ctx context.Context, st *store.Store) {
	if counts, err := st.OutboxCounts(ctx); err == nil {
		for _, state := range []string{store.OutboxQueued, store.OutboxSending, store.OutboxSent, store.OutboxFailed} {
			t.outboxByState.Set(float64(counts[state]), state)
		}
	}
	if at, ok, err := st.OutboxOldestQueued(ctx); err == nil {
		age := 0.0
		if ok {
			age = max(time.Since(at).Seconds(), 0)
		}
		t.oldestQueued.Set(age)
	}
}
