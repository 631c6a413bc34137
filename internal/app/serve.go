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
	so  ServeOptions
	ed  *Records
	tel *telemetry
	// logins paces the logins of every mailbox's supervisor per host
	// (agents.login_rate, read at start)
	logins *agent.Logins
	// px are the legacy-client proxy's listeners (they outlive generations)
	px       *proxies
	console  *web.Server
	current  atomic.Pointer[generation]
	cfg      *config.Config // the configuration the current generation runs
	file     *config.Config // the config file alone, as last (re)loaded
	instance string
	lz       *leaser
	cancel   context.CancelFunc
	bg       sync.WaitGroup
	leases   sync.WaitGroup // the leaser's loop
	stopL    context.CancelFunc
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
	s := &server{so: so, tel: newTelemetry(), instance: newInstanceID("")}
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
	s.logins = agent.NewLogins(cfg.Agents.LoginRate)
	s.console = web.New(web.Options{Store: a.st, Config: cfg, Metrics: s.tel.reg, Log: log, Editor: s.ed, Instance: s.instance,
		Authorizer: &consoleAuth{current: &s.current, pending: map[string]*pendingAuth{}}, Secure: so.Secure,
		Runtime: s})
	s.ed.applied, s.ed.failing = s.console.SetConfig, s.console.SetBroken
	s.console.SetBroken(broken)
	s.px = newProxies(s.tel.reg, log)
	s.px.loadLogins(ctx, a.st)
	g, err := newGeneration(a.st, cfg, s.tel, s.logins, log, a.log, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", cfg.File, err)
	}
	// the outbox claims messages in this instance's name: a serve restarted
	// with the same host and pid (a container) must not extend its dead
	// predecessor's claims
	g.ob.Gates, g.ob.Instance = s.px.gates, s.instance
	if err := s.px.apply(g.rt); err != nil {
		s.px.stop()
		g.rt.closeSinks()
		return fmt.Errorf("%s: %w", cfg.File, err)
	}
	s.current.Store(g)
	s.lz = newLeaser(a.st, s.instance, leaseTTL(cfg), so.Grace, log, s.tel, s.current.Load)
	log.Info("serve: instance", "instance", s.instance, "lease", leaseTTL(cfg).String())
	g.start(ctx, s.console, s.lz)
	lctx, stopL := context.WithCancel(context.WithoutCancel(ctx))
	s.stopL = stopL
	s.leases.Go(func() { s.lz.run(lctx) })
	s.cfg, s.file = cfg, a.file
	a.srv = s
	bctx, cancel := context.WithCancel(ctx)
	s.cancel = cancel
	s.background(bctx, a.st)
	return nil
}

// Running is how many mailbox agents and senders the started App runs.
func (a *App) Running() (mailboxes, senders int) {
	g := a.srv.current.Load()
	return len(g.units), len(g.ob.Senders)
}

// background starts serve's periodic work until ctx ends.
func (s *server) background(ctx context.Context, st *store.Store) {
	s.bg.Go(func() { s.tel.watchOutbox(ctx, st, 15*time.Second) })
	s.bg.Go(func() { every(ctx, recordsPollEvery, func() { s.ed.poll(ctx) }) })
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
// the console's records now make. A mailbox whose settings, profile and
// sink are unchanged keeps its running agent (an IDLE session stays
// open); the others and the outbox restart. A configuration that does not
// validate or build is refused, logged, and the running one kept. The
// error is nil: something always runs.
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
	prev := s.current.Load()
	ng, err := newGeneration(a.st, next, s.tel, s.logins, log, a.log, prev)
	if err != nil {
		log.Error("serve: the new configuration does not start; keeping the running one", "err", err)
		return nil
	}
	ng.ob.Gates, ng.ob.Instance = s.px.gates, s.instance
	kept := prev.handOver(ng)
	if err := s.px.apply(ng.rt); err != nil {
		log.Error("serve: a proxy listener does not start", "err", err)
	}
	s.current.Store(ng)
	ng.start(ctx, s.console, s.lz)
	s.cfg = next
	log.Info("mailgate reloaded", "mailboxes", len(ng.units), "kept_running", kept, "senders", len(ng.ob.Senders))
	return nil
}

// ReloadFile is serve's SIGHUP: the config file is read again and, when
// it loads, replaces the one the console's records are fitted to, then
// Reload. A file that does not load is logged and the running
// configuration kept. Keys read only at start (store, listen, key_file,
// tls_cert, tls_key) are logged as needing a restart.
func (a *App) ReloadFile(ctx context.Context) error {
	s := a.srv
	log := s.so.Log
	data, err := os.ReadFile(s.file.File)
	var cfg *config.Config
	if err == nil {
		cfg, err = config.ParseWith(data, s.file.File, a.opts.Getenv, nil)
	}
	if err != nil {
		log.Error("serve: the config file does not load; keeping the running configuration", "file", s.file.File, "err", err)
		return nil
	}
	if cfg.Store != s.file.Store || cfg.Listen != s.file.Listen || cfg.KeyFile != s.file.KeyFile || cfg.TLSCert != s.file.TLSCert || cfg.TLSKey != s.file.TLSKey {
		log.Warn("serve: store, listen, key_file, tls_cert and tls_key are read at start only; restart serve to apply their change")
	}
	s.ed.setFile(data)
	s.file = cfg
	log.Info("serve: config file reloaded", "file", cfg.File)
	return a.Reload(ctx)
}

// Stop ends what Start started: each agent finishes its batch (at most the
// grace period), the outbox its message; the heartbeat is withdrawn.
func (a *App) Stop() {
	s := a.srv
	if s == nil {
		return
	}
	a.srv = nil
	s.px.stop()
	g := s.current.Load()
	// the leases are renewed while the agents finish their batches, then
	// released at once for the other instances
	s.lz.draining.Store(true)
	g.stop()
	s.stopL()
	s.leases.Wait()
	s.lz.release()
	s.cancel()
	s.bg.Wait()
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
	return s.tel.statuses(g.statuses)()
}

// The server is the console's web.OutboxRuntime too.
var _ web.OutboxRuntime = (*server)(nil)

// OutboxStatus is each sender's queue in the running outbox.
func (s *server) OutboxStatus(ctx context.Context) []web.SenderQueueView {
	g := s.current.Load()
	if g == nil {
		return nil
	}
	st, err := g.ob.Status(ctx)
	if err != nil {
		s.so.Log.Warn("outbox status", "err", err)
		return nil
	}
	out := make([]web.SenderQueueView, 0, len(st))
	for _, ss := range st {
		v := web.SenderQueueView{Name: ss.Name, State: ss.State, Queued: ss.Queued, Rate: ss.Rate,
			DrainSeconds: ss.Drain.Round(time.Second).Seconds(), Drain: ss.Drain.Round(time.Second).String()}
		if !ss.Until.IsZero() {
			v.Until = ss.Until.UTC().Format(time.RFC3339)
		}
		if ss.RecipientsLeft >= 0 {
			v.RecipientsLeft = &ss.RecipientsLeft
		}
		out = append(out, v)
	}
	return out
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
		if u, ok := g.units[mailbox]; ok {
			u.sup.Wake(mailbox)
		}
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

// recordsPollEvery is how often serve looks for console records changed
// outside it (`mailgate records delete`, another instance on the same
// store).
const recordsPollEvery = 5 * time.Second

func hostname() string {
	h, _ := os.Hostname()
	return h
}
