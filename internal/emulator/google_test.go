package emulator

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// googleKeyJSON is the emulator's service account key file, decoded.
type googleKeyJSON struct {
	Type, PrivateKeyID, PrivateKey, ClientEmail, ClientID, TokenURI string
}

func readGoogleKey(t *testing.T, data []byte) (googleKeyJSON, *rsa.PrivateKey) {
	t.Helper()
	var k struct {
		Type         string `json:"type"`
		PrivateKeyID string `json:"private_key_id"`
		PrivateKey   string `json:"private_key"`
		ClientEmail  string `json:"client_email"`
		ClientID     string `json:"client_id"`
		TokenURI     string `json:"token_uri"`
	}
	if err := json.Unmarshal(data, &k); err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode([]byte(k.PrivateKey))
	if b == nil {
		t.Fatal("no PEM key in the key file")
	}
	pk, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return googleKeyJSON(k), pk.(*rsa.PrivateKey)
}

// signRS256 makes a compact JWS by hand (the emulator's tests use no
// mailgate client code).
func signRS256(t *testing.T, key *rsa.PrivateKey, header, claims map[string]any) string {
	t.Helper()
	hb, _ := json.Marshal(header)
	cb, _ := json.Marshal(claims)
	signing := b64url.EncodeToString(hb) + "." + b64url.EncodeToString(cb)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + b64url.EncodeToString(sig)
}

func TestGoogleJWTBearer(t *testing.T) {
	srv := start(t)
	k, key := readGoogleKey(t, srv.GoogleKey())
	if k.Type != "service_account" || k.TokenURI != srv.GoogleTokenURL() || k.ClientID != GoogleServiceAccountClientID {
		t.Fatalf("key file = %+v", k)
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	alice := "alice@" + GoogleDomain
	now := time.Now().Unix()
	good := func() (map[string]any, map[string]any) {
		return map[string]any{"alg": "RS256", "typ": "JWT", "kid": k.PrivateKeyID},
			map[string]any{"iss": k.ClientEmail, "sub": alice, "scope": GoogleMailScope, "aud": k.TokenURI, "iat": now, "exp": now + 3600}
	}
	tests := []struct {
		name       string
		edit       func(h, c map[string]any)
		key        *rsa.PrivateKey
		status     int
		code, desc string
	}{
		{"accepted", func(h, c map[string]any) {}, key, 200, "", ""},
		{"no kid", func(h, c map[string]any) { delete(h, "kid") }, key, 200, "", ""},
		{"no sub: the account itself", func(h, c map[string]any) { delete(c, "sub") }, key, 200, "", ""},
		{"other key", func(h, c map[string]any) {}, other, 400, "invalid_grant", gBadSignature},
		{"unknown kid", func(h, c map[string]any) { h["kid"] = "0000" }, key, 400, "invalid_grant", gBadSignature},
		{"PS256", func(h, c map[string]any) { h["alg"] = "PS256" }, key, 400, "invalid_grant", gBadSignature},
		{"unknown iss", func(h, c map[string]any) { c["iss"] = "x@y.iam.gserviceaccount.com" }, key, 400, "invalid_grant", gBadSignature},
		{"aud", func(h, c map[string]any) { c["aud"] = "https://oauth2.googleapis.com/token" }, key, 400, "invalid_grant", "Invalid JWT: Failed audience check"},
		{"61 minutes", func(h, c map[string]any) { c["exp"] = now + 3660 }, key, 400, "invalid_grant", gClock},
		{"future iat", func(h, c map[string]any) { c["iat"] = now + 900; c["exp"] = now + 1800 }, key, 400, "invalid_grant", gClock},
		{"expired", func(h, c map[string]any) { c["iat"] = now - 7200; c["exp"] = now - 3600 }, key, 400, "invalid_grant", gClock},
		{"no exp", func(h, c map[string]any) { delete(c, "exp") }, key, 400, "invalid_grant", gClock},
		{"commas", func(h, c map[string]any) {
			c["scope"] = GoogleMailScope + ",https://www.googleapis.com/auth/gmail.send"
		}, key, 400, "invalid_scope", gBadScope},
		{"no scope", func(h, c map[string]any) { delete(c, "scope") }, key, 400, "invalid_scope", "Empty or missing scope"},
		{"no such user", func(h, c map[string]any) { c["sub"] = "nobody@" + GoogleDomain }, key, 400, "invalid_grant", gNoSuchUser},
		{"scope not delegated", func(h, c map[string]any) { c["scope"] = "https://www.googleapis.com/auth/gmail.send" }, key, 401, "unauthorized_client", gNotDelegated},
		{"user outside the delegation", func(h, c map[string]any) { c["sub"] = GoogleOutsideUser }, key, 401, "unauthorized_client", gNotDelegated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, c := good()
			tt.edit(h, c)
			a := post(t, srv, srv.GoogleTokenURL(), url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"},
				"assertion": {signRS256(t, tt.key, h, c)}})
			if a.status != tt.status || a.str("error") != tt.code || !strings.HasPrefix(a.str("error_description"), tt.desc) {
				t.Fatalf("answer %d %s", a.status, a.raw)
			}
			if tt.status != 200 {
				if len(a.json) != 2 {
					t.Errorf("Google answers error and error_description only: %s", a.raw)
				}
				return
			}
			if a.str("token_type") != "Bearer" || a.json["expires_in"] == nil || a.json["refresh_token"] != nil {
				t.Errorf("answer %s", a.raw)
			}
			claims, err := srv.VerifyGoogleToken(a.str("access_token"))
			if err != nil {
				t.Fatal(err)
			}
			want := alice
			if _, ok := c["sub"]; !ok {
				want = k.ClientEmail
			}
			if claims.Email != want || !claims.HasScope(GoogleMailScope) || claims.ClientID != GoogleServiceAccountClientID {
				t.Errorf("claims %+v", claims)
			}
		})
	}
	if n := srv.GoogleTokenRequests(GoogleOutsideUser); n != 1 {
		t.Errorf("requests for %s = %d", GoogleOutsideUser, n)
	}
	if _, err := srv.VerifyAccessToken("ya29.x"); err == nil {
		t.Error("a Google token passes as an Entra token")
	}
	if _, err := srv.VerifyGoogleToken("eyJ.x.y"); err == nil {
		t.Error("VerifyGoogleToken accepted a non-Google token")
	}
}

