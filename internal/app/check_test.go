package app

import (
	"testing"

	"github.com/mailgate/mailgate/internal/config"
)

// TestSummary: config check's summary counts the proxy's listeners and
// accounts when the file has any, and says nothing of them otherwise.
func TestSummary(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  config.Config
		want string
	}{
		{"no proxy", config.Config{Profiles: make([]config.Profile, 1), Sinks: make([]config.Sink, 2)},
			"1 profile, 0 mailboxes (0 enabled), 2 sinks, 0 senders"},
		{"proxy", config.Config{Profiles: make([]config.Profile, 1), Listeners: make([]config.Listener, 2), Accounts: make([]config.Account, 1)},
			"1 profile, 0 mailboxes (0 enabled), 0 sinks, 0 senders, 2 listeners, 1 account"},
	} {
		if got := Summary(&c.cfg); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
