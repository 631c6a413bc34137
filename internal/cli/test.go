package cli

import (
	"context"
	"fmt"
	"io"
)

func init() {
	register(&command{
		name:    "test",
		summary: "the Test button: exercise a mailbox, sender, sink, proxy account or profile step by step and say what to fix",
		run:     runTest,
	})
}

// runTest exercises a mailbox (DNS, TCP, TLS, token, AUTH, SELECT), a
// sink (without delivering), a sender (DNS, TCP, TLS, token, AUTH; Graph:
// token and Mail.Send) or a profile (token) and reports each step; on
// failure it says what to fix.
func runTest(ctx context.Context, env *Env, args []string) int {
	fs := newFlagSet(env, "test", "NAME")
	cfgFlag := fs.String("config", "", "config file (default $MAILGATE_CONFIG, then ./mailgate.yaml)")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintln(env.Err, "usage: mailgate test NAME (a mailbox, sender, sink, proxy account or profile) [--config FILE]")
		return ExitUsage
	}
	a, code, ok := openApp(ctx, env, "test", configPath(env, *cfgFlag))
	if !ok {
		return code
	}
	defer closeApp(a)
	out := &stepPrinter{out: env.Out, width: 6}
	_, passed, found := a.Test(ctx, "", pos[0], out.step, out.hint)
	switch {
	case !found:
		fmt.Fprintf(env.Err, "mailgate: test: no mailbox, sender, sink, proxy account or profile %q in %s\n", pos[0], a.Config().File)
		return ExitUsage
	case !passed:
		return ExitFailed
	}
	return ExitOK
}

// stepPrinter writes steps as "✓ name detail" lines (the name padded to
// width) and hints indented below them; failed says whether a step failed.
type stepPrinter struct {
	out    io.Writer
	width  int
	failed bool
}

func (p *stepPrinter) step(ok bool, name, format string, a ...any) {
	mark := "✓"
	if !ok {
		mark, p.failed = "✗", true
	}
	fmt.Fprintf(p.out, "%s %-*s %s\n", mark, p.width, name, fmt.Sprintf(format, a...))
}

func (p *stepPrinter) hint(s string) { fmt.Fprintf(p.out, "  %s\n", s) }
