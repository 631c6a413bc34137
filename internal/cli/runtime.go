package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/oauth"
	"github.com/mailgate/mailgate/internal/store"
)

// logger is the commands' slog logger: errors on stderr, everything with
// -v. (Commands print their own warnings in plain words; the engine's are
// the same facts.) Tokens and secrets are never logged: the types that hold
// them redact themselves.
func logger(w io.Writer, verbose bool) *slog.Logger {
	level := slog.LevelError
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// openStore opens the configured store with its key (MAILGATE_KEY, else
// key_file, created 0600 on first start).
func openStore(ctx context.Context, env *Env, cfg *config.Config, log *slog.Logger) (*store.Store, error) {
	key, err := store.LoadKey(cfg.KeyFile, env.Getenv)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, cfg.Store, &store.Options{Key: key, Logger: log})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// tokenManager is the token engine over the store.
func tokenManager(st *store.Store, log *slog.Logger) *oauth.Manager {
	return oauth.NewManager(TokenStore(st), &oauth.ManagerOptions{Logger: log})
}

// observedTokenManager is tokenManager reporting every token endpoint
// exchange to onRequest (metrics).
func observedTokenManager(st *store.Store, log *slog.Logger, onRequest func(profile, result string, aadsts int)) *oauth.Manager {
	return oauth.NewManager(TokenStore(st), &oauth.ManagerOptions{Logger: log, OnRequest: onRequest})
}

// printOAuthError tells the administrator what went wrong and how to fix
// it: one summary line, then the AADSTS meaning and the fix.
func printOAuthError(w io.Writer, cmd string, p *oauth.Profile, err error) {
	fmt.Fprintf(w, "mailgate: %s %s: %v\n", cmd, p.Name, err)
	if ex, ok := oauth.ExplainError(err, p); ok {
		if ex.AADSTS != 0 {
			fmt.Fprintf(w, "  AADSTS%d: %s\n", ex.AADSTS, ex.Meaning)
		} else if ex.Meaning != "" {
			fmt.Fprintf(w, "  %s\n", ex.Meaning)
		}
		if ex.Fix != "" {
			fmt.Fprintf(w, "  fix: %s\n", ex.Fix)
		}
	}
}

// storeT is the store type the commands share.
type storeT = store.Store
