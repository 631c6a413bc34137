package cli

import (
	"context"
	"fmt"
	"runtime"

	"github.com/mailgate/mailgate/internal/app"
)

func init() {
	register(&command{name: "version", summary: "print version, commit and Go version", run: runVersion})
}

// runVersion prints app.Version and app.BuildCommit (set at link time or
// from Go's VCS stamp; see internal/app/version.go).
func runVersion(_ context.Context, env *Env, args []string) int {
	fs := newFlagSet(env, "version", "")
	if _, code, ok := parseFlags(fs, args); !ok {
		return code
	}
	fmt.Fprintf(env.Out, "mailgate %s\ncommit %s\n%s %s/%s\n", app.Version, app.BuildCommit(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return ExitOK
}
