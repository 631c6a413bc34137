package cli

import (
	"context"
	"fmt"
)

func init() {
	register(&command{
		name:    "doctor",
		summary: "diagnose a profile, mailbox, sender or proxy account: the token's audience and permissions against what its mailboxes and senders need, expiry dates, then the Test steps, each with what to change",
		run:     runDoctor,
	})
}

// runDoctor diagnoses NAME: for a profile, its token and every mailbox and
// sender that uses it; for a mailbox or a sender, its profile's token
// against what it needs, then the Test steps.
func runDoctor(ctx context.Context, env *Env, args []string) int {
	fs := newFlagSet(env, "doctor", "NAME")
	cfgFlag := fs.String("config", "", "config file (default $MAILGATE_CONFIG, then ./mailgate.yaml)")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintln(env.Err, "usage: mailgate doctor NAME (a profile, mailbox, sender or proxy account) [--config FILE]")
		return ExitUsage
	}
	a, code, ok := openApp(ctx, env, "doctor", configPath(env, *cfgFlag))
	if !ok {
		return code
	}
	defer closeApp(a)
	out := &stepPrinter{out: env.Out, width: 7}
	passed, found := a.Diagnose(ctx, pos[0], func(s string) { fmt.Fprintln(env.Out, s) }, out.step, out.hint)
	switch {
	case !found:
		fmt.Fprintf(env.Err, "mailgate: doctor: no mailbox, sender, proxy account or profile %q in %s\n", pos[0], a.Config().File)
		return ExitUsage
	case !passed:
		return ExitFailed
	}
	fmt.Fprintln(env.Out, "no problem found")
	return ExitOK
}
