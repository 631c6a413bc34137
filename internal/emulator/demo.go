package emulator

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The demo tenant's fixed identities. They are public: the emulator is for
// tests, demos and trying a configuration offline.
const (
	DemoTenantID = "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b"
	DemoDomain   = "contoso.example"

	// DemoAppID is a confidential app ("mailgate demo") with a client
	// secret and a certificate, the Exchange application permissions
	// IMAP.AccessAsApp, POP.AccessAsApp and SMTP.SendAsApp and the Graph
	// application permissions Mail.ReadWrite and Mail.Send, admin consent
	// given, its service principal registered in Exchange and FullAccess on
	// DemoSharedMailbox, DemoInvoicesMailbox and DemoUser's mailbox — but
	// not on DemoRestrictedMailbox.
	DemoAppID       = "3e1f5a7c-2b4d-4c6e-8f9a-0b1c2d3e4f50"
	DemoAppSecret   = "Qk8~demo.Secret_Value-7xR2mN9pL4vT6wY1zA3"
	DemoAppSecretID = "b7c8d9e0-f1a2-4b3c-9d4e-5f6a7b8c9d0e"

	// DemoExpiredSecret is a second secret of DemoAppID that expired.
	DemoExpiredSecret = "Zx1~expired.Secret_Value-0aB2cD4eF6gH8iJ"

	// DemoPublicAppID is a public client ("mailgate desktop") for the
	// authorization-code, device-code and password grants, with the
	// loopback redirect URIs http://localhost and http://127.0.0.1 (any port)
	// registered and admin consent for IMAP.AccessAsUser.All,
	// POP.AccessAsUser.All and SMTP.Send. Graph permissions need the user's
	// consent (the consent page).
	DemoPublicAppID = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"

	// DemoUser signs in with DemoUserPassword.
	DemoUser         = "adele@contoso.example"
	DemoUserPassword = "Adele-Demo-Passw0rd"
	// DemoMFAUser needs MFA: ROPC fails with AADSTS50076; the sign-in page
	// asks for DemoMFACode.
	DemoMFAUser         = "megan@contoso.example"
	DemoMFAUserPassword = "Megan-Demo-Passw0rd"
	DemoMFACode         = "246810"
	// DemoDisabledUser's sign-in is blocked (AADSTS50057).
	DemoDisabledUser = "former@contoso.example"

	// DemoSharedMailbox is a shared mailbox DemoUser and DemoAppID have
	// FullAccess on.
	DemoSharedMailbox   = "forms@contoso.example"
	DemoInvoicesMailbox = "invoices@contoso.example"
	// DemoSenderMailbox is a shared mailbox for sending; DemoAppID has
	// FullAccess and SendAs on it.
	DemoSenderMailbox = "noreply@contoso.example"
	// DemoRestrictedMailbox exists but nobody was granted access to it.
	DemoRestrictedMailbox = "ceo@contoso.example"
)

