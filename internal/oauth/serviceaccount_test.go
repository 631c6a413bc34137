package oauth

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	saKeyOnce sync.Once
	saKey     *rsa.PrivateKey
)

// testServiceAccountJSON returns a service account key file for tokenURI.
func testServiceAccountJSON(t testing.TB, tokenURI string) []byte {
	t.Helper()
	saKeyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		saKey = k
	})
	der, err := x509.MarshalPKCS8PrivateKey(saKey)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "mailgate-test", "private_key_id": "0123456789abcdef0123456789abcdef01234567",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": "reader@mailgate-test.iam.gserviceaccount.com", "client_id": "104829392011234567890",
		"token_uri": tokenURI,
	})
	return b
}

func serviceAccountProfile(t testing.TB, tokenURI string) *Profile {
	t.Helper()
	k, err := ParseServiceAccountKey(testServiceAccountJSON(t, tokenURI))
	if err != nil {
		t.Fatal(err)
	}
	return &Profile{Name: "workspace", Provider: ProviderGoogle, Grant: GrantServiceAccount, ClientID: k.ClientID,
		ServiceAccount: k, Scopes: []string{"https://mail.google.com/", "https://www.googleapis.com/auth/gmail.send"}}
}

// decodeJWT splits and decodes a compact JWS and checks its RS256
// signature against pub.
func decodeJWT(t *testing.T, raw string, pub *rsa.PublicKey) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("assertion %q is not a compact JWS", raw)
	}
	for i, v := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatal(err)
		}
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		t.Fatalf("assertion signature: %v", err)
	}
	return header, claims
}

