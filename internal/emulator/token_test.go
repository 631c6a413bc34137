package emulator

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestClientCredentialsSecret(t *testing.T) {
	srv := start(t)
	tests := []struct {
		name, scope, wantAud string
		wantRoles            []string
		basic                bool
	}{
		{"exchange form", "https://outlook.office365.com/.default", "https://outlook.office365.com",
			[]string{"IMAP.AccessAsApp", "POP.AccessAsApp", "SMTP.SendAsApp"}, false},
		{"graph basic auth", "https://graph.microsoft.com/.default", "https://graph.microsoft.com",
			[]string{"Mail.ReadWrite", "Mail.Send"}, true},
		{"msal adds oidc scopes", "https://outlook.office365.com/.default openid offline_access profile", "https://outlook.office365.com",
			[]string{"IMAP.AccessAsApp", "POP.AccessAsApp", "SMTP.SendAsApp"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := ccForm(tt.scope)
			var edit []func(*http.Request)
			if tt.basic {
				form.Del("client_id")
				form.Del("client_secret")
				// RFC 6749 §2.3.1: both parts form-urlencoded before Basic.
				edit = append(edit, func(r *http.Request) {
					r.SetBasicAuth(url.QueryEscape(DemoAppID), url.QueryEscape(DemoAppSecret))
				})
			}
			a := post(t, srv, tokenURL(srv, false), form, edit...)
			if a.status != 200 {
				t.Fatalf("status %d: %s", a.status, a.raw)
			}
			if a.str("token_type") != "Bearer" || a.json["refresh_token"] != nil || a.json["id_token"] != nil {
				t.Errorf("unexpected fields: %s", a.raw)
			}
			exp, ok := a.json["expires_in"].(float64)
			if !ok || exp < 3599 || exp > 5399 {
				t.Errorf("expires_in = %v, want a number in 3599..5399", a.json["expires_in"])
			}
			if a.json["ext_expires_in"] == nil {
				t.Error("no ext_expires_in")
			}
			c, err := srv.VerifyAccessToken(a.str("access_token"))
			if err != nil {
				t.Fatal(err)
			}
			if c.Aud != tt.wantAud || c.Idtyp != "app" || c.AppID != DemoAppID || c.Tid != DemoTenantID ||
				c.Ver != "1.0" || c.Iss != "https://sts.windows.net/"+DemoTenantID+"/" || c.AppIDACR != "1" {
				t.Errorf("claims %+v", c)
			}
			if !slices.Equal(c.Roles, tt.wantRoles) {
				t.Errorf("roles %v, want %v", c.Roles, tt.wantRoles)
			}
			if got := c.Exp.Sub(time.Now()); got < time.Duration(exp-5)*time.Second || got > time.Duration(exp+5)*time.Second {
				t.Errorf("exp %v does not match expires_in %v", c.Exp, exp)
			}
		})
	}
}