// seedDemo builds the demo tenant and writes the demo credentials to Dir:
// client-secret.txt, app-cert.pem, app-key.pem, user-password.txt.
func (s *Server) seedDemo() error {
	t := s.tenant
	now := s.now()
	t.AddApp(App{ID: DemoAppID, Name: "mailgate demo", RedirectURIs: []string{"http://localhost", "http://127.0.0.1", "https://localhost:8025/oauth/callback"}})
	if err := t.AddSecret(DemoAppID, Secret{ID: DemoAppSecretID, Value: DemoAppSecret, Expires: now.AddDate(0, 6, 0)}); err != nil {
		return err
	}
	if err := t.AddSecret(DemoAppID, Secret{ID: newGUID(), Value: DemoExpiredSecret, Expires: now.AddDate(0, 0, -3)}); err != nil {
		return err
	}
	key, err := loadOrCreateRSA(filepath.Join(s.dir, "app-key.pem"), 2048)
	if err != nil {
		return fmt.Errorf("emulator: demo app key: %w", err)
	}
	certPath := filepath.Join(s.dir, "app-cert.pem")
	var cert *x509.Certificate
	if data, err := os.ReadFile(certPath); err == nil {
		if b, _ := pem.Decode(data); b != nil {
			if c, err := x509.ParseCertificate(b.Bytes); err == nil && c.PublicKey != nil && time.Now().Before(c.NotAfter) {
				if pk, ok := c.PublicKey.(interface{ Equal(any) bool }); ok && pk.Equal(&key.PublicKey) {
					cert = c
				}
			}
		}
	}
	if cert == nil {
		der, err := selfSigned(key, "mailgate-demo", 365)
		if err != nil {
			return fmt.Errorf("emulator: demo app certificate: %w", err)
		}
		if cert, err = x509.ParseCertificate(der); err != nil {
			return err
		}
		if err := writeFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
			return fmt.Errorf("emulator: %w", err)
		}
	}
	if err := t.AddCertificate(DemoAppID, cert); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(s.dir, "client-secret.txt"), []byte(DemoAppSecret+"\n"), 0o600); err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	if err := writeFile(filepath.Join(s.dir, "user-password.txt"), []byte(DemoUserPassword+"\n"), 0o600); err != nil {
		return fmt.Errorf("emulator: %w", err)
	}

	t.AddApp(App{ID: DemoPublicAppID, Name: "mailgate desktop", Public: true,
		RedirectURIs: []string{"http://localhost", "http://127.0.0.1", "http://localhost/oauth/callback", "http://127.0.0.1/oauth/callback",
			"https://login.microsoftonline.com/common/oauth2/nativeclient"}})

	t.AddUser(User{UPN: DemoUser, Name: "Adele Vance", Password: DemoUserPassword})
	t.AddUser(User{UPN: DemoMFAUser, Name: "Megan Bowen", Password: DemoMFAUserPassword, MFA: true, MFACode: DemoMFACode})
	t.AddUser(User{UPN: DemoDisabledUser, Name: "Former Employee", Password: "Former-Passw0rd", Disabled: true})
	t.AddUser(User{UPN: DemoRestrictedMailbox, Name: "Chief Executive", Password: newGUID()})
	for _, mb := range []string{DemoSharedMailbox, DemoInvoicesMailbox, DemoSenderMailbox} {
		t.AddSharedMailbox(mb)
	}

	steps := []error{
		t.GrantAppRoles(DemoAppID, "https://outlook.office365.com", "IMAP.AccessAsApp", "POP.AccessAsApp", "SMTP.SendAsApp"),
		t.GrantAppRoles(DemoAppID, "https://graph.microsoft.com", "Mail.ReadWrite", "Mail.Send"),
		t.GrantDelegatedConsent(DemoPublicAppID, "", "https://outlook.office.com/IMAP.AccessAsUser.All",
			"https://outlook.office.com/POP.AccessAsUser.All", "https://outlook.office.com/SMTP.Send", "User.Read"),
		t.GrantDelegatedConsent(DemoAppID, "", "User.Read"),
	}
	if _, err := t.RegisterServicePrincipal(DemoAppID); err != nil {
		return err
	}
	for _, mb := range []string{DemoSharedMailbox, DemoInvoicesMailbox, DemoSenderMailbox, DemoUser} {
		steps = append(steps, t.AddMailboxPermission(mb, DemoAppID, "FullAccess"))
	}
	steps = append(steps,
		t.AddMailboxPermission(DemoSenderMailbox, DemoAppID, "SendAs"),
		t.AddMailboxPermission(DemoSharedMailbox, DemoUser, "FullAccess"),
		t.AddMailboxPermission(DemoSharedMailbox, DemoUser, "SendAs"),
	)
	for _, err := range steps {
		if err != nil {
			return fmt.Errorf("emulator: demo tenant: %w", err)
		}
	}
	return nil
}

// AddDemoMailboxes adds n shared mailboxes box00000@contoso.example… on
// which DemoAppID has FullAccess (for tests and benchmarks of many
// mailboxes) and returns their addresses.
func (s *Server) AddDemoMailboxes(n int) ([]string, error) {
	_, domain, _ := strings.Cut(DemoSharedMailbox, "@")
	out := make([]string, n)
	for i := range n {
		out[i] = fmt.Sprintf("box%05d@%s", i, domain)
		s.tenant.AddSharedMailbox(out[i])
		if err := s.tenant.AddMailboxPermission(out[i], DemoAppID, "FullAccess"); err != nil {
			return nil, err
		}
	}
	return out, nil
}
