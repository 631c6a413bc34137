package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
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

func init() {
	register(&command{
		name:    "serve",
		summary: "the daemon: mailbox agents, outbox, web console, /api/v1 and /metrics on listen, until SIGTERM",
		run:     runServe,
	})
}

// runServe runs every enabled mailbox continuously: poll mailboxes every
// interval, idle mailboxes on an open connection with IMAP IDLE. SIGTERM or
// SIGINT stops it gracefully: each mailbox finishes the batch it is
// delivering (at most --grace) before the process exits. The outbox worker
// sends what `mailgate send` queued. The web console, /api/v1, /metrics,
// /healthz and /readyz answer on the config's listen address (HTTPS with
// tls_cert and tls_key).
func runServe(ctx context.Context, env *Env, args []string) int {
	fs := newFlagSet(env, "serve", "")
	cfgFlag := fs.String("config", "", "config file (default $MAILGATE_CONFIG, then ./mailgate.yaml)")
	grace := fs.Duration("grace", 30*time.Second, "how long a stopping agent may finish its batch")
	verbose := fs.Bool("v", false, "log debug lines")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintln(env.Err, "usage: mailgate serve [--config FILE]")
		return ExitUsage
	}
	path := configPath(env, *cfgFlag)
	fileCfg, code, ok := loadConfig(env, path)
	if !ok {
		return code
	}
	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(env.Err, "mailgate: serve: %v\n", err)
		return ExitUsage
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(env.Err, &slog.HandlerOptions{Level: level}))
	rtlog := logger(env.Err, *verbose)
	tel := newTelemetry()
	st, err := openStore(ctx, env, fileCfg, rtlog)
	if err != nil {
		fmt.Fprintf(env.Err, "mailgate: serve: %v\n", err)
		return ExitFailed
	}
	defer st.Close()
	ed := &consoleRecords{st: st, data: data, path: path, getenv: env.Getenv, reload: make(chan struct{}, 1)}
	ed.remember(ctx)
	cfg, broken, err := ed.config(ctx)
	for _, b := range broken {
		log.Error("serve: a console record is failing and does not run; fix it in the console or delete it (mailgate records delete KIND NAME)", "kind", b.Kind, "name", b.Name, "err", b.Reason)
	}
	if err != nil {
		// a console record the file no longer agrees with must not keep the
		// file's own mailboxes from running
		log.Error("serve: the console's records do not fit the config file; running the file alone until they are fixed", "err", err)
		cfg = fileCfg
	}

	ln, err := net.Listen("tcp", fileCfg.Listen)
	if err != nil {
		fmt.Fprintf(env.Err, "mailgate: serve: listen %s: %v\n", fileCfg.Listen, err)
		return ExitFailed
	}
	ln = limitListener(ln, serveLimits.MaxConns)
	scheme := "http"
	if fileCfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(fileCfg.TLSCert, fileCfg.TLSKey)
		if err != nil {
			fmt.Fprintf(env.Err, "%s: tls_cert, tls_key: %v\n", fileCfg.File, err)
			ln.Close()
			return ExitUsage
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		scheme = "https"
	}
	var current atomic.Pointer[generation]
	auth := &consoleAuth{current: &current, pending: map[string]*pendingAuth{}}
	console := web.New(web.Options{Store: st, Config: cfg, Metrics: tel.reg, Log: log, Editor: ed, Authorizer: auth, Secure: scheme == "https",
		TokenHealth: tel.tokenHealth,
		Retried: func(mailbox string) {
			if g := current.Load(); g != nil {
				g.sup.Wake(mailbox)
			}
		},
		Explain: func(name string, err error) []string {
			g := current.Load()
			if g == nil {
				return nil
			}
			for i := range g.rt.cfg.Mailboxes {
				if m := &g.rt.cfg.Mailboxes[i]; m.Name == name {
					return diagnose(m, g.rt.profiles[m.Profile], err)
				}
			}
			return nil
		},
		CertExpiry: func(name string) (time.Time, bool) {
			if g := current.Load(); g != nil {
				if p, ok := g.rt.profiles[name]; ok && p.Certificate != nil && p.Certificate.Cert != nil {
					return p.Certificate.Cert.NotAfter, true
				}
			}
			return time.Time{}, false
		}})
	ed.applied, ed.failing = console.SetConfig, console.SetBroken
	console.SetBroken(broken)
	if n, err := st.CountAdmins(ctx); err == nil && n == 0 {
		log.Warn("no console administrator yet: create one with `mailgate admin add NAME` (password on stdin), then sign in at " + scheme + "://" + ln.Addr().String() + "/")
	}
	go tel.watchOutbox(ctx, st, 15*time.Second)
	go func() {
		t := time.NewTicker(recordsPollEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				ed.poll(ctx)
			}
		}
	}()
	hs := serveLimits.server(console)
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("serve: http", "err", err)
		}
	}()
	instance := fmt.Sprintf("%s-%d", hostname(), os.Getpid())
	_ = st.Heartbeat(ctx, instance)
	beat := time.NewTicker(heartbeatEvery)
	defer beat.Stop()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-beat.C:
				_ = st.Heartbeat(context.Background(), instance)
			}
		}
	}()

	g, err := startGeneration(st, cfg, tel, log, rtlog, *grace, console)
	if err != nil {
		fmt.Fprintf(env.Err, "%s: %v\n", cfg.File, err)
		_ = hs.Close()
		return ExitUsage
	}
	current.Store(g)
	log.Info("mailgate serving", "mailboxes", len(g.sup.Mailboxes), "senders", len(g.ob.Senders), "listen", ln.Addr().String(), "console", scheme+"://"+ln.Addr().String()+"/")
	for running := true; running; {
		select {
		case <-ctx.Done():
			running = false
		case <-ed.reload:
			next, broken, err := ed.config(ctx)
			if err != nil {
				log.Error("serve: reload refused", "err", err)
				continue
			}
			for _, b := range broken {
				log.Error("serve: a console record is failing and does not run", "kind", b.Kind, "name", b.Name, "err", b.Reason)
			}
			console.SetBroken(broken)
			g.stop()
			ng, err := startGeneration(st, next, tel, log, rtlog, *grace, console)
			if err != nil {
				log.Error("serve: the new configuration does not start; keeping the previous one", "err", err)
				if ng, err = startGeneration(st, cfg, tel, log, rtlog, *grace, console); err != nil {
					log.Error("serve: the previous configuration does not start either", "err", err)
					running = false
					continue
				}
			} else {
				cfg = next
			}
			g = ng
			current.Store(g)
			log.Info("mailgate reloaded", "mailboxes", len(g.sup.Mailboxes), "senders", len(g.ob.Senders))
		}
	}
	g.stop()
	_ = st.ForgetHeartbeat(context.Background(), instance)
	if st := g.ob.Stats(); st.Sent+st.Failed+st.Recovered > 0 {
		log.Info("outbox", "sent", st.Sent, "failed", st.Failed, "retried", st.Retried, "recovered_possible_duplicates", st.Recovered, "max_250_to_commit", st.Window)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	log.Info("mailgate stopped")
	return ExitOK
}

// generation is the agents and the outbox worker of one configuration;
// serve replaces it when the console changes a record.
type generation struct {
	rt     *runtimeT
	sup    *agent.Supervisor
	ob     *outbox.Worker
	halt   context.CancelFunc // stops the agents and the outbox
	done   chan struct{}
	closed bool
}

// startGeneration builds and starts the agents and the outbox of cfg and
// shows them in the console.
func startGeneration(st *store.Store, cfg *config.Config, tel *telemetry, log, rtlog *slog.Logger, grace time.Duration, console *web.Server) (*generation, error) {
	rt, err := newRuntimeOn(st, cfg, rtlog, tel.onToken)
	if err != nil {
		return nil, err
	}
	sup := &agent.Supervisor{Ledger: AgentLedger(st), Log: log, OnRun: tel.onRun}
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
		a.Idle = m.Mode == "idle"
		a.Interval = m.Interval.D()
		a.Host = m.Host
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
	console.SetLive(cfg, tel.statuses(sup.Statuses), rt.consoleTest)
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
