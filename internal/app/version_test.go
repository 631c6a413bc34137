package app

import (
	"runtime/debug"
	"testing"
)

// TestCommitOf: the commit comes from the VCS stamp Go records (with
// +dirty for a modified tree), else from the linker flag scripts/mailgate
// sets, else "unknown".
func TestCommitOf(t *testing.T) {
	stamp := func(rev, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	tests := []struct {
		name     string
		settings []debug.BuildSetting
		ldflags  string
		want     string
	}{
		{"build info", stamp("abc123", "false"), "", "abc123"},
		{"build info dirty", stamp("abc123", "true"), "", "abc123+dirty"},
		{"build info wins over ldflags", stamp("abc123", "false"), "def456", "abc123"},
		{"ldflags (built with -buildvcs=false)", nil, "def456", "def456"},
		{"ldflags dirty", nil, "def456+dirty", "def456+dirty"},
		{"neither (outside a git checkout)", nil, "", "unknown"},
	}
	for _, tt := range tests {
		if got := commitOf(tt.settings, tt.ldflags); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}
