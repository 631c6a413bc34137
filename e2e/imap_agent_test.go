package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailgate/mailgate/internal/agent"
	"github.com/mailgate/mailgate/internal/app"
	"github.com/mailgate/mailgate/internal/dovecot"
	"github.com/mailgate/mailgate/internal/emulator"
	"github.com/mailgate/mailgate/internal/mailbox"
	"github.com/mailgate/mailgate/internal/oauth"
	"github.com/mailgate/mailgate/internal/sink"
)

// TestIMAPAgentAgainstDovecot: messages seeded into a real Dovecot arrive
// in a maildir byte for byte, each once, with every "after" action verified
// on the server, for implicit TLS and STARTTLS, XOAUTH2 and OAUTHBEARER.
func TestIMAPAgentAgainstDovecot(t *testing.T) {
	emu := emu(t)
	dv := dovecot.StartT(t, dovecot.Options{CheckURL: emu.HTTPURL()})
	mgr := oauth.NewManager(oauth.NewMemoryStore(), nil)
	p := profile(t, emu, "exo")
	tests := []struct {
		after, proto, security, mech string
		n                            int
	}{
		{"seen", "imaps", "tls", "xoauth2", 1000},
		{"delete", "imap", "starttls", "oauthbearer", 1000},
		{"move:Processed", "imaps", "tls", "oauthbearer", 1000},
		{"keep", "imap", "starttls", "xoauth2", 1000},
	}
	for i, tt := range tests {
		t.Run(tt.after, func(t *testing.T) {
			addr := []string{emulator.DemoSharedMailbox, emulator.DemoInvoicesMailbox, emulator.DemoSenderMailbox, emulator.DemoUser}[i]
			if err := dv.Seed(addr, tt.n, 5000); err != nil {
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
				Bearer: mgr.Bearer(p, nil),
				Dialer: mailbox.NewIMAP(mailbox.IMAPOptions{Name: "mb", Addr: dv.Addr(tt.proto), Security: tt.security,
					TLSConfig: dv.TLSConfig(), Username: addr, Mechanism: tt.mech,
					Bearer: mgr.Bearer(p, nil)})}
			stats, err := agent.RunOnce(t.Context(), mb, app.AgentLedger(st), nil, nil)
			if err != nil {
				t.Fatalf("%v\n%s", err, dv.Log())
			}
			if stats.Delivered != tt.n || stats.Acked != tt.n {
				t.Fatalf("stats %+v", stats)
			}
			// byte-identical, each once
			maildirHolds(t, filepath.Join(dir, "inbox"), seeded(addr, tt.n, 5000))
			// the server side
			inbox, _ := dv.Messages(addr, "")
			switch after.Kind {
			case "seen":
				for name := range inbox {
					if !strings.Contains(name, ":2,") || !strings.Contains(name[strings.Index(name, ":2,"):], "S") {
						t.Fatalf("%s not \\Seen", name)
					}
				}
			case "delete":
				if len(inbox) != 0 {
					t.Fatalf("%d messages left after delete", len(inbox))
				}
			case "move":
				moved, _ := dv.Messages(addr, "Processed")
				if len(inbox) != 0 || len(moved) != tt.n {
					t.Fatalf("after move: %d in INBOX, %d in Processed", len(inbox), len(moved))
				}
			case "keep":
				for name, b := range inbox {
					if strings.Contains(name, ":2,") && strings.Contains(name[strings.Index(name, ":2,"):], "S") {
						t.Fatalf("%s marked \\Seen under keep", name)
					}
					_ = b
				}
				if len(inbox) != tt.n {
					t.Fatalf("%d in INBOX under keep", len(inbox))
				}
			}
			// a second run delivers nothing
			if err := dv.SeedMessage(addr, []byte("Message-ID: <late@x>\r\nSubject: late\r\n\r\nlate\r\n")); err != nil {
				t.Fatal(err)
			}
			stats, err = agent.RunOnce(t.Context(), mb, app.AgentLedger(st), nil, nil)
			if err != nil || stats.Delivered != 1 || stats.Duplicates != 0 {
				t.Fatalf("second run: %+v %v", stats, err)
			}
			b, _ := os.ReadDir(filepath.Join(dir, "inbox", "new"))
			if len(b) != tt.n+1 {
				t.Fatalf("%d files after the second run", len(b))
			}
		})
	}
}
