package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/mailgate/mailgate/internal/app"
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
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintln(env.Err, "usage: mailgate serve [--config FILE]")
		return ExitUsage
	}
	fileCfg, code, ok := loadConfig(env, configPath(env, *cfgFlag))
	if !ok {
		return code
	}
	log := logger(env, fileCfg, slog.LevelInfo)
	rtlog := logger(env, fileCfg, slog.LevelError)
	st, err := app.OpenStore(ctx, fileCfg, env.Getenv, rtlog)
	if err != nil {
		fmt.Fprintf(env.Err, "mailgate: serve: %v\n", err)
		return ExitFailed
	}
	defer st.Close()
	a, err := app.Open(ctx, fileCfg, st, &app.Options{Logger: rtlog, Getenv: env.Getenv})
	if err != nil {
		fmt.Fprintf(env.Err, "%s: %v\n", fileCfg.File, err)
		return ExitUsage
	}
	defer a.Close()
	ln, scheme, err := app.Listen(fileCfg)
	if app.IsKeyError(err) {
		fmt.Fprintf(env.Err, "%s: %v\n", fileCfg.File, err)
		return ExitUsage
	} else if err != nil {
		fmt.Fprintf(env.Err, "mailgate: serve: %v\n", err)
		return ExitFailed
	}
	if err := a.Start(ctx, app.ServeOptions{Log: log, Grace: *grace, Secure: scheme == "https"}); err != nil {
		fmt.Fprintf(env.Err, "mailgate: serve: %v\n", err)
		ln.Close()
		return ExitUsage
	}
	if n, err := st.CountAdmins(ctx); err == nil && n == 0 {
		log.Warn("no console administrator yet: create one with `mailgate admin add NAME` (password on stdin), then sign in at " + scheme + "://" + ln.Addr().String() + "/")
	}
	hs := app.HTTPServer(a.Handler())
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("serve: http", "err", err)
		}
	}()
	mailboxes, senders := a.Running()
	log.Info("mailgate serving", "mailboxes", mailboxes, "senders", senders, "listen", ln.Addr().String(), "console", scheme+"://"+ln.Addr().String()+"/")
	for running := true; running; {
		select {
		case <-ctx.Done():
			running = false
		case <-a.Reloads():
			running = a.Reload(ctx) == nil
		case <-env.Hangup:
			running = a.ReloadFile(ctx) == nil
		}
	}
	a.Stop()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	log.Info("mailgate stopped")
	return ExitOK
}
