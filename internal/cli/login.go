package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/mailgate/mailgate/internal/app"
	"github.com/mailgate/mailgate/internal/oauth"
)

func init() {
	register(&command{
		name:    "login",
		summary: "sign a user in for a delegated profile (browser, --device or --paste) and store the refresh token",
		run:     runLogin,
	})
}

// runLogin signs a person in: the authorization-code flow with PKCE and a
// loopback redirect listener (the URL printed, a browser opened when there
// is one), or the device-code flow. The refresh token is stored encrypted;
// `mailgate token` and the agents use it from then on.
func runLogin(ctx context.Context, env *Env, args []string) int {
	fs := newFlagSet(env, "login", "PROFILE")
	cfgFlag := fs.String("config", "", "config file (default $MAILGATE_CONFIG, then ./mailgate.yaml)")
	device := fs.Bool("device", false, "use the device-code flow: sign in on another device with a code")
	noBrowser := fs.Bool("no-browser", false, "only print the sign-in URL, do not open a browser")
	paste := fs.Bool("paste", false, "without a browser here: print the URL, then read the address the browser lands on (or its code) from stdin")
	timeout := fs.Duration("timeout", 5*time.Minute, "how long to wait for the sign-in")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintln(env.Err, "usage: mailgate login PROFILE [--device | --paste] [--no-browser] [--config FILE]")
		return ExitUsage
	}
	cfg, code, ok := loadConfig(env, configPath(env, *cfgFlag))
	if !ok {
		return code
	}
	_, p, err := app.ProfileNamed(cfg, pos[0])
	if app.IsKeyError(err) {
		fmt.Fprintf(env.Err, "%s: %v\n", cfg.File, err)
		return ExitUsage
	} else if err != nil {
		fmt.Fprintf(env.Err, "mailgate: login: %v\n", err)
		return ExitUsage
	}
	switch {
	case p.Grant == oauth.GrantClientCredentials || p.Grant == "" || p.Grant == oauth.GrantServiceAccount:
		fmt.Fprintf(env.Err, "mailgate: login: profile %s uses %s (app-only or a service account): no user signs in; `mailgate token %s` works as is\n", p.Name, p.Grant, p.Name)
		return ExitUsage
	case p.Grant == oauth.GrantPassword:
		fmt.Fprintf(env.Err, "mailgate: login: profile %s uses the password grant: the password in the config signs in; use grant: authorization_code or device_code for an interactive sign-in\n", p.Name)
		return ExitUsage
	}
	log := logger(env, cfg, slog.LevelError)
	st, err := app.OpenStore(ctx, cfg, env.Getenv, log)
	if err != nil {
		fmt.Fprintf(env.Err, "mailgate: login: %v\n", err)
		return ExitFailed
	}
	defer st.Close()
	mgr := app.TokenManager(st, log, nil)
	var tok *oauth.Token
	if *device || p.Grant == oauth.GrantDeviceCode {
		lctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		tok, err = mgr.DeviceLogin(lctx, p, func(d oauth.DeviceAuth) {
			fmt.Fprintf(env.Err, "To sign in, open %s and enter the code %s\n", d.VerificationURI, d.UserCode)
			if d.VerificationURIComplete != "" {
				fmt.Fprintf(env.Err, "(or open %s)\n", d.VerificationURIComplete)
			}
			fmt.Fprintf(env.Err, "Waiting for the sign-in (the code expires at %s)…\n", d.Expiry.Local().Format("15:04"))
		})
	} else if *paste {
		tok, err = mgr.PasteLogin(ctx, p, env.In, env.Err, "")
	} else {
		tok, err = mgr.Login(ctx, p, oauth.LoginOptions{Out: env.Err, NoBrowser: *noBrowser, Getenv: env.Getenv, Timeout: *timeout})
	}
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			fmt.Fprintf(env.Err, "mailgate: login %s: nobody signed in within %s\n", p.Name, *timeout)
			return ExitFailed
		}
		printOAuthError(env.Err, "login", p, err)
		return ExitFailed
	}
	who := app.TokenUser(tok.AccessToken)
	if who == "" {
		who = "the user"
	}
	fmt.Fprintf(env.Err, "Signed in as %s; the refresh token is stored (encrypted). `mailgate token %s` works from now on.\n", who, p.Name)
	return ExitOK
}