func TestTokenErrors(t *testing.T) {
	srv := start(t)
	v2 := "/" + DemoTenantID + "/oauth2/v2.0/token"
	cc := func(edit func(url.Values)) url.Values {
		f := ccForm("https://outlook.office365.com/.default")
		edit(f)
		return f
	}
	pub := func(grant string, edit func(url.Values)) url.Values {
		f := url.Values{"grant_type": {grant}, "client_id": {DemoPublicAppID}, "scope": {"https://outlook.office.com/IMAP.AccessAsUser.All offline_access"},
			"username": {DemoUser}, "password": {DemoUserPassword}}
		edit(f)
		return f
	}
	tests := []struct {
		name    string
		path    string
		form    url.Values
		status  int
		errCode string
		aadsts  int
	}{
		{"secret id instead of value", v2, cc(func(f url.Values) { f.Set("client_secret", DemoAppSecretID) }), 401, "invalid_client", 7000215},
		{"expired secret", v2, cc(func(f url.Values) { f.Set("client_secret", DemoExpiredSecret) }), 401, "invalid_client", 7000222},
		{"unknown app", v2, cc(func(f url.Values) { f.Set("client_id", "11111111-2222-3333-4444-555555555555") }), 400, "unauthorized_client", 700016},
		{"unknown tenant", "/00000000-1111-2222-3333-444444444444/oauth2/v2.0/token", cc(func(url.Values) {}), 400, "invalid_request", 90002},
		{"only oidc scopes", v2, cc(func(f url.Values) { f.Set("scope", "openid offline_access profile") }), 400, "invalid_scope", 1002012},
		{"no .default", v2, cc(func(f url.Values) { f.Set("scope", "https://outlook.office.com/IMAP.AccessAsUser.All") }), 400, "invalid_scope", 1002012},
		{"two resources", v2, cc(func(f url.Values) {
			f.Set("scope", "https://outlook.office365.com/.default https://graph.microsoft.com/.default")
		}), 400, "invalid_scope", 28000},
		{"unknown resource", v2, cc(func(f url.Values) { f.Set("scope", "https://nothing.example/.default") }), 400, "invalid_resource", 500011},
		{"resource on v2", v2, cc(func(f url.Values) { f.Set("resource", "https://outlook.office365.com") }), 400, "invalid_request", 901002},
		{"missing scope", v2, cc(func(f url.Values) { f.Del("scope") }), 400, "invalid_request", 900144},
		{"missing grant", v2, cc(func(f url.Values) { f.Del("grant_type") }), 400, "invalid_request", 900144},
		{"unsupported grant", v2, cc(func(f url.Values) { f.Set("grant_type", "implicit") }), 400, "unsupported_grant_type", 70003},
		{"no credential", v2, cc(func(f url.Values) { f.Del("client_secret") }), 401, "invalid_client", 7000218},
		{"client credentials on common", "/common/oauth2/v2.0/token", cc(func(url.Values) {}), 400, "invalid_request", 9001023},
		{"public client with secret", v2, pub("password", func(f url.Values) { f.Set("client_secret", "x") }), 401, "invalid_client", 700025},
		{"bad password", v2, pub("password", func(f url.Values) { f.Set("password", "wrong") }), 400, "invalid_grant", 50126},
		{"mfa user", v2, pub("password", func(f url.Values) { f.Set("username", DemoMFAUser); f.Set("password", DemoMFAUserPassword) }), 400, "invalid_grant", 50076},
		{"unknown user", v2, pub("password", func(f url.Values) { f.Set("username", "nobody@contoso.example") }), 400, "invalid_grant", 50034},
		{"disabled user", v2, pub("password", func(f url.Values) { f.Set("username", DemoDisabledUser); f.Set("password", "Former-Passw0rd") }), 400, "invalid_grant", 50057},
		{"no consent", v2, pub("password", func(f url.Values) { f.Set("scope", "Mail.Read offline_access") }), 400, "invalid_grant", 65001},
		{"ropc on common", "/common/oauth2/v2.0/token", pub("password", func(url.Values) {}), 400, "invalid_request", 9001023},
		{"garbage refresh token", v2, pub("refresh_token", func(f url.Values) { f.Set("refresh_token", "garbage") }), 400, "invalid_grant", 70000},
		{"unknown code", v2, pub("authorization_code", func(f url.Values) { f.Set("code", "nope"); f.Set("redirect_uri", "http://localhost") }), 400, "invalid_grant", 70000},
		{"unknown device code", v2, pub(deviceCodeGrant, func(f url.Values) { f.Set("device_code", "nope") }), 400, "bad_verification_code", 70018},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			corr := newGUID()
			a := post(t, srv, srv.URL()+tt.path, tt.form, func(r *http.Request) { r.Header.Set("client-request-id", corr) })
			checkAADShape(t, a, tt.status, tt.errCode, tt.aadsts)
			if a.str("correlation_id") != corr {
				t.Errorf("correlation_id %q does not echo client-request-id %q", a.str("correlation_id"), corr)
			}
			switch tt.aadsts {
			case 65001:
				if a.str("suberror") != "consent_required" {
					t.Errorf("suberror = %q", a.str("suberror"))
				}
			case 50076:
				if a.str("suberror") != "basic_action" {
					t.Errorf("suberror = %q", a.str("suberror"))
				}
			case 7000215:
				if !strings.Contains(a.str("error_description"), "not the client secret ID") {
					t.Errorf("7000215 text: %q", a.str("error_description"))
				}
			}
		})
	}
}

