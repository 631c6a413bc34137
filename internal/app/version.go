package app

import "runtime/debug"

// Version and Commit are set at link time:
//
//	go build -ldflags "-X github.com/mailgate/mailgate/internal/app.Version=v1.2.3 -X github.com/mailgate/mailgate/internal/app.Commit=$(git rev-parse HEAD)"
//
// The VCS stamp Go records in the binary (go build -buildvcs=true in a git
// checkout) is preferred to Commit; scripts/mailgate sets Commit because
// -buildvcs may be off (GOFLAGS=-buildvcs=false). `mailgate version` prints
// them and /metrics has them as mailgate_build_info.
var (
	Version = "dev"
	Commit  = ""
)

// BuildCommit is the commit the running binary was built from (see
// commitOf).
func BuildCommit() string {
	var settings []debug.BuildSetting
	if info, ok := debug.ReadBuildInfo(); ok {
		settings = info.Settings
	}
	return commitOf(settings, Commit)
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
