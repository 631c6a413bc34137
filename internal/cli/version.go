package cli

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version and Commit are set at link time:
//
//	go build -ldflags "-X github.com/mailgate/mailgate/internal/cli.Version=v1.2.3"
//
// Without that, the VCS stamp Go records in the binary is used.
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
	commit, modified := Commit, false
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if commit == "" {
					commit = s.Value
				}
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if commit == "" {
		commit = "unknown"
	}
	if modified {
		commit += "+dirty"
	}
	fmt.Fprintf(env.Out, "mailgate %s\ncommit %s\n%s %s/%s\n", Version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return ExitOK
}
