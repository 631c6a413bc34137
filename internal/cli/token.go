package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/mailgate/mailgate/internal/app"
	"github.com/mailgate/mailgate/internal/oauth"
)

func init() {
	register(&command{
		name:    "token",
		summary: "print a valid access token for a profile, and only it, on stdout",
		run:     runToken,
	})
}

// scopeFlags collects repeated --scope values.
type scopeFlags []string

func (s *scopeFlags) String() string { return strings.Join(*s, " ") }
func (s *scopeFlags) Set(v string) error {
	*s = append(*s, strings.Fields(v)...)
	return nil
}

// runToken prints an access token: from the encrypted cache while it is
// valid for longer than the refresh margin and was obtained with the
// profile's current settings, else (and always with --fresh) from the
// token endpoint (one request for all concurrent callers of this process).
// A failed --fresh request leaves the cached token in place. It is meant as
// a password command (msmtp passwordeval, getmail6, fetchmail, aerc, isync),
// so stdout carries the token and nothing else.
func runToken(ctx context.Context, env *Env, args []string) int {
	fs := newFlagSet(env, "token", "PROFILE")
	cfgFlag := fs.String("config", "", "config file (default $MAILGATE_CONFIG, then ./mailgate.yaml)")
	var scopes scopeFlags
	fs.Var(&scopes, "scope", "scope to request instead of the profile's (repeatable)")
	fresh := fs.Bool("fresh", false, "skip the cache: a token fetched now from the token endpoint (it then replaces the cached one)")
	subject := fs.String("subject", "", "the user a service_account profile acts for (default: the profile's subject)")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintln(env.Err, "usage: mailgate token PROFILE [--scope S]... [--subject USER] [--fresh] [--config FILE]")
		return ExitUsage
	}
	cfg, code, ok := loadConfig(env, configPath(env, *cfgFlag))
	if !ok {
		return code
	}
	log := logger(env, cfg, slog.LevelError)
	st, err := app.OpenStore(ctx, cfg, env.Getenv, log)
	if err != nil {
		fmt.Fprintf(env.Err, "mailgate: token: %v\n", err)
		return ExitFailed
	}
	defer st.Close()
	cfg = withConsoleRecords(ctx, env, st, cfg)
	cp, p, err := app.ProfileNamed(cfg, pos[0])
	if app.IsKeyError(err) {
		fmt.Fprintf(env.Err, "%s: %v\n", cfg.File, err)
		return ExitUsage
	} else if err != nil {
		fmt.Fprintf(env.Err, "mailgate: token: %v\n", err)
		return ExitUsage
	}
	if *subject != "" {
		if p, err = p.WithSubject(*subject); err != nil {
			fmt.Fprintf(env.Err, "mailgate: token: %v\n", err)
			return ExitUsage
		}
	}
	for _, w := range app.ProfileWarnings(cp, p, time.Now()) {
		fmt.Fprintf(env.Err, "mailgate: warning: %s\n", w)
	}
	mgr := app.TokenManager(st, log, nil)
	get := mgr.Token
	if *fresh {
		get = mgr.Fresh
	}
	tok, err := get(ctx, p, scopes)
	if err != nil {
		var ve *oauth.ValidationError
		if errors.As(err, &ve) {
			fmt.Fprintf(env.Err, "%s: %v\n", cfg.File, err)
			return ExitUsage
		}
		printOAuthError(env.Err, "token", p, err)
		if errors.Is(err, oauth.ErrLoginRequired) {
			hint := "mailgate login " + p.Name
			if p.Grant == oauth.GrantDeviceCode {
				hint += " --device"
			}
			fmt.Fprintf(env.Err, "  run: %s\n", hint)
		}
		return ExitFailed
	}
	fmt.Fprintln(env.Out, tok.AccessToken)
	return ExitOK
}
