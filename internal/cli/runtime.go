package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/mailgate/mailgate/internal/app"
	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/logging"
	"github.com/mailgate/mailgate/internal/oauth"
	"github.com/mailgate/mailgate/internal/store"
	"github.com/mailgate/mailgate/internal/web"
)

// logger is a command's slog logger on stderr: the level and format of
// the command line, else of cfg's log key, else def (commands log errors
// only: they print their own warnings in plain words). Tokens and secrets
// are never logged: the types that hold them redact themselves.
func logger(env *Env, cfg *config.Config, def slog.Level) *slog.Logger {
	return logging.New(env.Err, env.Log.Or(cfg.Log.Level, cfg.Log.Format), def)
}

// openApp loads the config file at path, opens its store and the App (the
// file plus the console's records, whose problems are said on env.Err); on
// failure it reports to env.Err as command cmd and returns the exit status
// (2 for a problem in the config). Close the App, then the store.
func openApp(ctx context.Context, env *Env, cmd, path string) (*app.App, int, bool) {
	cfg, st, code, ok := openStore(ctx, env, cmd, path)
	if !ok {
		return nil, code, false
	}
	log := logger(env, cfg, slog.LevelError)
	a, err := app.Open(ctx, cfg, st, &app.Options{Logger: log, Getenv: env.Getenv})
	if err != nil {
		st.Close()
		fmt.Fprintf(env.Err, "mailgate: %s: %v\n", cmd, err)
		if app.IsKeyError(err) {
			return nil, ExitUsage, false
		}
		return nil, ExitFailed, false
	}
	sayBroken(env, cfg, a.Broken(), a.RecordsError())
	return a, ExitOK, true
}

// openStore loads the config file at path and opens its store; on failure
// it reports to env.Err as command cmd and returns the exit status. Close
// the store.
func openStore(ctx context.Context, env *Env, cmd, path string) (*config.Config, *store.Store, int, bool) {
	cfg, code, ok := loadConfig(env, path)
	if !ok {
		return nil, nil, code, false
	}
	st, err := app.OpenStore(ctx, cfg, env.Getenv, logger(env, cfg, slog.LevelError))
	if err != nil {
		fmt.Fprintf(env.Err, "mailgate: %s: %v\n", cmd, err)
		return nil, nil, ExitFailed, false
	}
	return cfg, st, ExitOK, true
}

// withConsoleRecords adds the console's records to the file's
// configuration (app.MergeRecords) and says on env.Err what is left out.
func withConsoleRecords(ctx context.Context, env *Env, st *store.Store, cfg *config.Config) *config.Config {
	merged, broken, err := app.MergeRecords(ctx, st, cfg, env.Getenv)
	sayBroken(env, cfg, broken, err)
	return merged
}

// sayBroken says which console records are left out, or that all are.
func sayBroken(env *Env, cfg *config.Config, broken []web.BrokenRecord, err error) {
	if err != nil {
		fmt.Fprintf(env.Err, "mailgate: the console's records do not fit %s, using the file alone: %v\n", cfg.File, err)
	}
	for _, b := range broken {
		fmt.Fprintf(env.Err, "mailgate: console record %s %s is failing and skipped: %s\n", b.Kind, b.Name, b.Reason)
	}
}

// closeApp closes the App and its store.
func closeApp(a *app.App) {
	a.Close()
	a.Store().Close()
}

// printOAuthError tells the administrator what went wrong and how to fix
// it: one summary line, then the AADSTS meaning and the fix.
func printOAuthError(w io.Writer, cmd string, p *oauth.Profile, err error) {
	fmt.Fprintf(w, "mailgate: %s %s: %v\n", cmd, p.Name, err)
	for _, l := range app.TokenAdvice(err, p) {
		fmt.Fprintf(w, "  %s\n", l)
	}
}
