package app

import (
	"context"
	"log/slog"
	"os"

	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/oauth"
	"github.com/mailgate/mailgate/internal/store"
	"github.com/mailgate/mailgate/internal/web"
)

// Options configure Open. The zero value is usable.
type Options struct {
	// Logger is the engine's log (agents, token engine, senders); nil
	// discards.
	Logger *slog.Logger
	// Getenv resolves the config file's ${VAR}s when the console's records
	// are merged into it; nil is os.Getenv.
	Getenv func(string) string
	// OnToken, when set, observes every token endpoint request (serve sets
	// it to its metrics itself).
	OnToken func(profile, result string, aadsts int)
}

// App is a configuration turned into running parts: the file's
// configuration plus the console's records that fit it, its oauth
// profiles, sinks, mailboxes and senders. Commands call one method
// (RunOnce, Test, Diagnose, Send…); serve calls Start, then Reload on each
// console change, then Stop.
type App struct {
	file   *config.Config // the config file alone
	st     *store.Store
	opts   Options
	log    *slog.Logger
	rt     *parts
	broken []web.BrokenRecord
	fitErr error

	srv *server // serve's state, from Start
}

// Open merges the console's records kept in st into cfg (the config file's
// configuration; records that do not fit or build are skipped, see
// Broken) and builds the oauth profiles. It does no network I/O; sinks are
// opened when first used. The store stays the caller's: Close does not
// close it. A problem of the configuration is a *KeyError.
func Open(ctx context.Context, cfg *config.Config, st *store.Store, opts *Options) (*App, error) {
	a := &App{file: cfg, st: st}
	if opts != nil {
		a.opts = *opts
	}
	if a.opts.Getenv == nil {
		a.opts.Getenv = os.Getenv
	}
	a.log = a.opts.Logger
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	merged, broken, fitErr := MergeRecords(ctx, st, cfg, a.opts.Getenv)
	a.broken, a.fitErr = broken, fitErr
	rt, err := newParts(st, merged, a.log, a.opts.OnToken)
	if err != nil {
		return nil, err
	}
	a.rt = rt
	return a, nil
}

// MergeRecords adds the records made in the console (kept in st) to the
// config file's configuration cfg, resolving the file's ${VAR}s with
// getenv. The records that do not fit or build are left out and returned
// with the reason; when the records do not fit the file at all, the file
// alone is returned with the error.
func MergeRecords(ctx context.Context, st *store.Store, cfg *config.Config, getenv func(string) string) (*config.Config, []web.BrokenRecord, error) {
	rs, err := st.Records(ctx)
	if err != nil || len(rs) == 0 || cfg.File == "" {
		return cfg, nil, nil
	}
	data, err := os.ReadFile(cfg.File)
	if err != nil {
		return cfg, nil, nil
	}
	recs := make([]config.Record, 0, len(rs))
	for _, r := range rs {
		recs = append(recs, config.Record{Kind: r.Kind, Name: r.Name, YAML: r.YAML})
	}
	merged, _, broken, err := fitRecords(data, cfg.File, getenv, recs)
	if err != nil {
		return cfg, nil, err
	}
	return merged, broken, nil
}

// Config is the configuration the App runs: the file's plus the console's
// records that fit it.
func (a *App) Config() *config.Config { return a.rt.cfg }

// Broken are the console's records that Open skipped, with the reason.
func (a *App) Broken() []web.BrokenRecord { return a.broken }

// RecordsError is why the console's records were all left out (they do
// not fit the config file any more), or nil.
func (a *App) RecordsError() error { return a.fitErr }

// Store is the store the App was opened on.
func (a *App) Store() *store.Store { return a.st }

// Tokens is the token engine of the App's profiles.
func (a *App) Tokens() *oauth.Manager { return a.rt.mgr }

// OAuthProfile returns the oauth profile of the configured profile name.
func (a *App) OAuthProfile(name string) (*oauth.Profile, bool) {
	p, ok := a.rt.profiles[name]
	return p, ok
}

// Close stops what Start started and closes the sinks opened so far. The
// store stays open.
func (a *App) Close() {
	if a.srv != nil {
		a.Stop()
	}
	a.rt.closeSinks()
}

// OpenStore opens the configured store with its key (MAILGATE_KEY, read
// with getenv, else key_file, created 0600 on first start).
func OpenStore(ctx context.Context, cfg *config.Config, getenv func(string) string, log *slog.Logger) (*store.Store, error) {
	key, err := store.LoadKey(cfg.KeyFile, getenv)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, cfg.Store, &store.Options{Key: key, Logger: log})
	if err != nil {
		return nil, err
	}
	return st, nil
}
