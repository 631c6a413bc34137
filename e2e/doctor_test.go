package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mailgate/mailgate/internal/emulator"
)

// TestDoctor: `mailgate doctor` reads the token a profile gets and compares
// its audience and permissions with what each mailbox and sender needs,
// then runs the Test steps; each problem comes with the change to make in
// Entra ID, Exchange or the config, IDs filled in.
func TestDoctor(t *testing.T) {
	srv, dir := emulatorConfig(t, "")
	host, port, _ := strings.Cut(srv.IMAPAddr(), ":")
	imapBox := func(name, user, profile string) string {
		return fmt.Sprintf("  - {name: %s, protocol: imap, host: %s, port: %s, security: tls, tls_ca: '%s', username: %s, profile: %s, sink: out}\n",
			name, host, port, srv.CAFile(), user, profile)
	}
	appendConfig(t, dir, "mailboxes:\n"+imapBox("forms", emulator.DemoSharedMailbox, "emulator-cert")+
		imapBox("wrongscope", emulator.DemoSharedMailbox, "emulator-graph")+imapBox("ceo", emulator.DemoRestrictedMailbox, "emulator-cert")+
		"sinks:\n  - {name: out, type: maildir, path: ./inbox}\n"+
		fmt.Sprintf("senders:\n  - {name: g, protocol: graph, endpoint: '%s', username: %s, profile: emulator-graph}\n", srv.URL(), emulator.DemoSenderMailbox))
	tests := []struct {
		name string
		code int
		want []string
	}{
		{"forms", 0, []string{"✓ expiry", "certificate expires", "✓ claims  for https://outlook.office365.com, app " + emulator.DemoAppID,
			"✓ needs   mailbox forms (imap): the token carries what it needs", "✓ auth", "✓ select", "no problem found"}},
		{"wrongscope", 1, []string{"✗ needs   the token is for https://graph.microsoft.com, but mailbox wrongscope (imap) needs Office 365 Exchange Online",
			"fix: give mailbox wrongscope (imap) its own profile (a token is for one API) with scopes: [https://outlook.office365.com/.default]"}},
		{"ceo", 1, []string{"✓ needs", "✗ auth", "New-ServicePrincipal -AppId " + emulator.DemoAppID, "Add-MailboxPermission -Identity " + emulator.DemoRestrictedMailbox}},
		{"g", 0, []string{"✓ needs   sender g (graph): the token carries what it needs", "✓ graph"}},
		{"emulator-secret", 0, []string{"doctor: profile emulator-secret (0 mailboxes and senders use it)", "✓ expiry  the client secret expires", "no problem found"}},
		{"emulator-graph", 1, []string{"doctor: profile emulator-graph (2 mailboxes and senders use it)",
			"✗ needs   the token is for https://graph.microsoft.com, but mailbox wrongscope (imap)", "✓ needs   sender g (graph)"}},
	}
	for _, tt := range tests {
		r := mailgate(t, t.Context(), dir, "doctor", tt.name)
		if r.code != tt.code {
			t.Errorf("doctor %s: exit %d, want %d\n%s%s", tt.name, r.code, tt.code, r.stdout, r.stderr)
		}
		for _, w := range tt.want {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("doctor %s lacks %q:\n%s%s", tt.name, w, r.stdout, r.stderr)
			}
		}
		if strings.Contains(r.stdout+r.stderr, "eyJ") {
			t.Errorf("doctor %s printed a token", tt.name)
		}
	}
	// the app loses IMAP.AccessAsApp: a new token no longer carries it
	if err := srv.Tenant().RevokeAppRoles(emulator.DemoAppID, "https://outlook.office365.com", "IMAP.AccessAsApp"); err != nil {
		t.Fatal(err)
	}
	// doctor asks for a new token: the cached one, which has the role, proves nothing
	r := mailgate(t, t.Context(), dir, "doctor", "forms")
	if r.code != 1 || !strings.Contains(r.stdout, "✗ needs   the app-only token lacks IMAP.AccessAsApp for mailbox forms (imap)") ||
		!strings.Contains(r.stdout, "App registrations › "+emulator.DemoAppID+" › API permissions › Add a permission › APIs my organization uses › Office 365 Exchange Online › Application permissions › IMAP.AccessAsApp") {
		t.Errorf("doctor forms without the role: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := mailgate(t, t.Context(), dir, "doctor", "nope"); r.code != 2 {
		t.Errorf("doctor nope: exit %d", r.code)
	}
}
