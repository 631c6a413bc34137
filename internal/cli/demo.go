package cli

import (
	"context"
	"fmt"
	"os"

	"github.com/mailgate/mailgate/internal/demo"
)

func init() {
	register(&command{
		name:    "demo",
		summary: "run mailgate's main job against the built-in Entra ID emulator (no tenant needed)",
		run:     runDemo,
	})
}

// runDemo starts the emulator and walks through what mailgate does with a
// tenant: tokens with a secret and a certificate, the cache, a token used
// against Exchange's mailbox rule, and an error explained.
func runDemo(ctx context.Context, env *Env, args []string) int {
	fs := newFlagSet(env, "demo", "")
	dir := fs.String("dir", "", "keep the emulator's files, the store and a ready mailgate.yaml in DIR (default: a temporary directory removed at exit)")
	listen := fs.String("listen", "127.0.0.1:0", "HTTPS listen address of the emulator")
	consoleAddr := fs.String("console", "127.0.0.1:8025", "listen address of the console after the walk-through (a free port if taken)")
	once := fs.Bool("once", false, "exit after the walk-through instead of serving the emulator until Ctrl-C")
	_ = fs.String("config", "", "ignored: the demo needs no config")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintf(env.Err, "mailgate: demo: unexpected argument %q\n", pos[0])
		return ExitUsage
	}
	d := *dir
	if d == "" {
		tmp, err := os.MkdirTemp("", "mailgate-demo-")
		if err != nil {
			fmt.Fprintf(env.Err, "mailgate: demo: %v\n", err)
			return ExitFailed
		}
		defer os.RemoveAll(tmp)
		d = tmp
	} else if err := os.MkdirAll(d, 0o700); err != nil {
		fmt.Fprintf(env.Err, "mailgate: demo: %v\n", err)
		return ExitFailed
	}
	walk := demo.New(d, env.Err, env.Getenv)
	if moved, err := demo.SetAsidePreviousRun(d); err != nil {
		fmt.Fprintf(env.Err, "mailgate: demo: %v\n", err)
		return ExitFailed
	} else if moved != "" {
		fmt.Fprintf(env.Err, "mailgate: demo: the store and inbox of the previous run in %s were moved to %s (they belong to its emulator)\n", d, moved)
	}
	if err := walk.Run(ctx, *listen); err != nil {
		fmt.Fprintf(env.Err, "mailgate: demo: %v\n", err)
		return ExitFailed
	}
	if walk.Failed() {
		fmt.Fprintln(env.Err, "mailgate: demo: a step did not behave as expected (see above)")
		return ExitFailed
	}
	if *once {
		return ExitOK
	}
	cfgPath, err := walk.PrepareServe(ctx, *consoleAddr)
	if err != nil {
		fmt.Fprintf(env.Err, "mailgate: demo: %v\n", err)
		return ExitFailed
	}
	return runServe(ctx, env, []string{"--config", cfgPath})
}