func TestServiceAccountAssertion(t *testing.T) {
	fs := newFakeServer(t, func(int64, *http.Request, url.Values) (int, http.Header, string) {
		return 200, nil, okJSON("at-1", "", 3599)
	})
	tokenURI := fs.URL + "/token"
	p := serviceAccountProfile(t, tokenURI)
	p.Subject = "alice@example.com"
	before := time.Now().Add(-time.Second).Unix()
	tok, err := ServiceAccountToken(t.Context(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "at-1" || tok.RefreshToken != "" {
		t.Errorf("token = %q refresh %q", tok.AccessToken, tok.RefreshToken)
	}
	form := fs.form(0)
	if got := fs.request(0).URL.Path; got != "/token" {
		t.Errorf("POST to %s, want the key's token_uri", got)
	}
	if form.Get("grant_type") != JWTBearerGrantType {
		t.Errorf("grant_type = %q", form.Get("grant_type"))
	}
	for _, k := range []string{"client_id", "client_secret", "scope", "client_assertion"} {
		if form.Has(k) {
			t.Errorf("form has %s: the assertion is the only credential and carries the scope", k)
		}
	}
	header, claims := decodeJWT(t, form.Get("assertion"), &saKey.PublicKey)
	if header["alg"] != "RS256" || header["kid"] != p.ServiceAccount.PrivateKeyID || header["typ"] != "JWT" {
		t.Errorf("header = %v", header)
	}
	want := map[string]any{"iss": p.ServiceAccount.ClientEmail, "sub": "alice@example.com", "aud": tokenURI,
		"scope": "https://mail.google.com/ https://www.googleapis.com/auth/gmail.send"}
	for k, v := range want {
		if claims[k] != v {
			t.Errorf("claim %s = %v, want %v", k, claims[k], v)
		}
	}
	iat, exp := int64(claims["iat"].(float64)), int64(claims["exp"].(float64))
	if iat < before || exp <= iat || exp-iat > 3600 {
		t.Errorf("iat %d exp %d: want iat now and exp ≤ iat+3600", iat, exp)
	}
}

func TestManagerServiceAccountPerSubject(t *testing.T) {
	var mu sync.Mutex
	subjects := map[string]int{}
	fs := newFakeServer(t, func(n int64, _ *http.Request, form url.Values) (int, http.Header, string) {
		_, claims := decodeJWT(t, form.Get("assertion"), &saKey.PublicKey)
		sub, _ := claims["sub"].(string)
		mu.Lock()
		subjects[sub]++
		mu.Unlock()
		return 200, nil, okJSON(fmt.Sprintf("at-%s-%d", sub, n), "", 3599)
	})
	base := serviceAccountProfile(t, fs.URL+"/token")
	store := NewMemoryStore()
	m := NewManager(store, nil)
	profiles := map[string]*Profile{}
	for _, sub := range []string{"alice@example.com", "bob@example.com"} {
		pc := *base
		pc.Subject = sub
		profiles[sub] = &pc
	}
	var wg sync.WaitGroup
	got := map[string]map[string]bool{"alice@example.com": {}, "bob@example.com": {}}
	var gmu sync.Mutex
	for i := 0; i < 10; i++ {
		for sub, p := range profiles {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tok, err := m.Bearer(p, nil).Token(t.Context())
				if err != nil {
					t.Error(err)
					return
				}
				gmu.Lock()
				got[sub][tok] = true
				gmu.Unlock()
			}()
		}
	}
	wg.Wait()
	if subjects["alice@example.com"] != 1 || subjects["bob@example.com"] != 1 || len(subjects) != 2 {
		t.Errorf("requests per subject = %v, want one each", subjects)
	}
	for sub, toks := range got {
		if len(toks) != 1 {
			t.Errorf("%s got tokens %v, want one", sub, toks)
		}
		for tok := range toks {
			if !strings.Contains(tok, sub) {
				t.Errorf("%s got %s, another subject's token", sub, tok)
			}
		}
	}
	// Each subject is stored under its own key.
	for sub := range profiles {
		key := "subject=" + sub + " " + normalizeScopes(base.Scopes)
		if _, err := store.LoadToken(t.Context(), "workspace", key); err != nil {
			t.Errorf("stored token of %s: %v", sub, err)
		}
	}
	// Invalidating Alice's token leaves Bob's cached.
	m.Bearer(profiles["alice@example.com"], nil).Invalidate()
	for _, sub := range []string{"alice@example.com", "bob@example.com"} {
		if _, err := m.Token(t.Context(), profiles[sub], nil); err != nil {
			t.Fatal(err)
		}
	}
	if subjects["alice@example.com"] != 2 || subjects["bob@example.com"] != 1 {
		t.Errorf("after invalidating alice: requests per subject = %v, want alice 2, bob 1", subjects)
	}
	// A new Manager over the same store reuses the stored tokens.
	m2 := NewManager(store, nil)
	if _, err := m2.Token(context.Background(), profiles["bob@example.com"], nil); err != nil {
		t.Fatal(err)
	}
	if subjects["bob@example.com"] != 1 {
		t.Errorf("a second Manager asked again for bob: %v", subjects)
	}
}

func TestParseServiceAccountKey(t *testing.T) {
	good := map[string]any{}
	if err := json.Unmarshal(testServiceAccountJSON(t, "https://oauth2.googleapis.com/token"), &good); err != nil {
		t.Fatal(err)
	}
	with := func(k string, v any) []byte {
		m := map[string]any{}
		for a, b := range good {
			m[a] = b
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		b, _ := json.Marshal(m)
		return b
	}
	tests := []struct {
		name string
		data []byte
		want string // "" = accepted
	}{
		{"google's key", with("type", "service_account"), ""},
		{"not json", []byte("-----BEGIN PRIVATE KEY-----"), "not JSON"},
		{"oauth client json", with("type", "authorized_user"), "not service_account"},
		{"no email", with("client_email", nil), "client_email is missing"},
		{"no token_uri", with("token_uri", nil), "token_uri is missing"},
		{"http token_uri", with("token_uri", "http://oauth2.googleapis.com/token"), "token_uri"},
		{"no key", with("private_key", nil), "private_key"},
		{"bad key", with("private_key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), "private_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParseServiceAccountKey(tt.data)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("err = %v, want %q", err, tt.want)
			case err == nil:
				p := &Profile{Name: "w", Provider: ProviderGoogle, Grant: GrantServiceAccount, ServiceAccount: k, Scopes: []string{"https://mail.google.com/"}}
				var b strings.Builder
				slog.New(slog.NewTextHandler(&b, nil)).Info("x", "key", k, "profile", p)
				out := fmt.Sprintf("%v %+v %#v %s %v %#v", k, *k, k, p, p, p) + b.String()
				if strings.Contains(out, "PRIVATE KEY") || strings.Contains(out, k.PrivateKey[40:80]) {
					t.Errorf("the private key is printed: %s", out)
				}
				if err := p.Validate(); err != nil {
					t.Errorf("Validate: %v", err)
				}
			}
		})
	}
}

func TestValidateServiceAccount(t *testing.T) {
	k, err := ParseServiceAccountKey(testServiceAccountJSON(t, "https://oauth2.googleapis.com/token"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		p    Profile
		want string
	}{
		{"no key", Profile{Name: "w", Provider: ProviderGoogle, Grant: GrantServiceAccount, Scopes: []string{"https://mail.google.com/"}}, "service_account_key"},
		{"no scopes", Profile{Name: "w", Provider: ProviderGoogle, Grant: GrantServiceAccount, ServiceAccount: k}, "scopes are required"},
		{"microsoft", Profile{Name: "w", Provider: ProviderMicrosoft, Tenant: "t", Grant: GrantServiceAccount, ServiceAccount: k, Scopes: []string{"x"}}, "provider google"},
		{"with a secret", Profile{Name: "w", Provider: ProviderGoogle, Grant: GrantServiceAccount, ServiceAccount: k, ClientSecret: "s", Scopes: []string{"x"}}, "do not apply"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
	p := Profile{Name: "w", Provider: ProviderGoogle, Grant: GrantServiceAccount, ServiceAccount: k, Scopes: []string{"x"}}
	if e, _ := p.Endpoints(); e.Token != "https://oauth2.googleapis.com/token" {
		t.Errorf("token endpoint %q, want the key's token_uri", e.Token)
	}
	p.TokenURL = "https://proxy.example/token"
	if e, _ := p.Endpoints(); e.Token != "https://proxy.example/token" {
		t.Errorf("token endpoint %q, want token_url", e.Token)
	}
}

func googleError(t *testing.T, code, desc string) error {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"error": code, "error_description": desc})
	_, err := parseTokenResponse(400, jsonHeader(), body, parseNow)
	if err == nil {
		t.Fatal("no error")
	}
	return err
}

func TestExplainGoogle(t *testing.T) {
	k, err := ParseServiceAccountKey(testServiceAccountJSON(t, "https://oauth2.googleapis.com/token"))
	if err != nil {
		t.Fatal(err)
	}
	sa := &Profile{Name: "workspace", Provider: ProviderGoogle, Grant: GrantServiceAccount, ServiceAccount: k, ClientID: k.ClientID,
		Subject: "alice@example.com", Scopes: []string{"https://mail.google.com/", "https://www.googleapis.com/auth/gmail.send"}}
	user := &Profile{Name: "gmail", Provider: ProviderGoogle, Grant: GrantAuthorizationCode, ClientID: "x.apps.googleusercontent.com"}
	tests := []struct {
		name, code, desc string
		p                *Profile
		reason           GoogleReason
		want             []string
	}{
		{"no delegation", "unauthorized_client", "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.", sa,
			GoogleNotDelegated, []string{DomainWideDelegationPath, "Client ID 104829392011234567890", "OAuth scopes https://mail.google.com/,https://www.googleapis.com/auth/gmail.send", "alice@example.com"}},
		{"no delegation for the user", "unauthorized_client", "Unauthorized client or scope in request.", sa,
			GoogleNotDelegated, []string{DomainWideDelegationPath, "104829392011234567890"}},
		{"no such user", "invalid_grant", "Invalid email or User ID", sa, GoogleNoSuchUser, []string{"alice@example.com", "not a user"}},
		{"bad signature", "invalid_grant", "Invalid JWT Signature.", sa, GoogleBadSignature, []string{"deleted", "reader@mailgate-test.iam.gserviceaccount.com", "Create new key"}},
		{"clock", "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.", sa,
			GoogleClockSkew, []string{"clock", "NTP"}},
		{"commas", "invalid_scope", "Invalid OAuth scope or ID token audience provided.", sa, GoogleBadScope, []string{"commas instead of spaces"}},
		{"disabled", "disabled_client", "The OAuth client was disabled.", sa, GoogleDisabledClient, []string{"disabled", "104829392011234567890"}},
		{"deleted", "deleted_client", "", sa, GoogleDeletedClient, []string{"deleted", "new service account key"}},
		{"robot", "invalid_grant", "Robot is disabled.", sa, GoogleRobotDisabled, []string{"reader@mailgate-test.iam.gserviceaccount.com", "Enable"}},
		{"testing app", "invalid_grant", "Token has been expired or revoked.", user, GoogleExpiredOrRevoke, []string{"mailgate login gmail", "--paste"}},
		{"without the profile", "unauthorized_client", "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.", nil,
			GoogleNotDelegated, []string{DomainWideDelegationPath}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := googleError(t, tt.code, tt.desc)
			var oe *Error
			if !errors.As(err, &oe) || GoogleReasonOf(oe) != tt.reason {
				t.Fatalf("GoogleReasonOf = %q, want %q", GoogleReasonOf(oe), tt.reason)
			}
			got := ExplainFor(err, tt.p)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("ExplainFor = %q\nlacks %q", got, w)
				}
			}
		})
	}
	// An authorization-code profile's unauthorized_client is not about delegation.
	if got := ExplainFor(googleError(t, "unauthorized_client", "Unauthorized"), user); strings.Contains(got, "Domain-wide") {
		t.Errorf("a user profile's refusal explained as delegation: %q", got)
	}
}