func TestGoogleServiceAccountStates(t *testing.T) {
	srv := start(t)
	data, kid, err := srv.NewGoogleKey()
	if err != nil {
		t.Fatal(err)
	}
	k, key := readGoogleKey(t, data)
	now := time.Now().Unix()
	ask := func() answer {
		return post(t, srv, srv.GoogleTokenURL(), url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"},
			"assertion": {signRS256(t, key, map[string]any{"alg": "RS256", "kid": kid},
				map[string]any{"iss": k.ClientEmail, "sub": "bob@" + GoogleDomain, "scope": GoogleMailScope, "aud": k.TokenURI, "iat": now, "exp": now + 3600})}})
	}
	steps := []struct {
		name   string
		do     func()
		status int
		code   string
	}{
		{"new key", func() {}, 200, ""},
		{"disabled", func() { srv.SetGoogleServiceAccount(true, false) }, 401, "disabled_client"},
		{"deleted", func() { srv.SetGoogleServiceAccount(false, true) }, 401, "deleted_client"},
		{"enabled", func() { srv.SetGoogleServiceAccount(false, false) }, 200, ""},
		{"delegation removed", func() { srv.SetGoogleDelegation(GoogleServiceAccountClientID) }, 401, "unauthorized_client"},
		{"delegation back", func() { srv.SetGoogleDelegation(GoogleServiceAccountClientID, GoogleMailScope) }, 200, ""},
		{"key deleted", func() { srv.DeleteGoogleKey(kid) }, 400, "invalid_grant"},
	}
	for _, st := range steps {
		st.do()
		if a := ask(); a.status != st.status || a.str("error") != st.code {
			t.Errorf("%s: %d %s", st.name, a.status, a.raw)
		}
	}
	// other processes read the per-user count from the stats route
	resp, err := srv.Client().Get(srv.URL() + "/_emulator/stats")
	if err != nil {
		t.Fatal(err)
	}
	var stats struct {
		Google map[string]int `json:"google_token_requests"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&stats); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if stats.Google["bob@"+GoogleDomain] != len(steps) {
		t.Errorf("stats google_token_requests = %v, want %d for bob", stats.Google, len(steps))
	}
}

// TestGoogleTokensNeedCredentials: the emulator hands out no Google token
// to a caller without credentials: neither the removed stand-in control
// route nor the token endpoint with made-up client credentials (Google has
// no client-credentials grant; a refresh needs the real client secret).
func TestGoogleTokensNeedCredentials(t *testing.T) {
	srv := start(t)
	alice := "alice@" + GoogleDomain
	for _, tt := range []struct {
		name   string
		url    string
		form   url.Values
		status int
		code   string
	}{
		{"stand-in route", srv.URL() + "/_emulator/gmail/token", url.Values{"scope": {GoogleMailScope}, "user": {alice}}, 404, ""},
		{"client credentials", srv.GoogleTokenURL(), url.Values{"grant_type": {"client_credentials"}, "client_id": {"test"},
			"client_secret": {"test"}, "scope": {GoogleMailScope}}, 400, "unsupported_grant_type"},
		{"refresh with a made-up client", srv.GoogleTokenURL(), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"1//x"},
			"client_id": {"test"}, "client_secret": {"test"}}, 401, "invalid_client"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := post(t, srv, tt.url, tt.form)
			if a.status != tt.status || a.str("error") != tt.code || a.str("access_token") != "" || strings.Contains(a.raw, "ya29.") {
				t.Errorf("%d %s; want %d %q and no token", a.status, a.raw, tt.status, tt.code)
			}
		})
	}
}

// googleSignIn runs the authorize page and returns the redirect's query.
func googleSignIn(t *testing.T, srv *Server, q url.Values, email string) url.Values {
	t.Helper()
	c := srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Get(srv.GoogleAuthorizeURL() + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	req := between(body, `name="req" value="`, `"`)
	if resp.StatusCode != 200 || req == "" {
		t.Fatalf("authorize page %d: %s", resp.StatusCode, body)
	}
	resp, err = c.PostForm(srv.URL()+"/google/signin", url.Values{"req": {req}, "email": {email}, "decision": {"allow"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil {
		t.Fatalf("sign-in answered %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return loc.Query()
}

func between(s, from, to string) string {
	_, rest, ok := strings.Cut(s, from)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, to)
	return v
}

func TestGoogleAuthorizationCode(t *testing.T) {
	srv := start(t)
	secret := strings.TrimSpace(readFile(t, srv.GoogleClientSecretFile()))
	verifier := strings.Repeat("v", 50)
	sum := sha256.Sum256([]byte(verifier))
	redirect := "http://127.0.0.1:8401/"
	q := url.Values{"client_id": {GoogleClientID}, "response_type": {"code"}, "redirect_uri": {redirect}, "scope": {GoogleMailScope},
		"state": {"st-1"}, "code_challenge": {b64url.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}, "access_type": {"offline"}}
	back := googleSignIn(t, srv, q, "alice@"+GoogleDomain)
	if back.Get("state") != "st-1" || back.Get("code") == "" {
		t.Fatalf("redirect query %v", back)
	}
	redeem := url.Values{"grant_type": {"authorization_code"}, "code": {back.Get("code")}, "redirect_uri": {redirect},
		"client_id": {GoogleClientID}, "client_secret": {secret}, "code_verifier": {"wrong" + verifier}}
	if a := post(t, srv, srv.GoogleTokenURL(), redeem); a.str("error") != "invalid_grant" {
		t.Fatalf("wrong verifier: %s", a.raw)
	}
	back = googleSignIn(t, srv, q, "alice@"+GoogleDomain)
	redeem.Set("code", back.Get("code"))
	redeem.Set("code_verifier", verifier)
	a := post(t, srv, srv.GoogleTokenURL(), redeem)
	rt := a.str("refresh_token")
	if a.status != 200 || rt == "" {
		t.Fatalf("redeem: %s", a.raw)
	}
	if c, err := srv.VerifyGoogleToken(a.str("access_token")); err != nil || c.Email != "alice@"+GoogleDomain {
		t.Fatalf("token %+v %v", c, err)
	}
	if a := post(t, srv, srv.GoogleTokenURL(), redeem); a.str("error") != "invalid_grant" {
		t.Errorf("a code redeemed twice: %s", a.raw)
	}
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {GoogleClientID}, "client_secret": {secret}}
	a = post(t, srv, srv.GoogleTokenURL(), refresh)
	if a.status != 200 || a.json["refresh_token"] != nil {
		t.Fatalf("refresh (Google does not rotate): %s", a.raw)
	}
	// Testing status: 7 days after sign-in the refresh token is gone.
	srv.SetClock(func() time.Time { return time.Now().Add(7*24*time.Hour + time.Minute) })
	if a := post(t, srv, srv.GoogleTokenURL(), refresh); a.str("error") != "invalid_grant" || a.str("error_description") != gExpired {
		t.Fatalf("after 7 days in Testing: %s", a.raw)
	}
	srv.SetGoogleAppTesting(false)
	if a := post(t, srv, srv.GoogleTokenURL(), refresh); a.status != 200 {
		t.Fatalf("after 7 days in production: %s", a.raw)
	}
	srv.SetClock(nil)
	refresh.Set("client_secret", "wrong")
	if a := post(t, srv, srv.GoogleTokenURL(), refresh); a.str("error") != "invalid_client" {
		t.Errorf("wrong secret: %s", a.raw)
	}
}

func TestConfigYAMLGoogle(t *testing.T) {
	srv := start(t)
	y := string(srv.ConfigYAML())
	for _, want := range []string{"grant: service_account", "service_account_key: 'file:" + srv.GoogleKeyFile() + "'",
		"token_url: " + srv.GoogleTokenURL(), "client_id: " + GoogleClientID, "google-client-secret.txt",
		"sign in as alice, bob or carol@" + GoogleDomain} {
		if !strings.Contains(y, want) {
			t.Errorf("config lacks %q", want)
		}
	}
	if strings.Contains(y, "PRIVATE KEY") {
		t.Error("the config embeds the key")
	}
	if strings.Contains(y, "mailboxes:") {
		t.Error("a mailbox without the Gmail IMAP service")
	}
}

// TestConfigYAMLGmail: with the Gmail IMAP service on, the config reads
// alice's Gmail through the service-account profile.
func TestConfigYAMLGmail(t *testing.T) {
	srv, err := Start(t.Context(), Options{HTTPListen: "-", GmailIMAPListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	y := string(srv.ConfigYAML())
	_, port, _ := strings.Cut(srv.GmailIMAPAddr(), ":")
	for _, want := range []string{"grant: service_account", "mailboxes:\n  - name: workspace-alice\n", "port: " + port + "\n",
		"username: alice@" + GoogleDomain + "\n    profile: google-workspace\n    sink: gmail-inbox\n",
		"sinks:\n  - {name: gmail-inbox, type: maildir, path: ./gmail-inbox}\n"} {
		if !strings.Contains(y, want) {
			t.Errorf("config lacks %q:\n%s", want, y)
		}
	}
	if p := string(srv.ProfilesYAML()); strings.Contains(p, "mailboxes:") || !strings.HasPrefix(y, p) {
		t.Error("ProfilesYAML is not the profiles part of ConfigYAML")
	}
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
