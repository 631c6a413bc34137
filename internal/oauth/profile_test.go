package oauth

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func validProfile() Profile {
	return Profile{
		Name: "contoso", Tenant: "11111111-2222-3333-4444-555555555555", ClientID: "app",
		ClientSecret: "s", Scopes: []string{"https://outlook.office365.com/.default"},
	}
}

func TestProfileValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(p *Profile)
		want   []string // substrings of problems; none = valid
	}{
		{name: "defaults are microsoft client credentials", change: func(p *Profile) {}},
		{name: "no client id", change: func(p *Profile) { p.ClientID = "" }, want: []string{"client_id is required"}},
		{name: "no tenant", change: func(p *Profile) { p.Tenant = "" }, want: []string{"tenant is required"}},
		{name: "tenant as URL", change: func(p *Profile) { p.Tenant = "https://login.microsoftonline.com/x" }, want: []string{"not a URL"}},
		{name: "client credentials on common", change: func(p *Profile) { p.Tenant = "common" }, want: []string{"AADSTS9001023"}},
		{name: "password on consumers", change: func(p *Profile) {
			p.Tenant, p.Grant, p.Username, p.Password = "consumers", GrantPassword, "u", "pw"
		}, want: []string{"AADSTS9001023"}},
		{name: "delegated on organizations", change: func(p *Profile) {
			p.Tenant, p.Grant, p.ClientSecret = "organizations", GrantAuthorizationCode, ""
		}},
		{name: "no credential for client credentials", change: func(p *Profile) { p.ClientSecret = "" }, want: []string{"needs a client secret or a client certificate"}},
		{name: "secret and certificate", change: func(p *Profile) { p.Certificate = &ClientCertificate{} }, want: []string{"not both", "no certificate"}},
		{name: "password grant without password", change: func(p *Profile) { p.Grant = GrantPassword; p.Username = "u" }, want: []string{"needs a password"}},
		{name: "unknown grant and provider", change: func(p *Profile) { p.Grant = "implicit"; p.Provider = "yahoo" }, want: []string{"grant \"implicit\"", "provider \"yahoo\""}},
		{name: "generic without token url", change: func(p *Profile) { p.Provider = ProviderGeneric }, want: []string{"token_url is required"}},
		{name: "generic auth code without authorize url", change: func(p *Profile) {
			p.Provider, p.TokenURL, p.Grant = ProviderGeneric, "https://idp.example/token", GrantAuthorizationCode
		}, want: []string{"needs authorize_url"}},
		{name: "generic device without device url", change: func(p *Profile) {
			p.Provider, p.TokenURL, p.Grant = ProviderGeneric, "https://idp.example/token", GrantDeviceCode
		}, want: []string{"device authorization URL"}},
		{name: "plain http to a remote host", change: func(p *Profile) { p.Authority = "http://login.example.com" }, want: []string{"plain http"}},
		{name: "plain http to loopback is fine", change: func(p *Profile) { p.Authority = "http://127.0.0.1:8080" }},
		{name: "v1 on google", change: func(p *Profile) {
			p.Provider, p.EndpointVersion, p.Scopes = ProviderGoogle, "v1", []string{"https://mail.google.com/"}
		}, want: []string{"only for provider microsoft"}},
		{name: "v1 with two resources", change: func(p *Profile) {
			p.EndpointVersion = "v1"
			p.Scopes = []string{"https://outlook.office365.com/.default", "https://graph.microsoft.com/.default"}
		}, want: []string{"one resource"}},
		{name: "bad version", change: func(p *Profile) { p.EndpointVersion = "v3" }, want: []string{"not v1 or v2"}},
		{name: "basic with certificate", change: func(p *Profile) {
			p.ClientSecret = ""
			p.Certificate = testClientCertificate(t, "")
			p.AuthStyle = AuthStyleBasic
		}, want: []string{"auth_style basic"}},
		{name: "no scopes for microsoft", change: func(p *Profile) { p.Scopes = nil }, want: []string{"scopes are required"}},
		{name: "negative margin", change: func(p *Profile) { p.RefreshMargin = -1 }, want: []string{"negative"}},
		{name: "relative redirect", change: func(p *Profile) { p.RedirectURI = "/callback" }, want: []string{"not an absolute URL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := validProfile()
			tt.change(&p)
			err := p.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate() = %v, want *ValidationError", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, lacks %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "oauth: profile contoso: ") {
				t.Errorf("error not prefixed: %q", err)
			}
		})
	}
}

