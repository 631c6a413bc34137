package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailgate/mailgate/internal/agent"
	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/outbox"
	"github.com/mailgate/mailgate/internal/store"
	"github.com/mailgate/mailgate/internal/web"
)

// ServeOptions configure Start.
type ServeOptions struct {
	// Log is serve's own log (runs, reloads, the console); the engine logs
	// to Options.Logger. Nil discards.
	Log *slog.Logger
	// Grace is how long a stopping agent may finish its batch.
	Grace time.Duration
	// Secure says the console is served over HTTPS (Secure cookies).
	Secure bool
}

// server is what Start runs: the console and its record editor, the
// metrics, and the current generation of agents and outbox.
type server struct {
	so       ServeOptions
	ed       *Records
	tel      *telemetry
	console  *web.Server
	current  atomic.Pointer[generation]
	cfg      *config.Config // the configuration the current generation runs
	instance string
	cancel   context.CancelFunc
	bg       sync.WaitGroup
}

// Start is serve: it keeps the console's records (Handler's editor),
// starts the agents of every enabled mailbox and the outbox worker, and
// the background work (the serve heartbeat `mailgate send` looks for, the
// outbox and held-message gauges, the watch for records changed outside).
// A console record that is failing is logged and left out. The error is
// the configuration's: nothing runs then.
func (a *App) Start(ctx context.Context, so ServeOptions) error {
	if so.Log == nil {
		so.Log = slog.New(slog.DiscardHandler)
	}
	data, err := os.ReadFile(a.file.File)
	if err != nil {
		return err
	}
	log := so.Log
	s := &server{so: so, tel: newTelemetry(), instance: fmt.Sprintf("%s-%d", hostname(), os.Getpid())}
	s.ed = &Records{st: a.st, data: data, path: a.file.File, getenv: a.opts.Getenv, reload: make(chan struct{}, 1)}
	s.ed.remember(ctx)
	cfg, broken, err := s.ed.Config(ctx)
	for _, b := range broken {
		log.Error("serve: a console record is failing and does not run; fix it in the console or delete it (mailgate records delete KIND NAME)", "kind", b.Kind, "name", b.Name, "err", b.Reason)
	}
	if err != nil {
		// a console record the file no longer agrees with must not keep the
		// file's own mailboxes from running
		log.Error("serve: the console's records do not fit the config file; running the file alone until they are fixed", "err", err)
		cfg = a.file
	}
	s.console = web.New(web.Options{Store: a.st, Config: cfg, Metrics: s.tel.reg, Log: log, Editor: s.ed,
		Authorizer: &consoleAuth{current: &s.current, pending: map[string]*pendingAuth{}}, Secure: so.Secure,
		Runtime: s})
	s.ed.applied, s.ed.failing = s.console.SetConfig, s.console.SetBroken
	s.console.SetBroken(broken)
	g, err := startGeneration(a.st, cfg, s.tel, log, a.log, so.Grace, s.console)
	if err != nil {
		return fmt.Errorf("%s: %w", cfg.File, err)
	}
	s.current.Store(g)
	s.cfg = cfg
	a.srv = s
	bctx, cancel := context.WithCancel(ctx)
	s.cancel = cancel
	s.background(bctx, a.st)
	return nil
}

// Running is how many mailbox agents and senders the started App runs.
func (a *App) Running() (mailboxes, senders int) {
	g := a.srv.current.Load()
	return len(g.sup.Mailboxes), len(g.ob.Senders)
}

// background starts serve's periodic work until ctx ends.
func (s *server) background(ctx context.Context, st *store.Store) {
	s.bg.Go(func() { s.tel.watchOutbox(ctx, st, 15*time.Second) })
	s.bg.Go(func() { every(ctx, recordsPollEvery, func() { s.ed.poll(ctx) }) })
	_ = st.Heartbeat(ctx, s.instance)
	s.bg.Go(func() {
		every(ctx, heartbeatEvery, func() { _ = st.Heartbeat(context.Background(), s.instance) })
	})
}

