package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/mailgate/mailgate/internal/web"
)

// consoleTest runs `mailgate test NAME`'s steps for the console's Test
// button and collects them; ok is false when no mailbox or profile has
// that name.
func (rt *runtimeT) consoleTest(ctx context.Context, kind, name string) (web.TestResult, bool) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	res := web.TestResult{Name: name}
	step := func(ok bool, n, format string, a ...any) {
		res.Steps = append(res.Steps, web.Step{OK: ok, Name: n, Detail: fmt.Sprintf(format, a...)})
	}
	hint := func(s string) {
		if len(res.Steps) > 0 {
			last := &res.Steps[len(res.Steps)-1]
			last.Hints = append(last.Hints, s)
		}
	}
	if m, ok := rt.cfg.Mailbox(name); ok && kind == "mailboxes" {
		res.Kind = "mailbox"
		res.OK = testMailbox(ctx, rt, m, step, hint)
		return res, true
	}
	if k, ok := rt.cfg.Sink(name); ok && kind == "sinks" {
		res.Kind = "sink"
		res.OK = testSink(ctx, rt, k, step, hint)
		return res, true
	}
	if snd, ok := rt.cfg.Sender(name); ok && kind == "senders" {
		res.Kind = "sender"
		res.OK = testSender(ctx, rt, snd, step, hint)
		return res, true
	}
	p, ok := rt.profiles[name]
	if !ok || kind != "profiles" {
		return res, false
	}
	res.Kind = "profile"
	t0 := time.Now()
	tok, err := rt.mgr.Token(ctx, p, nil)
	if err != nil {
		step(false, "token", "%v", err)
		// the explanation `mailgate test` prints, after its summary line
		var b strings.Builder
		printOAuthError(&b, "test", p, err)
		lines := strings.Split(strings.TrimSpace(b.String()), "\n")
		for _, l := range lines[1:] {
			hint(strings.TrimSpace(l))
		}
		return res, true
	}
	step(true, "token", "valid until %s (%s)", tok.Expiry.UTC().Format(time.RFC3339), time.Since(t0).Round(time.Millisecond))
	res.OK = true
	return res, true
}