func TestProfileEndpoints(t *testing.T) {
	tests := []struct {
		name string
		p    Profile
		want Endpoints
	}{
		{
			name: "microsoft v2 default authority",
			p:    Profile{Tenant: "contoso.onmicrosoft.com"},
			want: Endpoints{
				Token:     "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token",
				Authorize: "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize",
				Device:    "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/devicecode",
			},
		},
		{
			name: "microsoft v1 sovereign cloud with trailing slash",
			p:    Profile{Tenant: "t1", Authority: "https://login.microsoftonline.us/", EndpointVersion: "V1"},
			want: Endpoints{
				Token:     "https://login.microsoftonline.us/t1/oauth2/token",
				Authorize: "https://login.microsoftonline.us/t1/oauth2/authorize",
				Device:    "https://login.microsoftonline.us/t1/oauth2/devicecode",
			},
		},
		{
			name: "microsoft with a token URL override",
			p:    Profile{Tenant: "t", TokenURL: "https://proxy.example/token"},
			want: Endpoints{
				Token:     "https://proxy.example/token",
				Authorize: "https://login.microsoftonline.com/t/oauth2/v2.0/authorize",
				Device:    "https://login.microsoftonline.com/t/oauth2/v2.0/devicecode",
			},
		},
		{
			name: "google",
			p:    Profile{Provider: ProviderGoogle},
			want: Endpoints{Token: "https://oauth2.googleapis.com/token", Authorize: "https://accounts.google.com/o/oauth2/v2/auth", Device: "https://oauth2.googleapis.com/device/code"},
		},
		{
			name: "generic",
			p:    Profile{Provider: ProviderGeneric, TokenURL: "https://idp/t", AuthorizeURL: "https://idp/a"},
			want: Endpoints{Token: "https://idp/t", Authorize: "https://idp/a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.p.Endpoints()
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Endpoints() = %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestEntraResource(t *testing.T) {
	tests := []struct {
		scopes  []string
		want    string
		wantErr bool
	}{
		{[]string{"https://outlook.office365.com/.default"}, "https://outlook.office365.com", false},
		{[]string{"https://outlook.office.com/IMAP.AccessAsUser.All", "https://outlook.office.com/SMTP.Send", "offline_access"}, "https://outlook.office.com", false},
		{[]string{"api://11111111-aaaa/.default"}, "api://11111111-aaaa", false},
		{[]string{"Mail.Read", "openid"}, "https://graph.microsoft.com", false},
		{[]string{"openid", "offline_access"}, "", true},
		{[]string{"https://outlook.office365.com/.default", "https://graph.microsoft.com/.default"}, "", true},
	}
	for _, tt := range tests {
		got, err := entraResource(tt.scopes)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("entraResource(%v) = %q, %v; want %q, err %v", tt.scopes, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestScopes(t *testing.T) {
	if got := normalizeScopes([]string{"b a", "a", "c"}); got != "a b c" {
		t.Errorf("normalizeScopes = %q", got)
	}
	if normalizeScopes([]string{"x y"}) != normalizeScopes([]string{"y", "x", "x"}) {
		t.Errorf("same scope set, different keys")
	}
	del := Profile{Grant: GrantDeviceCode}
	if got := del.requestScopes([]string{"https://outlook.office.com/IMAP.AccessAsUser.All"}); !slices.Equal(got, []string{"https://outlook.office.com/IMAP.AccessAsUser.All", "offline_access"}) {
		t.Errorf("delegated microsoft scopes %v", got)
	}
	app := Profile{}
	if got := app.requestScopes([]string{"https://outlook.office365.com/.default"}); !slices.Equal(got, []string{"https://outlook.office365.com/.default"}) {
		t.Errorf("app-only scopes %v", got)
	}
	g := Profile{Provider: ProviderGoogle, Grant: GrantAuthorizationCode}
	if got := g.requestScopes([]string{"https://mail.google.com/"}); !slices.Equal(got, []string{"https://mail.google.com/"}) {
		t.Errorf("google scopes %v (Google refuses offline_access)", got)
	}
}

func TestProfileWarnings(t *testing.T) {
	p := validProfile()
	p.Grant, p.Username, p.Password = GrantPassword, "u", "pw"
	if w := p.Warnings(); len(w) != 1 || !strings.Contains(w[0], "deprecated") || !strings.Contains(w[0], "MFA") {
		t.Errorf("password grant warnings %q", w)
	}
	p = validProfile()
	p.Scopes = []string{"https://outlook.office365.com/IMAP.AccessAsApp"}
	if w := p.Warnings(); len(w) != 1 || !strings.Contains(w[0], "/.default") {
		t.Errorf("scope warnings %q", w)
	}
	p = validProfile()
	if w := p.Warnings(); len(w) != 0 {
		t.Errorf("warnings for a good profile: %q", w)
	}
}