// every calls f every d until ctx ends.
func every(ctx context.Context, d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// Handler is the web console, /api/v1 and /metrics of a started App.
func (a *App) Handler() http.Handler { return a.srv.console }

// Reloads tells that the console's records changed: call Reload.
func (a *App) Reloads() <-chan struct{} { return a.srv.ed.reload }

// Reload replaces the running generation with one of the configuration
// the console's records now make. A configuration that does not validate
// is refused and the running one kept; one that validates but does not
// start is logged and the previous one restarted. The error means that
// the previous one does not start either: nothing runs.
func (a *App) Reload(ctx context.Context) error {
	s := a.srv
	log := s.so.Log
	next, broken, err := s.ed.Config(ctx)
	if err != nil {
		log.Error("serve: reload refused", "err", err)
		return nil
	}
	for _, b := range broken {
		log.Error("serve: a console record is failing and does not run", "kind", b.Kind, "name", b.Name, "err", b.Reason)
	}
	s.console.SetBroken(broken)
	s.current.Load().stop()
	ng, err := startGeneration(a.st, next, s.tel, log, a.log, s.so.Grace, s.console)
	if err != nil {
		log.Error("serve: the new configuration does not start; keeping the previous one", "err", err)
		if ng, err = startGeneration(a.st, s.cfg, s.tel, log, a.log, s.so.Grace, s.console); err != nil {
			log.Error("serve: the previous configuration does not start either", "err", err)
			return err
		}
	} else {
		s.cfg = next
	}
	s.current.Store(ng)
	log.Info("mailgate reloaded", "mailboxes", len(ng.sup.Mailboxes), "senders", len(ng.ob.Senders))
	return nil
}

// Stop ends what Start started: each agent finishes its batch (at most the
// grace period), the outbox its message; the heartbeat is withdrawn.
func (a *App) Stop() {
	s := a.srv
	if s == nil {
		return
	}
	a.srv = nil
	g := s.current.Load()
	g.stop()
	s.cancel()
	s.bg.Wait()
	_ = a.st.ForgetHeartbeat(context.Background(), s.instance)
	if st := g.ob.Stats(); st.Sent+st.Failed+st.Recovered > 0 {
		s.so.Log.Info("outbox", "sent", st.Sent, "failed", st.Failed, "retried", st.Retried, "recovered_possible_duplicates", st.Recovered, "max_250_to_commit", st.Window)
	}
}

// The server is the console's web.Runtime: each answer comes from the
// generation running at the time.
var _ web.Runtime = (*server)(nil)

// Statuses are the running agents' states, with the totals since serve
// started.
func (s *server) Statuses() []agent.Status {
	g := s.current.Load()
	if g == nil {
		return nil
	}
	return s.tel.statuses(g.sup.Statuses)()
}

// Test is the console's Test button on the running configuration.
func (s *server) Test(ctx context.Context, kind, name string) (web.TestResult, bool) {
	g := s.current.Load()
	if g == nil {
		return web.TestResult{}, false
	}
	return g.rt.consoleTest(ctx, kind, name)
}

// TokenHealth is the outcome of a profile's last token request.
func (s *server) TokenHealth(profile string) (web.TokenHealth, bool) {
	return s.tel.tokenHealth(profile)
}

// Wake makes a mailbox's agent run now (a held message is retried).
func (s *server) Wake(mailbox string) {
	if g := s.current.Load(); g != nil {
		g.sup.Wake(mailbox)
	}
}

// Explain is Diagnose's advice for a running mailbox's error.
func (s *server) Explain(name string, err error) []string {
	g := s.current.Load()
	if g == nil {
		return nil
	}
	if m, ok := g.rt.cfg.Mailbox(name); ok {
		return diagnose(m, g.rt.profiles[m.Profile], err)
	}
	return nil
}

// CertExpiry is when a running profile's client certificate expires.
func (s *server) CertExpiry(name string) (time.Time, bool) {
	if g := s.current.Load(); g != nil {
		if p, ok := g.rt.profiles[name]; ok && p.Certificate != nil && p.Certificate.Cert != nil {
			return p.Certificate.Cert.NotAfter, true
		}
	}
	return time.Time{}, false
}

// generation is the agents and the outbox worker of one configuration;
// serve replaces it when the console changes a record.
type generation struct {
	rt     *parts
	sup    *agent.Supervisor
	ob     *outbox.Worker
	halt   context.CancelFunc // stops the agents and the outbox
	done   chan struct{}
	closed bool
}

// startGeneration builds and starts the agents and the outbox of cfg and
// shows them in the console.
func startGeneration(st *store.Store, cfg *config.Config, tel *telemetry, log, rtlog *slog.Logger, grace time.Duration, console *web.Server) (*generation, error) {
	rt, err := newParts(st, cfg, rtlog, tel.onToken)
	if err != nil {
		return nil, err
	}
	sup := &agent.Supervisor{Ledger: AgentLedger(st), Log: log, OnRun: tel.onRun, LoginRate: cfg.Agents.LoginRate}
	for i := range cfg.Mailboxes {
		m := &cfg.Mailboxes[i]
		if !m.Enabled {
			continue
		}
		a, err := rt.agentMailbox(m)
		if err != nil {
			rt.closeSinks()
			return nil, fmt.Errorf("mailboxes[%s]: %w", m.Name, err)
		}
		sup.Mailboxes = append(sup.Mailboxes, a)
	}
	ob := &outbox.Worker{Store: st, Log: log}
	for i := range cfg.Senders {
		if snd := &cfg.Senders[i]; snd.Protocol == "smtp" || snd.Protocol == "graph" || snd.Protocol == "" {
			s, err := rt.outboxSender(snd)
			if err != nil {
				rt.closeSinks()
				return nil, fmt.Errorf("senders[%s]: %w", snd.Name, err)
			}
			ob.Senders = append(ob.Senders, s)
		}
	}
	running, halt := context.WithCancel(context.Background())
	g := &generation{rt: rt, sup: sup, ob: ob, halt: halt, done: make(chan struct{})}
	console.SetConfig(cfg)
	go func() {
		var wg sync.WaitGroup
		wg.Go(func() { ob.Run(running) })
		wg.Go(func() { sup.Serve(running, grace) })
		wg.Wait()
		close(g.done)
	}()
	return g, nil
}

// stop ends the generation: each agent finishes its batch (at most the
// grace period), the outbox its message; then its sinks are closed.
func (g *generation) stop() {
	if g.closed {
		return
	}
	g.closed = true
	g.halt()
	<-g.done
	g.rt.closeSinks()
}

// recordsPollEvery is how often serve looks for console records changed
// outside it (`mailgate records delete`, another instance on the same
// store).
const recordsPollEvery = 5 * time.Second

// The serve heartbeat tells `mailgate send` that an outbox worker runs.
const (
	heartbeatEvery  = 5 * time.Second
	heartbeatMaxAge = 15 * time.Second
)

func hostname() string {
	h, _ := os.Hostname()
	return h
}
