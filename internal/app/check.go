package app

import (
	"fmt"
	"strings"

	"github.com/mailgate/mailgate/internal/config"
)

// ConfigWarnings builds every profile of cfg as the token engine would
// and returns what it warns about, as "file:line: key: warning" lines
// (mailgate token says the same). The error is a profile that does not
// build.
func ConfigWarnings(cfg *config.Config) ([]string, error) {
	var out []string
	for i := range cfg.Profiles {
		p, err := Profile(&cfg.Profiles[i], i)
		if err != nil {
			return nil, err
		}
		for _, w := range p.Warnings() {
			out = append(out, cfg.Warning("profiles["+p.Name+"]", w).String())
		}
	}
	return out, nil
}

// Summary says what cfg holds: "1 profile, 2 mailboxes (1 enabled),
// 1 sink, 0 senders", then the legacy-client proxy's listeners and
// accounts when it has any.
func Summary(cfg *config.Config) string {
	enabled := 0
	for _, m := range cfg.Mailboxes {
		if m.Enabled {
			enabled++
		}
	}
	s := fmt.Sprintf("%s, %s (%d enabled), %s, %s", Plural(len(cfg.Profiles), "profile"),
		Plural(len(cfg.Mailboxes), "mailbox"), enabled, Plural(len(cfg.Sinks), "sink"), Plural(len(cfg.Senders), "sender"))
	if len(cfg.Listeners) > 0 || len(cfg.Accounts) > 0 {
		s += fmt.Sprintf(", %s, %s", Plural(len(cfg.Listeners), "listener"), Plural(len(cfg.Accounts), "account"))
	}
	return s
}

// Plural is "1 word" or "n words".
func Plural(n int, word string) string {
	switch {
	case n == 1:
		return "1 " + word
	case strings.HasSuffix(word, "s") || strings.HasSuffix(word, "x"):
		return fmt.Sprintf("%d %ses", n, word) // addresses, mailboxes
	}
	return fmt.Sprintf("%d %ss", n, word)
}