func TestClientAssertion(t *testing.T) {
	srv := start(t)
	cert, key := demoKey(t, srv)
	aud := tokenURL(srv, false)
	now := time.Now()
	with := func(edit func(map[string]any)) map[string]any { c := assertionClaims(aud, now); edit(c); return c }
	tests := []struct {
		name   string
		spec   assertionSpec
		aadsts int // 0 = accepted
	}{
		{"PS256 x5t#S256 base64url", assertionSpec{alg: "PS256", thumb: "x5t#S256", claims: assertionClaims(aud, now)}, 0},
		{"PS256 x5t#S256 standard base64 (MSAL)", assertionSpec{alg: "PS256", thumb: "x5t#S256", std: true, claims: assertionClaims(aud, now)}, 0},
		{"RS256 x5t base64url", assertionSpec{alg: "RS256", thumb: "x5t", claims: assertionClaims(aud, now)}, 0},
		{"RS256 x5t standard base64", assertionSpec{alg: "RS256", thumb: "x5t", std: true, claims: assertionClaims(aud, now)}, 0},
		{"certificate not registered", assertionSpec{alg: "PS256", thumb: "x5t#S256", otherCert: true, claims: assertionClaims(aud, now)}, 700027},
		{"bad signature", assertionSpec{alg: "RS256", thumb: "x5t", tamper: true, claims: assertionClaims(aud, now)}, 700027},
		{"sub differs from iss", assertionSpec{alg: "PS256", thumb: "x5t#S256", claims: with(func(c map[string]any) { c["sub"] = "someone" })}, 50048},
		{"aud array", assertionSpec{alg: "PS256", thumb: "x5t#S256", claims: with(func(c map[string]any) { c["aud"] = []string{aud} })}, 50027},
		{"aud v1 token url", assertionSpec{alg: "PS256", thumb: "x5t#S256", claims: with(func(c map[string]any) { c["aud"] = tokenURL(srv, true) })}, 50027},
		{"aud other host", assertionSpec{alg: "PS256", thumb: "x5t#S256", claims: with(func(c map[string]any) {
			c["aud"] = "https://login.microsoftonline.com/" + DemoTenantID + "/oauth2/v2.0/token"
		})}, 50027},
		{"expired", assertionSpec{alg: "PS256", thumb: "x5t#S256", claims: with(func(c map[string]any) {
			c["nbf"] = now.Add(-time.Hour).Unix()
			c["exp"] = now.Add(-50 * time.Minute).Unix()
		})}, 700024},
		{"not yet valid", assertionSpec{alg: "PS256", thumb: "x5t#S256", claims: with(func(c map[string]any) {
			c["nbf"] = now.Add(time.Hour).Unix()
			c["exp"] = now.Add(70 * time.Minute).Unix()
		})}, 700024},
		{"within leeway", assertionSpec{alg: "PS256", thumb: "x5t#S256", claims: with(func(c map[string]any) {
			c["nbf"] = now.Add(-12 * time.Minute).Unix()
			c["exp"] = now.Add(-2 * time.Minute).Unix()
		})}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := url.Values{"grant_type": {"client_credentials"}, "client_id": {DemoAppID},
				"scope": {"https://outlook.office365.com/.default"}, "client_assertion_type": {jwtBearer},
				"client_assertion": {makeAssertion(t, cert, key, tt.spec)}}
			a := post(t, srv, tokenURL(srv, false), f)
			if tt.aadsts == 0 {
				if a.status != 200 {
					t.Fatalf("refused: %s", a.raw)
				}
				c, err := srv.VerifyAccessToken(a.str("access_token"))
				if err != nil || c.AppIDACR != "2" {
					t.Fatalf("claims %+v, %v", c, err)
				}
				return
			}
			checkAADShape(t, a, 401, "invalid_client", tt.aadsts)
			if tt.aadsts == 700024 && !strings.Contains(a.str("error_description"), "Current time: ") {
				t.Errorf("700024 text: %q", a.str("error_description"))
			}
		})
	}
	t.Run("wrong assertion type", func(t *testing.T) {
		f := url.Values{"grant_type": {"client_credentials"}, "client_id": {DemoAppID}, "scope": {"https://outlook.office365.com/.default"},
			"client_assertion": {makeAssertion(t, cert, key, assertionSpec{alg: "PS256", thumb: "x5t#S256", claims: assertionClaims(aud, now)})}}
		checkAADShape(t, post(t, srv, tokenURL(srv, false), f), 400, "invalid_request", 900144)
	})
}

