package e2e

import (
	"path/filepath"
	"testing"

	"github.com/mailgate/mailgate/internal/agent"
	"github.com/mailgate/mailgate/internal/app"
	"github.com/mailgate/mailgate/internal/dovecot"
	"github.com/mailgate/mailgate/internal/emulator"
	"github.com/mailgate/mailgate/internal/mailbox"
	"github.com/mailgate/mailgate/internal/oauth"
	"github.com/mailgate/mailgate/internal/sink"
)

// TestPOP3AgentAgainstDovecot: the POP3 path with POP3S and STLS, XOAUTH2
// and OAUTHBEARER; delete verified on the server; a second run delivers
// nothing.
func TestPOP3AgentAgainstDovecot(t *testing.T) {
	emu := emu(t)
	dv := dovecot.StartT(t, dovecot.Options{CheckURL: emu.HTTPURL()})
	mgr := oauth.NewManager(oauth.NewMemoryStore(), nil)
	p := profile(t, emu, "exo")
	tests := []struct {
		addr, after, proto, security, mech string
		n                                  int
	}{
		{emulator.DemoSharedMailbox, "delete", "pop3s", "tls", "xoauth2", 1000},
		{emulator.DemoInvoicesMailbox, "keep", "pop3", "starttls", "oauthbearer", 1000},
		{emulator.DemoSenderMailbox, "seen", "pop3s", "tls", "oauthbearer", 1000},
	}
	for _, tt := range tests {
		t.Run(tt.after+"-"+tt.proto, func(t *testing.T) {
			if err := dv.Seed(tt.addr, tt.n, 5000); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			st := sqliteStore(t, dir)
			md, err := sink.NewMaildir(sink.MaildirOptions{Path: filepath.Join(dir, "inbox")})
			if err != nil {
				t.Fatal(err)
			}
			after, _ := mailbox.ParseAfter(tt.after)
			mb := &agent.Mailbox{Name: "mb", Sink: md, After: after, BatchSize: 100,
				Dialer: mailbox.NewPOP3(mailbox.POP3Options{Name: "mb", Addr: dv.Addr(tt.proto), Security: tt.security,
					TLSConfig: dv.TLSConfig(), Username: tt.addr, Mechanism: tt.mech,
					Bearer: mgr.Bearer(p, nil)})}
			stats, err := agent.RunOnce(t.Context(), mb, app.AgentLedger(st), nil, nil)
			if err != nil || stats.Delivered != tt.n {
				t.Fatalf("%+v %v\n%s", stats, err, dv.Log())
			}
			maildirHolds(t, filepath.Join(dir, "inbox"), seeded(tt.addr, tt.n, 5000))
			left, _ := dv.Messages(tt.addr, "")
			if tt.after == "delete" && len(left) != 0 || tt.after != "delete" && len(left) != tt.n {
				t.Fatalf("%d messages left on the server after %s", len(left), tt.after)
			}
			stats, err = agent.RunOnce(t.Context(), mb, app.AgentLedger(st), nil, nil)
			if err != nil || stats.Delivered != 0 || stats.Duplicates != 0 {
				t.Fatalf("second run: %+v %v", stats, err)
			}
		})
	}
}
