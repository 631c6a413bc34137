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
	"time"

	"github.com/mailgate/mailgate/internal/agent"
	"github.com/mailgate/mailgate/internal/outbox"
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
	cfg, code, ok := loadConfig(env, configPath(env, *cfgFlag))
	if !ok {
		return code
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(env.Err, &slog.HandlerOptions{Level: level}))
	tel := newTelemetry()
	rt, err := newObservedRuntime(ctx, env, cfg, logger(env.Err, *verbose), tel.onToken)
	if err != nil {
		fmt.Fprintf(env.Err, "mailgate: serve: %v\n", err)
		if isProfileError(err) {
			return ExitUsage
		}
		return ExitFailed
	}
	defer rt.close()
	sup := &agent.Supervisor{Ledger: rt.store, Log: log, OnRun: tel.onRun}
	for i := range cfg.Mailboxes {
		m := &cfg.Mailboxes[i]
		if !m.Enabled {
			continue
		}
		a, err := rt.agentMailbox(m)
		if err != nil {
			fmt.Fprintf(env.Err, "%s: mailboxes[%s]: %v\n", cfg.File, m.Name, err)
			return ExitUsage
		}
		a.Idle = m.Mode == "idle"
		a.Interval = m.Interval.D()
		a.Host = m.Host
		sup.Mailboxes = append(sup.Mailboxes, a)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		fmt.Fprintf(env.Err, "mailgate: serve: listen %s: %v\n", cfg.Listen, err)
		return ExitFailed
	}
	scheme := "http"
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			fmt.Fprintf(env.Err, "%s: tls_cert, tls_key: %v\n", cfg.File, err)
			ln.Close()
			return ExitUsage
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		scheme = "https"
	}
	console := web.New(web.Options{Store: rt.store, Config: cfg, Metrics: tel.reg, Log: log, Statuses: sup.Statuses, Test: rt.consoleTest, Secure: scheme == "https",
		CertExpiry: func(name string) (time.Time, bool) {
			if p, ok := rt.profiles[name]; ok && p.Certificate != nil && p.Certificate.Cert != nil {
				return p.Certificate.Cert.NotAfter, true
			}
			return time.Time{}, false
		}})
	if n, err := rt.store.CountAdmins(ctx); err == nil && n == 0 {
		log.Warn("no console administrator yet: create one with `mailgate admin add NAME` (password on stdin), then sign in at " + scheme + "://" + ln.Addr().String() + "/")
	}
	go tel.watchOutbox(ctx, rt.store, 15*time.Second)
	hs := &http.Server{Handler: console, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("serve: http", "err", err)
		}
	}()
	ob := &outbox.Worker{Store: rt.store, Log: log}
	for i := range cfg.Senders {
		if snd := &cfg.Senders[i]; snd.Protocol == "smtp" || snd.Protocol == "graph" || snd.Protocol == "" {
			s, err := rt.outboxSender(snd)
			if err != nil {
				fmt.Fprintf(env.Err, "%s: senders[%s]: %v\n", cfg.File, snd.Name, err)
				return ExitUsage
			}
			ob.Senders = append(ob.Senders, s)
		}
	}
	instance := fmt.Sprintf("%s-%d", hostname(), os.Getpid())
	_ = rt.store.Heartbeat(ctx, instance)
	beat := time.NewTicker(heartbeatEvery)
	defer beat.Stop()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-beat.C:
				_ = rt.store.Heartbeat(context.Background(), instance)
			}
		}
	}()
	log.Info("mailgate serving", "mailboxes", len(sup.Mailboxes), "senders", len(ob.Senders), "listen", ln.Addr().String(), "console", scheme+"://"+ln.Addr().String()+"/")
	obDone := make(chan struct{})
	go func() { ob.Run(ctx.Done()); close(obDone) }()
	sup.Serve(ctx.Done(), *grace)
	<-ctx.Done() // with no mailboxes Serve returns at once; the console stays up
	<-obDone
	_ = rt.store.ForgetHeartbeat(context.Background(), instance)
	if st := ob.Stats(); st.Sent+st.Failed+st.Recovered > 0 {
		log.Info("outbox", "sent", st.Sent, "failed", st.Failed, "retried", st.Retried, "recovered_possible_duplicates", st.Recovered, "max_250_to_commit", st.Window)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	log.Info("mailgate stopped")
	return ExitOK
}

// The serve heartbeat tells `mailgate send` that an outbox worker runs.
const (
	heartbeatEvery  = 5 * time.Second
	heartbeatMaxAge = 15 * time.Second
)

func hostname() string {
	h, _ := os.Hostname()
	return h
}