func FuzzParseServiceAccountKey(f *testing.F) {
	f.Add(string(testServiceAccountJSON(f, "https://oauth2.googleapis.com/token")))
	f.Add(`{"type":"service_account","private_key":"-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n","client_email":"a@b","token_uri":"https://x/"}`)
	f.Add(`{"type":"authorized_user"}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseServiceAccountKey([]byte(s))
		if err == nil && (k.key == nil || k.ClientEmail == "" || k.TokenURI == "") {
			t.Fatalf("accepted an incomplete key: %v", k)
		}
	})
}

// TestManagerTestingExpiry: a Google refresh token refused within eight
// days of the sign-in is explained as the Testing status' 7-day limit;
// one refused a month later, or stored without a sign-in time, is not.
func TestManagerTestingExpiry(t *testing.T) {
	fs := newFakeServer(t, func(int64, *http.Request, url.Values) (int, http.Header, string) {
		return 400, nil, `{"error":"invalid_grant","error_description":"Token has been expired or revoked."}`
	})
	p := &Profile{Name: "gmail", Provider: ProviderGoogle, Grant: GrantAuthorizationCode, ClientID: "c.apps.googleusercontent.com",
		ClientSecret: "s", TokenURL: fs.URL + "/token", Scopes: []string{"https://mail.google.com/"}}
	signIn := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name    string
		after   time.Duration
		stamped bool
		testing bool
	}{
		{"seven days later", 7*24*time.Hour + time.Minute, true, true},
		{"a month later", 30 * 24 * time.Hour, true, false},
		{"no sign-in time stored", 7*24*time.Hour + time.Minute, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			now := signIn
			store := NewMemoryStore()
			m := NewManager(store, &ManagerOptions{Now: func() time.Time { return now }})
			tok := &Token{AccessToken: "at", RefreshToken: "rt", IssuedAt: now, Expiry: now.Add(time.Hour)}
			if err := m.Accept(t.Context(), p, nil, tok); err != nil {
				t.Fatal(err)
			}
			stored, _ := store.LoadRefreshToken(t.Context(), "gmail")
			if b, at, v := unbindRefresh(stored); v != "rt" || !at.Equal(signIn) || b != p.refreshBinding() {
				t.Fatalf("stored %q: binding %q, signed in %s, value %q", stored, b, at, v)
			}
			if !tt.stamped {
				store.SaveRefreshToken(t.Context(), "gmail", bind(p.refreshBinding(), "rt"))
			}
			now = signIn.Add(tt.after)
			_, err := m.Token(t.Context(), p, nil)
			var lre *LoginRequiredError
			if !errors.As(err, &lre) || lre.TestingExpiry() != tt.testing {
				t.Fatalf("err = %v (TestingExpiry %v), want %v", err, lre != nil && lre.TestingExpiry(), tt.testing)
			}
			got := ExplainFor(err, p)
			if has := strings.Contains(got, "expire after 7 days"); has != tt.testing {
				t.Errorf("ExplainFor = %q", got)
			}
			if tt.testing && !strings.Contains(got, "Publish app") {
				t.Errorf("ExplainFor = %q, no fix", got)
			}
		})
	}
}

// TestServiceAccountKeyCreated: the key's date is its published
// certificate's NotBefore; a key Google no longer lists is reported as
// deleted.
func TestServiceAccountKeyCreated(t *testing.T) {
	p := serviceAccountProfile(t, "https://oauth2.googleapis.com/token")
	created := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: created, NotAfter: created.AddDate(10, 0, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &saKey.PublicKey, saKey)
	if err != nil {
		t.Fatal(err)
	}
	certs := map[string]string{p.ServiceAccount.PrivateKeyID: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(certs)
	}))
	defer srv.Close()
	p.ServiceAccount.ClientX509CertURL = srv.URL + "/certs"
	got, err := ServiceAccountKeyCreated(t.Context(), p)
	if err != nil || !got.Equal(created) {
		t.Fatalf("created %s, %v; want %s", got, err, created)
	}
	delete(certs, p.ServiceAccount.PrivateKeyID)
	if _, err := ServiceAccountKeyCreated(t.Context(), p); err == nil || !strings.Contains(err.Error(), "deleted") {
		t.Errorf("a key no longer listed: %v", err)
	}
	p.ServiceAccount.ClientX509CertURL = ""
	if _, err := ServiceAccountKeyCreated(t.Context(), p); err == nil {
		t.Error("no URL: no error")
	}
}

// TestForSubject: a service account without a fixed subject acts for each
// mailbox's user; a fixed subject and other grants are left as they are.
func TestForSubject(t *testing.T) {
	sa := &Profile{Name: "w", Provider: ProviderGoogle, Grant: GrantServiceAccount}
	fixed := &Profile{Name: "f", Provider: ProviderGoogle, Grant: GrantServiceAccount, Subject: "ops@example.com"}
	user := &Profile{Name: "u", Provider: ProviderGoogle, Grant: GrantAuthorizationCode}
	for _, c := range []struct {
		p          *Profile
		user, want string
	}{
		{sa, "alice@example.com", "alice@example.com"},
		{sa, "", ""},
		{fixed, "alice@example.com", "ops@example.com"},
		{user, "alice@example.com", ""},
	} {
		if got := c.p.ForSubject(c.user).Subject; got != c.want {
			t.Errorf("%s.ForSubject(%q).Subject = %q, want %q", c.p.Name, c.user, got, c.want)
		}
	}
}
