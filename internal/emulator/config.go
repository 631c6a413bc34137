package emulator

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
)

// ConfigYAML returns a mailgate.yaml whose profiles point at this emulator
// (ProfilesYAML) and, when the Gmail IMAP service runs, a mailbox reading
// alice's Gmail through the service-account profile into the maildir
// ./gmail-inbox.
func (s *Server) ConfigYAML() []byte {
	b := s.ProfilesYAML()
	if mb := s.GmailMailboxYAML("workspace-alice", "alice@"+GoogleDomain, "gmail-inbox"); mb != "" {
		b = append(b, "\n# Alice's Gmail, read through the service account (one key for every user of\n"+
			"# the domain: copy the mailbox with another username for bob@"+GoogleDomain+").\nmailboxes:\n"+mb+
			"sinks:\n  - {name: gmail-inbox, type: maildir, path: ./gmail-inbox}\n"...)
	}
	return b
}

// GmailMailboxYAML is one item of a config's mailboxes list: user's Gmail
// on the Gmail IMAP service, read through the google-workspace profile (a
// token per user from the one service account key) into sink; "" when
// the Gmail IMAP service is off.
func (s *Server) GmailMailboxYAML(name, user, sink string) string {
	host, port, err := net.SplitHostPort(s.GmailIMAPAddr())
	if err != nil {
		return ""
	}
	return fmt.Sprintf(`  - name: %s
    protocol: imap
    host: %s
    port: %s
    security: tls
    tls_ca: '%s'
    sasl: xoauth2
    username: %s
    profile: google-workspace
    sink: %s
`, name, host, port, strings.ReplaceAll(s.CAFile(), "'", "''"), user, sink)
}

// ProfilesYAML is the start of a mailgate.yaml, up to and including the
// profiles that point at this emulator: client credentials with the demo
// secret and with the demo certificate, a Graph profile, the delegated
// grants with the public app, Google's service account and a Google user.
func (s *Server) ProfilesYAML() []byte {
	var b strings.Builder
	expires := ""
	s.tenant.mu.Lock()
	if app := s.tenant.apps[strings.ToLower(DemoAppID)]; app != nil {
		for _, sec := range app.secrets {
			if sec.ID == DemoAppSecretID && !sec.Expires.IsZero() {
				expires = sec.Expires.Format("2006-01-02")
			}
		}
	}
	s.tenant.mu.Unlock()
	q := func(v string) string { return "'" + strings.ReplaceAll(v, "'", "''") + "'" }
	fmt.Fprintf(&b, `# mailgate configuration for the Entra ID emulator at %[1]s
# (tenant %[2]s, domain %[3]s). Written by "mailgate emulator"; every
# credential here is the emulator's public demo credential.
store: sqlite:./mailgate.db

profiles:
  # App-only access with a client secret (the secret's value, not its ID).
  - name: emulator-secret
    provider: microsoft
    grant: client_credentials
    authority: %[1]s
    tls_ca: %[4]s
    tenant: %[2]s
    client_id: %[5]s
    client_secret: %[6]s
    secret_expires: %[7]s
    scopes: [https://outlook.office365.com/.default]

  # App-only access with a certificate (JWT client assertion).
  - name: emulator-cert
    provider: microsoft
    grant: client_credentials
    authority: %[1]s
    tls_ca: %[4]s
    tenant: %[2]s
    client_id: %[5]s
    client_certificate: {cert: %[8]s, key: %[9]s}
    scopes: [https://outlook.office365.com/.default]

  # Microsoft Graph, app-only.
  - name: emulator-graph
    provider: microsoft
    grant: client_credentials
    authority: %[1]s
    tls_ca: %[4]s
    tenant: %[2]s
    client_id: %[5]s
    client_secret: %[6]s
    scopes: [https://graph.microsoft.com/.default]

  # A user signs in in the browser ("mailgate login emulator-user"):
  # %[10]s, password in %[11]s.
  - name: emulator-user
    provider: microsoft
    grant: authorization_code
    authority: %[1]s
    tls_ca: %[4]s
    tenant: %[2]s
    client_id: %[12]s
    redirect_uri: http://localhost:8400/
    scopes: [https://outlook.office.com/IMAP.AccessAsUser.All, offline_access]

  # The same user on a device without a browser ("mailgate login emulator-device --device").
  - name: emulator-device
    provider: microsoft
    grant: device_code
    authority: %[1]s
    tls_ca: %[4]s
    tenant: %[2]s
    client_id: %[12]s
    scopes: [https://outlook.office.com/IMAP.AccessAsUser.All, offline_access]

  # Resource-owner password: deprecated by Microsoft, blocked by MFA; shown
  # because older integrations still use it.
  - name: emulator-password
    provider: microsoft
    grant: password
    authority: %[1]s
    tls_ca: %[4]s
    tenant: %[2]s
    client_id: %[12]s
    username: %[10]s
    password: %[13]s
    scopes: [https://outlook.office.com/IMAP.AccessAsUser.All, offline_access]

  # Google Workspace: a service account with domain-wide delegation acting
  # for each mailbox's user (%[15]s and others in %[14]s; %[16]s is
  # outside the delegation). The key's token_uri is the emulated Google.
  - name: google-workspace
    provider: google
    grant: service_account
    service_account_key: %[17]s
    tls_ca: %[4]s
    scopes: [https://mail.google.com/]

  # A Gmail user signs in ("mailgate login google-user --paste" prints the
  # URL; sign in as alice, bob or carol@%[14]s and paste the address
  # the browser lands on).
  - name: google-user
    provider: google
    grant: authorization_code
    token_url: %[18]s
    authorize_url: %[19]s
    tls_ca: %[4]s
    client_id: %[20]s
    client_secret: %[21]s
    redirect_uri: http://127.0.0.1:8401/
    scopes: [https://mail.google.com/]
`, s.URL(), DemoTenantID, DemoDomain, q(s.CAFile()), DemoAppID,
		q("file:"+filepath.Join(s.dir, "client-secret.txt")), expires,
		q(filepath.Join(s.dir, "app-cert.pem")), q(filepath.Join(s.dir, "app-key.pem")),
		DemoUser, filepath.Join(s.dir, "user-password.txt"), DemoPublicAppID,
		q("file:"+filepath.Join(s.dir, "user-password.txt")),
		GoogleDomain, "alice@"+GoogleDomain, GoogleOutsideUser, q("file:"+s.GoogleKeyFile()),
		s.GoogleTokenURL(), s.GoogleAuthorizeURL(), GoogleClientID, q("file:"+s.GoogleClientSecretFile()))
	return []byte(b.String())
}
