package emulator

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

var reqField = regexp.MustCompile(`name="req" value="([^"]+)"`)

// browser drives the sign-in pages over plain HTTP.
type browser struct {
	t   *testing.T
	srv *Server
	c   *http.Client
}

func (b *browser) do(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (b *browser) get(u string) (*http.Response, string) {
	req, _ := http.NewRequestWithContext(b.t.Context(), http.MethodGet, u, nil)
	return b.do(req)
}

func (b *browser) submit(path string, form url.Values) (*http.Response, string) {
	req, _ := http.NewRequestWithContext(b.t.Context(), http.MethodPost, b.srv.URL()+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

func reqID(t *testing.T, page string) string {
	t.Helper()
	m := reqField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no req field in page:\n%s", page)
	}
	return m[1]
}

const (
	rfcVerifier  = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	rfcChallenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
)

func TestPKCEVector(t *testing.T) {
	if !pkceMatches("S256", rfcChallenge, rfcVerifier) {
		t.Error("RFC 7636 appendix B vector rejected")
	}
	if pkceMatches("S256", rfcChallenge, rfcVerifier[:42]+"x") {
		t.Error("wrong verifier accepted")
	}
	if !pkceMatches("plain", rfcVerifier, rfcVerifier) || pkceMatches("plain", rfcVerifier, "short") {
		t.Error("plain method")
	}
}

// authorize runs sign-in (and consent when asked) and returns the redirect.
func authorize(t *testing.T, srv *Server, user, password, scope string, consent string) *url.URL {
	t.Helper()
	b := &browser{t: t, srv: srv, c: noRedirect(srv)}
	q := url.Values{"client_id": {DemoPublicAppID}, "response_type": {"code"}, "redirect_uri": {"http://localhost:53121/"},
		"scope": {scope}, "state": {"st-123"}, "code_challenge": {rfcChallenge}, "code_challenge_method": {"S256"}}
	resp, page := b.get(srv.URL() + "/" + DemoTenantID + "/oauth2/v2.0/authorize?" + q.Encode())
	if resp.StatusCode != 200 {
		t.Fatalf("authorize: %d %s", resp.StatusCode, page)
	}
	resp, page = b.submit("/"+DemoTenantID+"/login", url.Values{"req": {reqID(t, page)}, "username": {user}, "password": {password}})
	if strings.Contains(page, `name="otc"`) {
		resp, page = b.submit("/"+DemoTenantID+"/login", url.Values{"req": {reqID(t, page)}, "otc": {DemoMFACode}})
	}
	if strings.Contains(page, `name="consent"`) {
		if consent == "" {
			t.Fatalf("unexpected consent page:\n%s", page)
		}
		resp, page = b.submit("/"+DemoTenantID+"/consent", url.Values{"req": {reqID(t, page)}, "consent": {consent}})
	}
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("want a redirect, got %d:\n%s", resp.StatusCode, page)
	}
	u, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func redeem(t *testing.T, srv *Server, code, verifier string) answer {
	return post(t, srv, tokenURL(srv, false), url.Values{"grant_type": {"authorization_code"}, "client_id": {DemoPublicAppID},
		"code": {code}, "redirect_uri": {"http://localhost:53121/"}, "code_verifier": {verifier},
		"scope": {"https://outlook.office.com/IMAP.AccessAsUser.All offline_access openid"}})
}

func TestAuthorizationCodeFlow(t *testing.T) {
	srv := start(t)
	u := authorize(t, srv, DemoUser, DemoUserPassword, "https://outlook.office.com/IMAP.AccessAsUser.All offline_access openid", "")
	if u.Host != "localhost:53121" || u.Query().Get("state") != "st-123" || u.Query().Get("code") == "" {
		t.Fatalf("redirect %s", u)
	}
	code := u.Query().Get("code")
	a := redeem(t, srv, code, rfcVerifier)
	if a.status != 200 || a.str("refresh_token") == "" || a.str("id_token") == "" {
		t.Fatalf("redeem: %s", a.raw)
	}
	c, err := srv.VerifyAccessToken(a.str("access_token"))
	if err != nil || c.Upn != DemoUser || c.Aud != "https://outlook.office.com" || c.Idtyp != "user" ||
		!strings.Contains(c.Scp, "IMAP.AccessAsUser.All") || c.AppIDACR != "0" {
		t.Fatalf("claims %+v %v", c, err)
	}
	checkAADShape(t, redeem(t, srv, code, rfcVerifier), 400, "invalid_grant", 54005)

	t.Run("pkce mismatch", func(t *testing.T) {
		u := authorize(t, srv, DemoUser, DemoUserPassword, "https://outlook.office.com/IMAP.AccessAsUser.All offline_access", "")
		checkAADShape(t, redeem(t, srv, u.Query().Get("code"), strings.Repeat("a", 43)), 400, "invalid_grant", 501481)
	})
	t.Run("expired code", func(t *testing.T) {
		u := authorize(t, srv, DemoUser, DemoUserPassword, "https://outlook.office.com/IMAP.AccessAsUser.All offline_access", "")
		srv.SetClock(func() time.Time { return time.Now().Add(11 * time.Minute) })
		defer srv.SetClock(nil)
		a := redeem(t, srv, u.Query().Get("code"), rfcVerifier)
		checkAADShape(t, a, 400, "invalid_grant", 70000)
		if !strings.Contains(a.str("error_description"), "The code has expired") {
			t.Errorf("text %q", a.str("error_description"))
		}
	})
	t.Run("consent page then graph token", func(t *testing.T) {
		u := authorize(t, srv, DemoUser, DemoUserPassword, "Mail.Read offline_access", "accept")
		a := post(t, srv, tokenURL(srv, false), url.Values{"grant_type": {"authorization_code"}, "client_id": {DemoPublicAppID},
			"code": {u.Query().Get("code")}, "redirect_uri": {"http://localhost:53121/"}, "code_verifier": {rfcVerifier}, "scope": {"Mail.Read offline_access"}})
		if a.status != 200 {
			t.Fatalf("%s", a.raw)
		}
		if c, err := srv.VerifyAccessToken(a.str("access_token")); err != nil || c.Aud != "https://graph.microsoft.com" || !strings.Contains(c.Scp, "Mail.Read") {
			t.Fatalf("claims %+v %v", c, err)
		}
	})
	t.Run("consent declined", func(t *testing.T) {
		u := authorize(t, srv, DemoMFAUser, DemoMFAUserPassword, "Mail.Send offline_access", "decline")
		if u.Query().Get("error") != "access_denied" || !strings.HasPrefix(u.Query().Get("error_description"), "AADSTS65004:") || u.Query().Get("state") != "st-123" {
			t.Fatalf("redirect %s", u)
		}
	})
	t.Run("mfa user signs in with the code", func(t *testing.T) {
		u := authorize(t, srv, DemoMFAUser, DemoMFAUserPassword, "https://outlook.office.com/IMAP.AccessAsUser.All", "")
		if u.Query().Get("code") == "" {
			t.Fatalf("redirect %s", u)
		}
	})
	t.Run("unregistered redirect uri is not followed", func(t *testing.T) {
		b := &browser{t: t, srv: srv, c: noRedirect(srv)}
		q := url.Values{"client_id": {DemoPublicAppID}, "response_type": {"code"}, "redirect_uri": {"https://evil.example/cb"}, "scope": {"openid"}}
		resp, page := b.get(srv.URL() + "/" + DemoTenantID + "/oauth2/v2.0/authorize?" + q.Encode())
		if resp.StatusCode != 400 || resp.Header.Get("Location") != "" || !strings.Contains(page, "AADSTS50011") {
			t.Fatalf("%d %q %s", resp.StatusCode, resp.Header.Get("Location"), page)
		}
	})
}

func TestRedirectRule(t *testing.T) {
	app := &App{RedirectURIs: []string{"http://localhost", "https://app.example/cb"}}
	for raw, want := range map[string]bool{
		"http://localhost":           true,
		"http://localhost:8400/":     true,
		"http://localhost:8400/x":    false,
		"https://app.example/cb":     true,
		"https://app.example:444/cb": false,
		"https://app.example/cb2":    false,
		"http://127.0.0.1:8400/":     false,
		"javascript:alert(1)":        false,
	} {
		if got := redirectAllowed(app, raw); got != want {
			t.Errorf("%s: got %v, want %v", raw, got, want)
		}
	}
}

func ropc(t *testing.T, srv *Server) answer {
	t.Helper()
	a := post(t, srv, tokenURL(srv, false), url.Values{"grant_type": {"password"}, "client_id": {DemoPublicAppID},
		"username": {DemoUser}, "password": {DemoUserPassword}, "scope": {"https://outlook.office.com/IMAP.AccessAsUser.All offline_access"}})
	if a.status != 200 || a.str("refresh_token") == "" {
		t.Fatalf("ropc: %s", a.raw)
	}
	return a
}

func refreshWith(t *testing.T, srv *Server, rt, scope string) answer {
	f := url.Values{"grant_type": {"refresh_token"}, "client_id": {DemoPublicAppID}, "refresh_token": {rt}}
	if scope != "" {
		f.Set("scope", scope)
	}
	return post(t, srv, tokenURL(srv, false), f)
}

func TestRefreshTokens(t *testing.T) {
	srv := start(t)
	rt1 := ropc(t, srv).str("refresh_token")
	a := refreshWith(t, srv, rt1, "")
	rt2 := a.str("refresh_token")
	if a.status != 200 || rt2 == "" || rt2 == rt1 {
		t.Fatalf("refresh did not rotate: %s", a.raw)
	}
	if a := refreshWith(t, srv, rt1, ""); a.status != 200 {
		t.Fatalf("Entra keeps a rotated refresh token valid; got %s", a.raw)
	}
	a = refreshWith(t, srv, rt2, "https://outlook.office.com/SMTP.Send offline_access")
	if c, err := srv.VerifyAccessToken(a.str("access_token")); err != nil || !strings.Contains(c.Scp, "SMTP.Send") {
		t.Fatalf("one refresh token mints another scope of the resource: %+v %v %s", c, err, a.raw)
	}
	srv.Tenant().SetRotationRevokesOld(true)
	checkAADShape(t, refreshWith(t, srv, rt2, ""), 400, "invalid_grant", 50173)
	srv.Tenant().SetRotationRevokesOld(false)

	rt := ropc(t, srv).str("refresh_token")
	srv.Tenant().ExpireRefreshTokens(DemoUser)
	a = refreshWith(t, srv, rt, "")
	checkAADShape(t, a, 400, "invalid_grant", 700082)
	if !strings.Contains(a.str("error_description"), "inactive for 90.00:00:00") {
		t.Errorf("700082 text %q", a.str("error_description"))
	}
	rt = ropc(t, srv).str("refresh_token")
	srv.Tenant().RevokeRefreshTokens(DemoUser)
	checkAADShape(t, refreshWith(t, srv, rt, ""), 400, "invalid_grant", 50173)
}

func TestDeviceCodeFlow(t *testing.T) {
	srv := start(t)
	start := func() (string, string) {
		a := post(t, srv, srv.URL()+"/"+DemoTenantID+"/oauth2/v2.0/devicecode", url.Values{"client_id": {DemoPublicAppID},
			"scope": {"https://outlook.office.com/IMAP.AccessAsUser.All offline_access"}})
		if a.status != 200 || a.str("verification_uri") != srv.URL()+"/devicelogin" || a.json["interval"].(float64) != 5 ||
			a.json["expires_in"].(float64) != 900 || !strings.Contains(a.str("message"), a.str("user_code")) {
			t.Fatalf("devicecode: %s", a.raw)
		}
		return a.str("device_code"), a.str("user_code")
	}
	poll := func(dc, grant string) answer {
		return post(t, srv, tokenURL(srv, false), url.Values{"grant_type": {grant}, "client_id": {DemoPublicAppID}, "device_code": {dc}})
	}
	dc, uc := start()
	checkAADShape(t, poll(dc, deviceCodeGrant), 400, "authorization_pending", 70016)
	b := &browser{t: t, srv: srv, c: srv.Client()}
	resp, page := b.submit("/devicelogin", url.Values{"otc": {strings.ToLower(uc)}, "username": {DemoUser}, "password": {"wrong"}, "action": {"approve"}})
	if resp.StatusCode != 400 || !strings.Contains(page, "AADSTS50126") {
		t.Fatalf("bad password accepted: %d %s", resp.StatusCode, page)
	}
	resp, page = b.submit("/devicelogin", url.Values{"otc": {uc}, "username": {DemoUser}, "password": {DemoUserPassword}, "action": {"approve"}})
	if resp.StatusCode != 200 || !strings.Contains(page, "signed in as "+DemoUser) {
		t.Fatalf("devicelogin: %d %s", resp.StatusCode, page)
	}
	a := poll(dc, "device_code") // MSAL's literal grant type
	if a.status != 200 || a.str("refresh_token") == "" {
		t.Fatalf("poll after approval: %s", a.raw)
	}
	checkAADShape(t, poll(dc, deviceCodeGrant), 400, "bad_verification_code", 70018)

	dc, uc = start()
	if err := srv.DeclineDevice(uc); err != nil {
		t.Fatal(err)
	}
	if a := poll(dc, deviceCodeGrant); a.str("error") != "authorization_declined" {
		t.Fatalf("declined: %s", a.raw)
	}
	dc, _ = start()
	srv.SetClock(func() time.Time { return time.Now().Add(16 * time.Minute) })
	checkAADShape(t, poll(dc, deviceCodeGrant), 400, "expired_token", 70019)
	srv.SetClock(nil)
}

func TestDiscovery(t *testing.T) {
	srv := start(t)
	get := func(path string) (int, map[string]any) {
		resp, err := srv.Client().Get(srv.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	st, doc := get("/" + DemoDomain + "/v2.0/.well-known/openid-configuration")
	if st != 200 || doc["token_endpoint"] != srv.URL()+"/"+DemoDomain+"/oauth2/v2.0/token" || doc["issuer"] != srv.URL()+"/"+DemoTenantID+"/v2.0" ||
		doc["device_authorization_endpoint"] != srv.URL()+"/"+DemoDomain+"/oauth2/v2.0/devicecode" {
		t.Errorf("v2 doc: %d %v", st, doc)
	}
	st, doc = get("/" + DemoTenantID + "/.well-known/openid-configuration")
	if st != 200 || doc["token_endpoint"] != srv.URL()+"/"+DemoTenantID+"/oauth2/token" {
		t.Errorf("v1 doc: %d %v", st, doc)
	}
	st, doc = get("/contoso.invalid/v2.0/.well-known/openid-configuration")
	if st != 400 || doc["error"] != "invalid_tenant" || !strings.HasPrefix(doc["error_description"].(string), "AADSTS90002:") {
		t.Errorf("unknown tenant: %d %v", st, doc)
	}
	st, doc = get("/" + DemoTenantID + "/discovery/v2.0/keys")
	keys, _ := doc["keys"].([]any)
	if st != 200 || len(keys) != 1 || keys[0].(map[string]any)["kid"] != srv.sign.kid {
		t.Errorf("jwks: %d %v", st, doc)
	}
}

func TestExchangeCheck(t *testing.T) {
	srv := start(t)
	app := post(t, srv, tokenURL(srv, false), ccForm("https://outlook.office365.com/.default")).str("access_token")
	graph := post(t, srv, tokenURL(srv, false), ccForm("https://graph.microsoft.com/.default")).str("access_token")
	user := ropc(t, srv).str("access_token")
	tests := []struct {
		name, token, mailbox, service string
		reason                        string // "" = allowed
	}{
		{"app on granted shared mailbox", app, DemoSharedMailbox, "imap", ""},
		{"app pop3", app, DemoInvoicesMailbox, "pop3", ""},
		{"app submission", app, DemoSenderMailbox, "submission", ""},
		{"app on mailbox not granted", app, DemoRestrictedMailbox, "imap", "Add-MailboxPermission"},
		{"graph token", graph, DemoSharedMailbox, "imap", "not Exchange Online"},
		{"garbage", "abc", DemoSharedMailbox, "imap", "access token"},
		{"no such mailbox", app, "ghost@contoso.example", "imap", "does not exist"},
		{"user own mailbox", user, DemoUser, "imap", ""},
		{"user shared mailbox with FullAccess", user, DemoSharedMailbox, "imap", ""},
		{"user without FullAccess", user, DemoInvoicesMailbox, "imap", "has no access"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := post(t, srv, srv.HTTPURL()+"/_emulator/exchange/check", url.Values{"user": {tt.mailbox}, "token": {tt.token}, "service": {tt.service}})
			if a.status != 200 {
				t.Fatalf("%d %s", a.status, a.raw)
			}
			active, _ := a.json["active"].(bool)
			if tt.reason == "" {
				if !active || a.str("username") != tt.mailbox {
					t.Fatalf("refused: %s", a.raw)
				}
				return
			}
			if active || !strings.Contains(a.str("reason"), tt.reason) {
				t.Fatalf("want refusal mentioning %q, got %s", tt.reason, a.raw)
			}
		})
	}
	t.Run("user token lacks POP scope", func(t *testing.T) {
		narrow := "44444444-5555-4666-8777-888888888888"
		srv.Tenant().AddApp(App{ID: narrow, Name: "imap only", Public: true})
		if err := srv.Tenant().GrantDelegatedConsent(narrow, "", "https://outlook.office.com/IMAP.AccessAsUser.All"); err != nil {
			t.Fatal(err)
		}
		a := post(t, srv, tokenURL(srv, false), url.Values{"grant_type": {"password"}, "client_id": {narrow},
			"username": {DemoUser}, "password": {DemoUserPassword}, "scope": {"https://outlook.office.com/IMAP.AccessAsUser.All"}})
		if err := srv.CheckMailboxAccess(a.str("access_token"), DemoUser, "imap"); err != nil {
			t.Fatalf("imap: %v (%s)", err, a.raw)
		}
		if err := srv.CheckMailboxAccess(a.str("access_token"), DemoUser, "pop3"); err == nil || !strings.Contains(err.Error(), "POP.AccessAsUser.All") {
			t.Fatalf("pop3: %v", err)
		}
	})
	t.Run("service principal not registered", func(t *testing.T) {
		srv.Tenant().RemoveServicePrincipal(DemoAppID)
		defer srv.Tenant().RegisterServicePrincipal(DemoAppID)
		err := srv.CheckMailboxAccess(app, DemoSharedMailbox, "imap")
		if err == nil || !strings.Contains(err.Error(), "New-ServicePrincipal -AppId "+DemoAppID) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("role not granted", func(t *testing.T) {
		if err := srv.Tenant().RevokeAppRoles(DemoAppID, "https://outlook.office365.com", "POP.AccessAsApp"); err != nil {
			t.Fatal(err)
		}
		tok := post(t, srv, tokenURL(srv, false), ccForm("https://outlook.office365.com/.default")).str("access_token")
		if err := srv.CheckMailboxAccess(tok, DemoSharedMailbox, "pop3"); err == nil || !strings.Contains(err.Error(), "POP.AccessAsApp") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("sendas", func(t *testing.T) {
		if err := srv.CheckSendAs(app, DemoSenderMailbox); err != nil {
			t.Error(err)
		}
		if err := srv.CheckSendAs(app, DemoSharedMailbox); err == nil || !strings.Contains(err.Error(), "Add-RecipientPermission") {
			t.Errorf("got %v", err)
		}
	})
}

func TestControlRoutes(t *testing.T) {
	srv := start(t)
	c := srv.Client()
	resp, err := c.Post(srv.HTTPURL()+"/_emulator/faults", "application/json", strings.NewReader(`{"status":429,"retry_after":3,"plain_text":true,"count":1}`))
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("add fault: %v %v", err, resp)
	}
	resp.Body.Close()
	if a := post(t, srv, tokenURL(srv, false), ccForm("https://outlook.office365.com/.default")); a.status != 429 || a.header.Get("Retry-After") != "3" {
		t.Fatalf("fault from control route: %d", a.status)
	}
	resp, err = c.PostForm(srv.HTTPURL()+"/_emulator/token-lifetime", url.Values{"seconds": {"120"}})
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("lifetime: %v %v", err, resp)
	}
	resp.Body.Close()
	if a := post(t, srv, tokenURL(srv, false), ccForm("https://outlook.office365.com/.default")); a.json["expires_in"] != float64(120) {
		t.Fatalf("lifetime not applied: %s", a.raw)
	}
	resp, err = c.Get(srv.HTTPURL() + "/_emulator/stats")
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if st["token_requests"] != float64(2) {
		t.Errorf("stats %v", st)
	}
}

func TestConfigYAML(t *testing.T) {
	srv := start(t)
	y := string(srv.ConfigYAML())
	for _, want := range []string{"authority: " + srv.URL(), "client_id: " + DemoAppID, "name: emulator-cert", "client-secret.txt", "grant: device_code"} {
		if !strings.Contains(y, want) {
			t.Errorf("config lacks %q", want)
		}
	}
	if strings.Contains(y, DemoAppSecret) {
		t.Error("config embeds the secret instead of a file: reference")
	}
}
