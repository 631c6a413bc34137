package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/app"
	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/oauth"
)

func TestOAuthProfileMapping(t *testing.T) {
	certPEM, keyPEM, err := oauth.NewSelfSignedCertificate("t", 2048, 10)
	if err != nil {
		t.Fatal(err)
	}
	path := writeConfig(t, `profiles:
  - name: full
    provider: microsoft
    grant: client_credentials
    tenant: contoso.example
    client_id: 11111111-2222-3333-4444-555555555555
    client_certificate: {cert: c.pem, key: k.pem, alg: RS256}
    scopes: [https://outlook.office365.com/.default]
    authority: https://login.microsoftonline.us
    endpoint_version: v1
    refresh_margin: 10m
    http_proxy: http://proxy.example:3128
  - name: user
    provider: generic
    grant: password
    client_id: app
    client_secret: s3cret
    token_url: https://idp.example/token
    username: u@example.com
    password: pw
    scopes: [mail]
`)
	dir := filepath.Dir(path)
	_ = os.WriteFile(filepath.Join(dir, "c.pem"), certPEM, 0o600)
	_ = os.WriteFile(filepath.Join(dir, "k.pem"), keyPEM, 0o600)
	cfg, err := config.Load(path, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	full, err := app.Profile(&cfg.Profiles[0], 0)
	if err != nil {
		t.Fatal(err)
	}
	if full.Certificate == nil || full.Certificate.Alg != "RS256" || full.Tenant != "contoso.example" || full.Authority != "https://login.microsoftonline.us" ||
		full.EndpointVersion != "v1" || full.RefreshMargin != 10*time.Minute || full.HTTPClient == nil || full.ClientSecret != "" {
		t.Errorf("full profile mapped to %+v", full)
	}
	user, err := app.Profile(&cfg.Profiles[1], 1)
	if err != nil {
		t.Fatal(err)
	}
	if user.Provider != "generic" || user.Grant != "password" || user.TokenURL != "https://idp.example/token" || user.ClientSecret != "s3cret" ||
		user.Username != "u@example.com" || user.Password != "pw" || len(user.Scopes) != 1 {
		t.Errorf("user profile mapped to %+v", user)
	}
	os.Remove(filepath.Join(dir, "k.pem"))
	if _, err := app.Profile(&cfg.Profiles[0], 0); err == nil || !strings.Contains(err.Error(), "profiles[full].client_certificate.key") {
		t.Errorf("missing key file: %v", err)
	}
}

func TestProfileWarnings(t *testing.T) {
	now := time.Date(2026, 11, 23, 15, 0, 0, 0, time.UTC)
	date := func(s string) config.Date { d, _ := time.Parse("2006-01-02", s); return config.Date{Time: d} }
	tests := []struct {
		p    config.Profile
		want string
	}{
		{config.Profile{Name: "a", Grant: "password"}, "profile a: the password grant (ROPC) is deprecated"},
		{config.Profile{Name: "e", Provider: "microsoft", Grant: "client_credentials", Scopes: []string{"Mail.Read"}}, "profile e: scope \"Mail.Read\": client_credentials needs a {resource}/.default scope"},
		{config.Profile{Name: "b", SecretExpires: date("2026-12-10")}, "expires on 2026-12-10 (in 17 days)"},
		{config.Profile{Name: "c", SecretExpires: date("2026-11-01")}, "expired on 2026-11-01"},
		{config.Profile{Name: "d", SecretExpires: date("2027-06-01")}, ""},
	}
	for _, tt := range tests {
		p := &oauth.Profile{Name: tt.p.Name, Provider: oauth.Provider(tt.p.Provider), Grant: oauth.Grant(tt.p.Grant), Scopes: tt.p.Scopes}
		got := strings.Join(app.ProfileWarnings(&tt.p, p, now), "\n")
		if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
			t.Errorf("%s: %q, want %q", tt.p.Name, got, tt.want)
		}
	}
}

func TestTokenAndLoginUsage(t *testing.T) {
	path := writeConfig(t, `profiles:
  - name: app
    provider: microsoft
    grant: client_credentials
    tenant: contoso.example
    client_id: 11111111-2222-3333-4444-555555555555
    client_secret: x
    scopes: [https://outlook.office365.com/.default]
`)
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"token"}, ExitUsage, "usage: mailgate token"},
		{[]string{"token", "nope", "--config", path}, ExitUsage, `no profile "nope" (known: app)`},
		{[]string{"login", "app", "--config", path}, ExitUsage, "no user signs in"},
		{[]string{"token", "app", "--config", filepath.Join(filepath.Dir(path), "missing.yaml")}, ExitUsage, "missing.yaml"},
	}
	for _, tt := range tests {
		code, out, errs := runCLI(t, tt.args...)
		if code != tt.code || out != "" || !strings.Contains(errs, tt.want) {
			t.Errorf("%v: exit %d stdout %q stderr %q", tt.args, code, out, errs)
		}
	}
}
