package cli

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version and Commit are set at link time:
//
//	go build -ldflags "-X github.com/mailgate/mailgate/internal/cli.Version=v1.2.3 -X github.com/mailgate/mailgate/internal/cli.Commit=$(git rev-parse HEAD)"
//
// The VCS stamp Go records in the binary (go build -buildvcs=true in a git
// checkout) is preferred to Commit; scripts/mailgate sets Commit because
// -buildvcs may be off (GOFLAGS=-buildvcs=false).
var (
	Version = "dev"
	Commit  = ""
)

func init() {
	register(&command{name: "version", summary: "print version, commit and Go version", run: runVersion})
}

func runVersion(_ context.Context, env *Env, args []string) int {
	fs := newFlagSet(env, "version", "")
	if _, code, ok := parseFlags(fs, args); !ok {
		return code
	}
	var settings []debug.BuildSetting
	if info, ok := debug.ReadBuildInfo(); ok {
		settings = info.Settings
	}
	fmt.Fprintf(env.Out, "mailgate %s\ncommit %s\n%s %s/%s\n", Version, commitOf(settings, Commit), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return ExitOK
}

// commitOf is the commit the binary was built from: the build info's
// vcs.revision ("+dirty" when vcs.modified), else the linker-set value,
// else "unknown".
func commitOf(settings []debug.BuildSetting, ldflags string) string {
	commit, modified := "", false
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			commit = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	switch {
	case commit != "" && modified:
		return commit + "+dirty"
	case commit != "":
		return commit
	case ldflags != "":
		return ldflags
	}
	return "unknown"
}
