package app

import (
	"reflect"
	"strings"
	"testing"

	"github.com/mailgate/mailgate/internal/config"
)

const unitConfig = `profiles:
  - {name: p, provider: microsoft, grant: client_credentials, tenant: t.example, client_id: aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee, client_secret: s1}
  - {name: q, provider: microsoft, grant: client_credentials, tenant: t.example, client_id: aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee, client_secret: s1}
mailboxes:
  - {name: a, protocol: imap, host: imap.example, username: a@t.example, profile: p, sink: x, mode: idle}
  - {name: b, protocol: imap, host: imap.example, username: b@t.example, profile: q, sink: y}
sinks:
  - {name: x, type: maildir, path: ./x}
  - {name: y, type: maildir, path: ./y}
`

// TestUnitKey: a reload keeps a mailbox's agent only when its own keys,
// its profile's (secrets included) and its sink's are unchanged.
func TestUnitKey(t *testing.T) {
	dir := t.TempDir() // relative paths resolve the same in both
	parse := func(src string) *config.Config {
		t.Helper()
		cfg, err := config.ParseWith([]byte(src), dir+"/mailgate.yaml", func(string) string { return "" }, nil)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	before := parse(unitConfig)
	tests := []struct {
		name         string
		old, new     string
		sameA, sameB bool
	}{
		{"nothing", "", "", true, true},
		{"b's interval", "sink: y}", "sink: y, interval: 2m}", true, false},
		{"q's secret", "client_secret: s1}\nmailboxes", "client_secret: s2}\nmailboxes", true, false},
		{"p's secret", "client_secret: s1}\n  - {name: q", "client_secret: s2}\n  - {name: q", false, true},
		{"x's path", "path: ./x}", "path: ./x2}", false, true},
		{"a's mode", "mode: idle}", "mode: poll}", false, true},
	}
	for _, tc := range tests {
		if !strings.Contains(unitConfig, tc.old) {
			t.Fatalf("%s: %q not in the config", tc.name, tc.old)
		}
		after := parse(strings.Replace(unitConfig, tc.old, tc.new, 1))
		for i, want := range []bool{tc.sameA, tc.sameB} {
			m0, m1 := &before.Mailboxes[i], &after.Mailboxes[i]
			if got := reflect.DeepEqual(unitKey(before, m0), unitKey(after, m1)); got != want {
				t.Errorf("%s: mailbox %s unchanged = %v, want %v", tc.name, m0.Name, got, want)
			}
		}
	}
}
