package oauth_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/mailgate/mailgate/internal/oauth"
)

// App-only access to Exchange Online IMAP with a client secret, through the
// cache. A second process with the same Store would reuse the token.
func ExampleManager_Token() {
	ctx := context.Background()
	client, err := oauth.NewHTTPClient(oauth.HTTPOptions{}) // HTTPS_PROXY etc. from the environment
	if err != nil {
		log.Fatal(err)
	}
	p := &oauth.Profile{
		Name:         "contoso",
		Tenant:       "contoso.onmicrosoft.com",
		ClientID:     "00001111-aaaa-2222-bbbb-3333cccc4444",
		ClientSecret: os.Getenv("CONTOSO_SECRET"),
		Scopes:       []string{"https://outlook.office365.com/.default"},
		HTTPClient:   client,
	}
	if err := p.Validate(); err != nil {
		log.Fatal(err)
	}
	m := oauth.NewManager(oauth.NewMemoryStore(), nil)
	tok, err := m.Token(ctx, p, nil)
	if err != nil {
		// e.g. "the client secret is wrong; usually the secret's ID was
		// pasted instead of its value. Entra admin center › ..."
		log.Fatal(err, "\n", oauth.ExplainFor(err, p))
	}
	fmt.Println(tok.AccessToken)
}

// A delegated profile signs in once on a machine without a browser; later
// Token calls redeem the stored (and rotated) refresh token.
func ExampleManager_DeviceLogin() {
	ctx := context.Background()
	p := &oauth.Profile{
		Name:     "alice",
		Grant:    oauth.GrantDeviceCode,
		Tenant:   "contoso.onmicrosoft.com",
		ClientID: "00001111-aaaa-2222-bbbb-3333cccc4444",
		Scopes:   []string{"https://outlook.office.com/IMAP.AccessAsUser.All"},
	}
	m := oauth.NewManager(oauth.NewMemoryStore(), nil)
	_, err := m.DeviceLogin(ctx, p, func(a oauth.DeviceAuth) {
		fmt.Fprintf(os.Stderr, "Open %s and enter %s\n", a.VerificationURI, a.UserCode)
	})
	if err != nil {
		log.Fatal(err)
	}
	tok, err := m.Token(ctx, p, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.Expiry)
}

// The thumbprints to compare with the Azure portal after uploading a new
// certificate.
func ExampleThumbprints() {
	certPEM, keyPEM, err := oauth.NewSelfSignedCertificate("mailgate contoso", 0, 365)
	if err != nil {
		log.Fatal(err)
	}
	cc, err := oauth.LoadClientCertificate(certPEM, keyPEM, oauth.AlgPS256)
	if err != nil {
		log.Fatal(err)
	}
	tp := oauth.Thumbprints(cc.Cert)
	fmt.Println("thumbprint:", tp.SHA1, "x5t:", tp.X5T, "x5t#S256:", tp.X5TS256)
}
