package cli

import (
	"context"
	"fmt"
)

func init() {
	register(&command{name: "store", summary: "the store itself: store migrate --to postgres://… [--force]", run: runStore})
}

// runStore dispatches the store subcommands.
func runStore(ctx context.Context, env *Env, args []string) int {
	if len(args) > 0 && args[0] == "migrate" {
		return runStoreMigrate(ctx, env, args[1:])
	}
	fmt.Fprintln(env.Err, "usage: mailgate store migrate --to postgres://… [--force]")
	return ExitUsage
}