func TestV1Endpoint(t *testing.T) {
	srv := start(t)
	f := url.Values{"grant_type": {"client_credentials"}, "client_id": {DemoAppID}, "client_secret": {DemoAppSecret},
		"resource": {"https://outlook.office365.com"}}
	a := post(t, srv, tokenURL(srv, true), f)
	if a.status != 200 {
		t.Fatalf("%d %s", a.status, a.raw)
	}
	for _, k := range []string{"expires_in", "ext_expires_in", "expires_on", "not_before"} {
		if _, ok := a.json[k].(string); !ok {
			t.Errorf("%s = %#v, want a string", k, a.json[k])
		}
	}
	if a.str("resource") != "https://outlook.office365.com" {
		t.Errorf("resource = %q", a.str("resource"))
	}
	if c, err := srv.VerifyAccessToken(a.str("access_token")); err != nil || c.Aud != "https://outlook.office365.com" {
		t.Errorf("claims %+v %v", c, err)
	}
	f.Del("resource")
	checkAADShape(t, post(t, srv, tokenURL(srv, true), f), 400, "invalid_request", 900144)
}

func TestFaults(t *testing.T) {
	srv := start(t)
	srv.InjectFault(Fault{Status: 429, RetryAfter: 7 * time.Second, PlainText: true, Count: 1, Route: "token"})
	a := post(t, srv, tokenURL(srv, false), ccForm("https://outlook.office365.com/.default"))
	if a.status != 429 || a.raw != "Too Many Requests" || a.header.Get("Retry-After") != "7" {
		t.Fatalf("429 fault: %d %q %q", a.status, a.raw, a.header.Get("Retry-After"))
	}
	if a := post(t, srv, tokenURL(srv, false), ccForm("https://outlook.office365.com/.default")); a.status != 200 {
		t.Fatalf("fault with Count 1 still active: %d", a.status)
	}
	srv.InjectFault(Fault{Status: 503, RetryAfter: time.Second})
	a = post(t, srv, tokenURL(srv, false), ccForm("https://outlook.office365.com/.default"))
	if a.status != 503 || a.str("error") != "temporarily_unavailable" || a.header.Get("Retry-After") != "1" {
		t.Fatalf("503 fault: %d %s", a.status, a.raw)
	}
	srv.ClearFaults()
	srv.InjectFault(Fault{Delay: 300 * time.Millisecond, Count: 1})
	t0 := time.Now()
	if a := post(t, srv, tokenURL(srv, false), ccForm("https://outlook.office365.com/.default")); a.status != 200 {
		t.Fatalf("delayed request failed: %d", a.status)
	}
	if d := time.Since(t0); d < 300*time.Millisecond {
		t.Errorf("delay fault answered after %v", d)
	}
	if got := srv.TokenRequests(); got != 4 {
		t.Errorf("TokenRequests = %d, want 4", got)
	}
}

func TestConcurrentRequests(t *testing.T) {
	srv := start(t)
	var wg sync.WaitGroup
	errs := make(chan string, 40)
	for range 40 {
		wg.Go(func() {
			a := post(t, srv, tokenURL(srv, false), ccForm("https://outlook.office365.com/.default"))
			if a.status != 200 {
				errs <- a.raw
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if got := srv.TokenRequests(); got != 40 {
		t.Errorf("TokenRequests = %d, want 40", got)
	}
}

func TestDotnetDuration(t *testing.T) {
	if got := dotnetDuration(90 * 24 * time.Hour); got != "90.00:00:00" {
		t.Errorf("got %q", got)
	}
	if got := dotnetDuration(26*time.Hour + 3*time.Minute + 4*time.Second); got != "1.02:03:04" {
		t.Errorf("got %q", got)
	}
}
