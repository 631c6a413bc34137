package cli

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/mailgate/mailgate/internal/app"
)

func init() {
	register(&command{name: "store", summary: "back up, restore, rekey or migrate the store", run: runStore})
}

const storeUsage = "usage: mailgate store backup FILE\n       mailgate store restore [--force] FILE\n       mailgate store rekey [--new-key-file PATH]\n       mailgate store migrate --to postgres://… [--force]"

// runStore dispatches `mailgate store SUBCOMMAND`; each subcommand parses
// its own flags.
func runStore(ctx context.Context, env *Env, args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "backup", "restore", "rekey":
			return runStoreOps(ctx, env, args[0], args[1:])
		case "migrate":
			return runStoreMigrate(ctx, env, args[1:])
		}
	}
	fmt.Fprintln(env.Err, storeUsage)
	return ExitUsage
}

// runStoreOps is `store backup|restore|rekey` (app.StoreOps does the work).
func runStoreOps(ctx context.Context, env *Env, sub string, args []string) int {
	fs := newFlagSet(env, "store "+sub, "")
	cfgFlag := fs.String("config", "", "config file (default $MAILGATE_CONFIG, then ./mailgate.yaml)")
	force := fs.Bool("force", false, "restore: replace the data of a store that is not empty")
	newKey := fs.String("new-key-file", "", "rekey: file of the new key (created if missing); default: a new key_file, the old one kept as key_file.old")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(pos) != map[string]int{"backup": 1, "restore": 1, "rekey": 0}[sub] || *force && sub != "restore" || *newKey != "" && sub != "rekey" {
		fmt.Fprintln(env.Err, storeUsage)
		return ExitUsage
	}
	cfg, code, ok := loadConfig(env, configPath(env, *cfgFlag))
	if !ok {
		return code
	}
	ops := app.StoreOps{Config: cfg, Getenv: env.Getenv, Log: logger(env, cfg, slog.LevelError)}
	var msg string
	var err error
	switch sub {
	case "backup":
		msg, err = ops.Backup(ctx, pos[0])
	case "restore":
		msg, err = ops.Restore(ctx, pos[0], *force)
	default:
		msg, err = ops.Rekey(ctx, *newKey)
	}
	if err != nil {
		fmt.Fprintf(env.Err, "mailgate: store %s: %v\n", sub, err)
		return ExitFailed
	}
	fmt.Fprintln(env.Err, msg)
	return ExitOK
}
