package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/mailgate/mailgate/internal/app"
)

// DefaultHealthURL is what healthcheck asks when --url is not given: serve's
// default listen address.
const DefaultHealthURL = "http://127.0.0.1:8025/healthz"

func init() {
	register(&command{name: "healthcheck", summary: "exit 0 if a running serve answers /healthz (for container healthchecks)", run: runHealthcheck})
}

// runHealthcheck GETs serve's /healthz and exits 0 on 200 OK, 1 otherwise.
// It exists for container images without a shell or curl (the Containerfile's
// HEALTHCHECK runs it), so it reads no config and opens no store.
func runHealthcheck(ctx context.Context, env *Env, args []string) int {
	fs := newFlagSet(env, "healthcheck", "")
	url := fs.String("url", DefaultHealthURL, "the /healthz URL of the serve to check")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this long")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		fs.Usage()
		return ExitUsage
	}
	if err := app.CheckHealth(ctx, *url, *timeout); err != nil {
		fmt.Fprintf(env.Err, "mailgate: healthcheck: %v\n", err)
		return ExitFailed
	}
	fmt.Fprintln(env.Out, "ok")
	return ExitOK
}
