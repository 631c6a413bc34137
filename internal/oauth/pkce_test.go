package oauth

import (
	"net/url"
	"regexp"
	"testing"
)

func TestPKCEChallengeRFC7636(t *testing.T) {
	// RFC 7636 Appendix B.
	tests := []struct{ verifier, challenge string }{
		{"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"},
	}
	for _, tt := range tests {
		if got := challengeS256(tt.verifier); got != tt.challenge {
			t.Errorf("challengeS256(%q) = %q, want %q", tt.verifier, got, tt.challenge)
		}
	}
}

var verifierChars = regexp.MustCompile(`^[A-Za-z0-9\-._~]{43,128}$`)

func TestNewVerifier(t *testing.T) {
	seen := map[string]bool{}
	for range 50 {
		v, err := newVerifier()
		if err != nil {
			t.Fatal(err)
		}
		if !verifierChars.MatchString(v) {
			t.Fatalf("verifier %q breaks RFC 7636 §4.1", v)
		}
		if seen[v] {
			t.Fatalf("verifier %q repeated", v)
		}
		seen[v] = true
	}
}

func TestStartAuthorization(t *testing.T) {
	tests := []struct {
		name    string
		p       Profile
		want    map[string]string
		absent  []string
		baseURL string
	}{
		{
			name: "microsoft v2",
			p: Profile{Name: "u", Grant: GrantAuthorizationCode, Tenant: "contoso.example", ClientID: "pub",
				Scopes: []string{"https://outlook.office.com/IMAP.AccessAsUser.All"}, Username: "alice@contoso.example"},
			baseURL: "https://login.microsoftonline.com/contoso.example/oauth2/v2.0/authorize",
			want: map[string]string{
				"client_id": "pub", "response_type": "code", "redirect_uri": "http://localhost:8400/",
				"scope":                 "https://outlook.office.com/IMAP.AccessAsUser.All offline_access",
				"code_challenge_method": "S256", "response_mode": "query", "login_hint": "alice@contoso.example",
			},
			absent: []string{"access_type", "prompt", "resource"},
		},
		{
			name: "microsoft v1",
			p: Profile{Name: "u", Grant: GrantAuthorizationCode, Tenant: "t", ClientID: "pub", EndpointVersion: "v1",
				Scopes: []string{"https://outlook.office.com/IMAP.AccessAsUser.All"}},
			baseURL: "https://login.microsoftonline.com/t/oauth2/authorize",
			want:    map[string]string{"resource": "https://outlook.office.com"},
			absent:  []string{"scope"},
		},
		{
			name:    "google asks for offline access",
			p:       Profile{Name: "g", Provider: ProviderGoogle, Grant: GrantAuthorizationCode, ClientID: "gid", ClientSecret: "gs", Scopes: []string{"https://mail.google.com/"}},
			baseURL: "https://accounts.google.com/o/oauth2/v2/auth",
			want:    map[string]string{"access_type": "offline", "prompt": "consent", "scope": "https://mail.google.com/"},
			absent:  []string{"response_mode"},
		},
		{
			name: "generic keeps its query and scopes as given",
			p: Profile{Name: "x", Provider: ProviderGeneric, Grant: GrantAuthorizationCode, ClientID: "c",
				TokenURL: "https://idp.example/token", AuthorizeURL: "https://idp.example/auth?tenant=7", Scopes: []string{"mail"}},
			baseURL: "https://idp.example/auth",
			want:    map[string]string{"tenant": "7", "scope": "mail"},
			absent:  []string{"access_type", "response_mode"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := StartAuthorization(&tt.p, "http://localhost:8400/")
			if err != nil {
				t.Fatal(err)
			}
			u, err := url.Parse(a.URL)
			if err != nil {
				t.Fatal(err)
			}
			if base := u.Scheme + "://" + u.Host + u.Path; base != tt.baseURL {
				t.Errorf("URL base %s, want %s", base, tt.baseURL)
			}
			q := u.Query()
			for k, v := range tt.want {
				if q.Get(k) != v {
					t.Errorf("%s = %q, want %q", k, q.Get(k), v)
				}
			}
			for _, k := range tt.absent {
				if q.Has(k) {
					t.Errorf("%s present: %q", k, q.Get(k))
				}
			}
			if q.Get("state") != a.State || len(a.State) < 32 {
				t.Errorf("state %q vs %q", q.Get("state"), a.State)
			}
			if q.Get("code_challenge") != challengeS256(a.Verifier) {
				t.Errorf("challenge does not match the verifier")
			}
			if q.Has("code_verifier") {
				t.Errorf("the verifier leaked into the URL")
			}
		})
	}
}

func TestAuthorizationRequestCode(t *testing.T) {
	a := &AuthorizationRequest{State: "s123"}
	tests := []struct {
		name    string
		query   string
		code    string
		wantErr error
		errCode string
	}{
		{name: "ok", query: "code=abc&state=s123", code: "abc"},
		{name: "state mismatch", query: "code=abc&state=other", wantErr: ErrStateMismatch},
		{name: "no state", query: "code=abc", wantErr: ErrStateMismatch},
		{name: "error redirect", query: "error=access_denied&error_description=AADSTS65004%3A+User+declined+to+consent&state=s123", errCode: "access_denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, _ := url.ParseQuery(tt.query)
			code, err := a.Code(q)
			switch {
			case tt.wantErr != nil:
				if err != tt.wantErr {
					t.Fatalf("err %v", err)
				}
			case tt.errCode != "":
				oe, ok := err.(*Error)
				if !ok || oe.Code != tt.errCode || oe.Endpoint != "authorize" || oe.AADSTS() != 65004 {
					t.Fatalf("err %#v", err)
				}
			default:
				if err != nil || code != tt.code {
					t.Fatalf("code %q err %v", code, err)
				}
			}
		})
	}
}
