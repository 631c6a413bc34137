package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/mailgate/mailgate/internal/app"
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
	verbose := fs.Bool("v", false, "log each step on stderr")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintln(env.Err, "usage: mailgate run [--once] [--mailbox NAME] [--config FILE]")
		return ExitUsage
	}
	log := logger(env.Err, *verbose)
	a, code, ok := openApp(ctx, env, "run", configPath(env, *cfgFlag), log)
	if !ok {
		return code
	}
	defer closeApp(a)
	cfg := a.Config() // with the console's records
	bar := newProgress(env.Err)
	results, err := a.RunOnce(ctx, *only, bar.update)
	bar.done()
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

// progress draws a one-line bar on a terminal and nothing otherwise (the
// summary lines follow either way).
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	state map[string][2]int
}

func newProgress(w io.Writer) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &progress{w: w, tty: tty, state: map[string][2]int{}}
}

func (p *progress) update(name string, done, total int) {
	if !p.tty {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.state[name] = [2]int{done, total}
	var parts []string
	for n, s := range p.state {
		width := 20
		fill := 0
		if s[1] > 0 {
			fill = width * s[0] / s[1]
		}
		parts = append(parts, fmt.Sprintf("%s [%s%s] %d/%d", n, strings.Repeat("#", fill), strings.Repeat(".", width-fill), s[0], s[1]))
	}
	fmt.Fprintf(p.w, "\r%s", strings.Join(parts, "  "))
}

func (p *progress) done() {
	if p.tty && len(p.state) > 0 {
		fmt.Fprintln(p.w)
	}
}
