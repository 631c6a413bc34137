package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/mailgate/mailgate/internal/app"
	"github.com/mailgate/mailgate/internal/cmdline"
)

func init() {
	register(&command{
		name:    "run",
		summary: "poll the mailboxes once, deliver to their sinks, mark, move or delete, exit",
		run:     runRun,
	})
}

// runRun is `mailgate run [--once] [--mailbox NAME]`: every enabled mailbox
// (or one) is read once, concurrently; exit 1 when any failed. --once is
// what run always does; it stays accepted for scripts that give it.
func runRun(ctx context.Context, env *Env, args []string) int {
	fs := newFlagSet(env, "run", "")
	cfgFlag := fs.String("config", "", "config file (default $MAILGATE_CONFIG, then ./mailgate.yaml)")
	fs.Bool("once", true, "read each mailbox once and exit, which run always does (accepted for scripts; serve runs continuously)")
	only := fs.String("mailbox", "", "read only this mailbox")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintln(env.Err, "usage: mailgate run [--once] [--mailbox NAME] [--config FILE]")
		return ExitUsage
	}
	a, code, ok := openApp(ctx, env, "run", configPath(env, *cfgFlag))
	if !ok {
		return code
	}
	defer closeApp(a)
	cfg := a.Config() // with the console's records
	bar := cmdline.NewProgress(env.Err)
	results, err := a.RunOnce(ctx, *only, bar.Update)
	bar.Done()
	switch {
	case errors.Is(err, app.ErrNoMailbox) && *only != "":
		fmt.Fprintf(env.Err, "mailgate: run: no mailbox %q in %s\n", *only, cfg.File)
		return ExitUsage
	case errors.Is(err, app.ErrNoMailbox):
		fmt.Fprintf(env.Err, "mailgate: run: no enabled mailbox in %s\n", cfg.File)
		return ExitUsage
	case err != nil:
		fmt.Fprintf(env.Err, "%s: %v\n", cfg.File, err)
		return ExitUsage
	}
	failed := 0
	for _, r := range results {
		if r.ServedBy != "" {
			fmt.Fprintf(env.Err, "%s: skipped: served by %s\n", r.Mailbox, r.ServedBy)
			continue
		}
		if r.Err != nil {
			failed++
			fmt.Fprintf(env.Err, "%s: FAILED after %d delivered: %v\n", r.Mailbox, r.Delivered, r.Err)
			for _, line := range r.Advice {
				fmt.Fprintf(env.Err, "  %s\n", line)
			}
			continue
		}
		fmt.Fprintf(env.Err, "%s: %d delivered, %d already there, %d acknowledged (%s)\n", r.Mailbox, r.Delivered, r.Duplicates, r.Acked, r.After)
		if r.Held > 0 {
			fmt.Fprintf(env.Err, "%s: %d refused by the sink and set aside, not acknowledged: see mailgate messages held\n", r.Mailbox, r.Held)
		}
	}
	if failed > 0 {
		return ExitFailed
	}
	return ExitOK
}
