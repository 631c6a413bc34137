package app

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/testcert"
)

// TestListenerCertificate: doctor reports a listener certificate's
// expiry: fine, within 30 days (a warning, still passing), expired or
// unreadable (failing, with the fix).
func TestListenerCertificate(t *testing.T) {
	now := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		notAfter time.Time // zero: no certificate file
		ok       bool
		want     string
	}{
		{"valid", now.Add(90 * 24 * time.Hour), true, "its certificate expires on 2027-03-07"},
		{"soon", now.Add(10*24*time.Hour + time.Hour), true, "in 10 days: renew it before then"},
		{"expired", now.Add(-time.Hour), false, "expired on 2026-12-07"},
		{"missing", time.Time{}, false, "tls_cert/tls_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			l := &config.Listener{Name: "legacy-smtp", Security: "starttls", TLSCert: filepath.Join(dir, "none.crt"), TLSKey: filepath.Join(dir, "none.key")}
			if !tt.notAfter.IsZero() {
				c := testcert.Make(t, testcert.Options{Names: []string{"localhost"}, NotAfter: tt.notAfter})
				l.TLSCert, l.TLSKey = c.WriteFiles(t, dir, "l")
			}
			var steps, hints []string
			var failed bool
			got := listenerCertificate(l, now, func(ok bool, name, format string, args ...any) {
				failed = failed || !ok
				steps = append(steps, name+": "+fmt.Sprintf(format, args...))
			}, func(h string) { hints = append(hints, h) })
			if got != tt.ok || failed == tt.ok || len(steps) != 1 || !strings.Contains(steps[0], tt.want) || !strings.HasPrefix(steps[0], "cert: listener legacy-smtp") {
				t.Errorf("ok %v, steps %q; want ok %v and a step with %q", got, steps, tt.ok, tt.want)
			}
			if !tt.ok && (len(hints) != 1 || !strings.HasPrefix(hints[0], "fix: ")) {
				t.Errorf("hints %q, want a fix", hints)
			}
		})
	}
}

// TestAccountNeeds: an account needs, per listener it may use, what a
// mailbox (imap, pop3) or a sender (smtp) of its mailbox needs.
func TestAccountNeeds(t *testing.T) {
	cfg := &config.Config{Listeners: []config.Listener{{Name: "i", Protocol: "imap"}, {Name: "p", Protocol: "pop3"}, {Name: "s", Protocol: "smtp"}}}
	all := accountNeeds(cfg, &config.Account{Username: "scanner", Mailbox: "scan@contoso.com"})
	if len(all) != 3 || all[0].app[0] != "IMAP.AccessAsApp" || all[1].app[0] != "POP.AccessAsApp" || all[2].app[0] != "SMTP.SendAsApp" ||
		all[2].user != "scan@contoso.com" || all[2].what != "account scanner on listener s (smtp)" {
		t.Errorf("needs on every listener: %+v", all)
	}
	if some := accountNeeds(cfg, &config.Account{Username: "x", Mailbox: "x@contoso.com", Listeners: []string{"s"}}); len(some) != 1 || some[0].delegated[0] != "SMTP.Send" {
		t.Errorf("needs on its listener s: %+v", some)
	}
}
