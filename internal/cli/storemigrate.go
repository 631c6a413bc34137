package cli

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/mailgate/mailgate/internal/app"
)

// runStoreMigrate is `store migrate --to URL [--force]` (app.MigrateStore).
func runStoreMigrate(ctx context.Context, env *Env, args []string) int {
	fs := newFlagSet(env, "store migrate", "--to postgres://… [--force]")
	cfgFlag := fs.String("config", "", "config file (default $MAILGATE_CONFIG, then ./mailgate.yaml)")
	to := fs.String("to", "", "the store to copy into, e.g. postgres://user@host/db (opened with the same key)")
	force := fs.Bool("force", false, "replace everything the target holds")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	} else if len(pos) > 0 || *to == "" {
		fs.Usage()
		return ExitUsage
	}
	cfg, code, ok := loadConfig(env, configPath(env, *cfgFlag))
	if !ok {
		return code
	}
	counts, err := app.MigrateStore(ctx, cfg, *to, *force, env.Getenv, logger(env, cfg, slog.LevelError))
	if err != nil {
		fmt.Fprintf(env.Err, "mailgate: store migrate: %v\n", err)
		return ExitFailed
	}
	for _, c := range counts {
		fmt.Fprintf(env.Out, "%-22s %d\n", c.Table, c.Rows)
	}
	return ExitOK
}
