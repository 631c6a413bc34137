package app

import (
	"context"
	"fmt"
	"time"

	"github.com/mailgate/mailgate/internal/web"
)

// consoleTest runs `mailgate test NAME`'s steps for the console's Test
// button on the record of kind (mailboxes, sinks, senders or profiles) and
// collects them; found is false when there is no such record.
func (rt *parts) consoleTest(ctx context.Context, kind, name string) (web.TestResult, bool) {
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
	what, ok, found := testRecord(ctx, rt, kind, name, step, hint)
	res.Kind, res.OK = what, ok
	return res, found
}
