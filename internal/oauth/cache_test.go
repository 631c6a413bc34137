package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestMargin(t *testing.T) {
	m := NewManager(nil, nil)
	issued := time.Now()
	tests := []struct {
		profileMargin time.Duration
		lifetime      time.Duration
		want          time.Duration
	}{
		{0, time.Hour, 5 * time.Minute},
		{0, 3599 * time.Second, 5 * time.Minute},
		{0, 10 * time.Minute, 5 * time.Minute},
		{0, 9 * time.Minute, 108 * time.Second},
		{0, 20 * time.Second, 4 * time.Second},
		{10 * time.Minute, time.Hour, 10 * time.Minute},
		{10 * time.Minute, 15 * time.Minute, 3 * time.Minute},
	}
	for _, tt := range tests {
		p := &Profile{RefreshMargin: tt.profileMargin}
		tok := &Token{AccessToken: "a", IssuedAt: issued, Expiry: issued.Add(tt.lifetime)}
		if got := m.margin(p, tok); got != tt.want {
			t.Errorf("margin(profile %s, lifetime %s) = %s, want %s", tt.profileMargin, tt.lifetime, got, tt.want)
		}
	}
}

func genericProfile(url string, grant Grant) *Profile {
	return &Profile{Name: "gen", Provider: ProviderGeneric, Grant: grant, TokenURL: url, ClientID: "c", ClientSecret: "s",
		Username: "u", Password: "pw", Scopes: []string{"mail"}}
}

func TestManagerRefreshInHint(t *testing.T) {
	// refresh_in asks for an early refresh; if that fails while the
	// current token is still good, the current token is kept.
	fs := newFakeServer(t, func(n int64, _ *http.Request, _ url.Values) (int, http.Header, string) {
		if n == 2 {
			return 503, nil, `{"error":"temporarily_unavailable"}`
		}
		return 200, nil, fmt.Sprintf(`{"access_token":"at%d","token_type":"Bearer","expires_in":7200,"refresh_in":3600}`, n)
	})
	clock := newFakeClock()
	m := NewManager(nil, &ManagerOptions{Now: clock.Now})
	p := genericProfile(fs.URL, GrantClientCredentials)
	get := func() string {
		t.Helper()
		tok, err := m.Token(t.Context(), p, nil)
		if err != nil {
			t.Fatal(err)
		}
		return tok.AccessToken
	}
	if got := get(); got != "at1" {
		t.Fatalf("first token %s", got)
	}
	clock.Advance(59 * time.Minute)
	if got := get(); got != "at1" || fs.count.Load() != 1 {
		t.Fatalf("before refresh_in: %s after %d requests", got, fs.count.Load())
	}
	clock.Advance(2 * time.Minute)
	if got := get(); got != "at1" || fs.count.Load() != 2 {
		t.Fatalf("failed early refresh: %s after %d requests, want at1 kept", got, fs.count.Load())
	}
	// During the backoff the still-valid token is served without asking.
	if got := get(); got != "at1" || fs.count.Load() != 2 {
		t.Fatalf("during backoff: %s after %d requests", got, fs.count.Load())
	}
	clock.Advance(DefaultServerBackoff + time.Second)
	if got := get(); got != "at3" || fs.count.Load() != 3 {
		t.Fatalf("after backoff: %s after %d requests", got, fs.count.Load())
	}
}

func TestManagerInvalidate(t *testing.T) {
	fs := newFakeServer(t, func(n int64, _ *http.Request, _ url.Values) (int, http.Header, string) {
		return 200, nil, okJSON(fmt.Sprintf("at%d", n), "", 3600)
	})
	store := NewMemoryStore()
	m := NewManager(store, nil)
	p := genericProfile(fs.URL, GrantClientCredentials)
	tok1, err := m.Token(t.Context(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.Invalidate(p.Name, []string{"mail"})
	tok2, err := m.Token(t.Context(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok1.AccessToken == tok2.AccessToken || fs.count.Load() != 2 {
		t.Fatalf("after Invalidate: %s then %s, %d requests (the store's copy must not come back)", tok1.AccessToken, tok2.AccessToken, fs.count.Load())
	}
	// Invalidate(nil) drops every scope set of the profile.
	if _, err := m.Token(t.Context(), p, []string{"other"}); err != nil {
		t.Fatal(err)
	}
	m.Invalidate(p.Name, nil)
	m.Token(t.Context(), p, nil)
	m.Token(t.Context(), p, []string{"other"})
	if fs.count.Load() != 5 {
		t.Errorf("%d requests, want 5", fs.count.Load())
	}
}

func TestManagerPasswordFallback(t *testing.T) {
	// A refused refresh token sends the password grant again; a
	// rotated one is stored.
	fs := newFakeServer(t, func(n int64, _ *http.Request, form url.Values) (int, http.Header, string) {
		switch form.Get("grant_type") {
		case "refresh_token":
			return 400, nil, `{"error":"invalid_grant","error_description":"AADSTS700082: The refresh token has expired due to inactivity.","error_codes":[700082]}`
		case "password":
			return 200, nil, okJSON("pw-at", "pw-rt", 3600)
		}
		return 400, nil, `{"error":"unsupported_grant_type"}`
	})
	store := NewMemoryStore()
	store.SaveRefreshToken(t.Context(), "gen", "stale-rt")
	m := NewManager(store, nil)
	tok, err := m.Token(t.Context(), genericProfile(fs.URL, GrantPassword), nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "pw-at" || tok.RefreshToken != "" {
		t.Errorf("token %v", tok)
	}
	if stored, _ := store.LoadRefreshToken(t.Context(), "gen"); unboundValue(stored) != "pw-rt" {
		t.Errorf("stored refresh token %q", stored)
	}
}

func TestManagerLoginRequired(t *testing.T) {
	fs := newFakeServer(t, func(n int64, _ *http.Request, form url.Values) (int, http.Header, string) {
		return 400, nil, `{"error":"invalid_grant","error_description":"Token has been expired or revoked."}`
	})
	m := NewManager(nil, nil)
	p := genericProfile(fs.URL, GrantAuthorizationCode)
	p.AuthorizeURL = fs.URL + "/auth"
	_, err := m.Token(t.Context(), p, nil)
	var lre *LoginRequiredError
	if !errors.As(err, &lre) || lre.Err != nil || !errors.Is(err, ErrLoginRequired) || fs.count.Load() != 0 {
		t.Fatalf("no refresh token: err %v after %d requests", err, fs.count.Load())
	}
	if err := m.store.SaveRefreshToken(t.Context(), p.Name, "revoked"); err != nil {
		t.Fatal(err)
	}
	_, err = m.Token(t.Context(), p, nil)
	var oe *Error
	if !errors.As(err, &lre) || !errors.Is(err, ErrLoginRequired) || !errors.As(err, &oe) || oe.Code != "invalid_grant" {
		t.Fatalf("refused refresh token: err %v", err)
	}
}

func TestManagerAccept(t *testing.T) {
	store := &countingStore{Store: NewMemoryStore()}
	m := NewManager(store, nil)
	p := genericProfile("https://idp.example/token", GrantAuthorizationCode)
	p.AuthorizeURL = "https://idp.example/auth"
	tok := &Token{AccessToken: "at", RefreshToken: "rt", TokenType: "Bearer", IssuedAt: time.Now(), Expiry: time.Now().Add(time.Hour)}
	if err := m.Accept(t.Context(), p, nil, tok); err != nil {
		t.Fatal(err)
	}
	if stored, _ := store.LoadRefreshToken(t.Context(), p.Name); unboundValue(stored) != "rt" {
		t.Errorf("stored refresh token %q", stored)
	}
	got, err := m.Token(t.Context(), p, nil)
	if err != nil || got.AccessToken != "at" || got.RefreshToken != "" {
		t.Fatalf("Token after Accept: %v %v", got, err)
	}
	stored, _ := store.LoadToken(t.Context(), p.Name, "mail")
	if stored == nil || stored.RefreshToken != "" {
		t.Errorf("access-token cache holds the refresh token: %v", stored)
	}

	failing := &countingStore{Store: NewMemoryStore(), failRT: errors.New("disk full")}
	m2 := NewManager(failing, nil)
	if err := m2.Accept(t.Context(), p, nil, tok); err == nil {
		t.Fatal("Accept succeeded though the refresh token was not stored")
	}
	if _, err := failing.LoadToken(t.Context(), p.Name, "mail"); !errors.Is(err, ErrNoToken) {
		t.Errorf("access token cached although the refresh token was lost")
	}
}

func TestManagerOnRequestAndStoreErrors(t *testing.T) {
	fs := newFakeServer(t, func(n int64, _ *http.Request, _ url.Values) (int, http.Header, string) {
		if n == 1 {
			return 401, nil, `{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215]}`
		}
		return 200, nil, okJSON("at", "", 3600)
	})
	type call struct {
		profile, result string
		aadsts          int
	}
	var calls []call
	m := NewManager(brokenLoadStore{NewMemoryStore()}, &ManagerOptions{
		OnRequest: func(p, r string, a int) { calls = append(calls, call{p, r, a}) },
	})
	p := genericProfile(fs.URL, GrantClientCredentials)
	if _, err := m.Token(t.Context(), p, nil); err == nil {
		t.Fatal("want the 401")
	}
	if _, err := m.Token(t.Context(), p, nil); err != nil {
		t.Fatalf("a broken LoadToken must not stop token requests: %v", err)
	}
	want := []call{{"gen", ResultRefused, 7000215}, {"gen", ResultOK, 0}}
	if fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Errorf("OnRequest calls %v, want %v", calls, want)
	}
}

type brokenLoadStore struct{ Store }

func (brokenLoadStore) LoadToken(context.Context, string, string) (*Token, error) {
	return nil, errors.New("database locked")
}

func TestManagerRejectsBadProfiles(t *testing.T) {
	m := NewManager(nil, nil)
	if _, err := m.Token(t.Context(), nil, nil); err == nil {
		t.Error("nil profile accepted")
	}
	p := validProfile()
	p.Name = ""
	if _, err := m.Token(t.Context(), &p, nil); err == nil {
		t.Error("unnamed profile accepted")
	}
	p = validProfile()
	p.ClientID = ""
	var ve *ValidationError
	if _, err := m.Token(t.Context(), &p, nil); !errors.As(err, &ve) {
		t.Errorf("invalid profile: %v", err)
	}
}

func TestManagerBearerAndWaiterCancel(t *testing.T) {
	release := make(chan struct{})
	var started atomic.Int64
	fs := newFakeServer(t, func(n int64, _ *http.Request, _ url.Values) (int, http.Header, string) {
		if started.Add(1) > 1 {
			return 200, nil, okJSON("fresh-at", "", 3600)
		}
		<-release
		return 200, nil, okJSON("slow-at", "", 3600)
	})
	m := NewManager(nil, nil)
	src := m.Bearer(genericProfile(fs.URL, GrantClientCredentials), nil)
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { _, err := src.Token(ctx); errc <- err }()
	for started.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	tokc := make(chan string, 1)
	go func() { tok, _ := src.Token(t.Context()); tokc <- tok }()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter got %v", err)
	}
	close(release)
	if tok := <-tokc; tok != "slow-at" {
		t.Fatalf("other waiter got %v", tok)
	}
	if fs.count.Load() != 1 {
		t.Errorf("%d requests", fs.count.Load())
	}
	// Invalidate drops the token: the next Token asks the endpoint again
	src.Invalidate()
	if tok, err := src.Token(t.Context()); err != nil || tok != "fresh-at" {
		t.Fatalf("after Invalidate: %q, %v", tok, err)
	}
	if fs.count.Load() != 2 {
		t.Errorf("%d requests after Invalidate, want 2", fs.count.Load())
	}
}

// unboundValue is a stored value without its binding.
func unboundValue(stored string) string {
	_, _, v := unbindRefresh(stored)
	return v
}

func TestManagerFresh(t *testing.T) {
	// Fresh asks the token endpoint although a good token is cached; its
	// success replaces the cached token, its failure leaves it alone.
	var fail atomic.Bool
	fs := newFakeServer(t, func(n int64, _ *http.Request, _ url.Values) (int, http.Header, string) {
		if fail.Load() {
			return 401, nil, `{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215]}`
		}
		return 200, nil, okJSON(fmt.Sprintf("at%d", n), "", 3600)
	})
	store := NewMemoryStore()
	m := NewManager(store, nil)
	p := genericProfile(fs.URL, GrantClientCredentials)
	get := func(m *Manager, fresh bool) (string, error) {
		t.Helper()
		f := m.Token
		if fresh {
			f = m.Fresh
		}
		tok, err := f(t.Context(), p, nil)
		if err != nil {
			return "", err
		}
		return tok.AccessToken, nil
	}
	if at, err := get(m, false); err != nil || at != "at1" {
		t.Fatalf("Token: %q %v", at, err)
	}
	if at, err := get(m, true); err != nil || at != "at2" || fs.count.Load() != 2 {
		t.Fatalf("Fresh with a good cached token: %q %v after %d requests, want at2 after 2", at, err, fs.count.Load())
	}
	if at, err := get(m, false); err != nil || at != "at2" || fs.count.Load() != 2 {
		t.Fatalf("Token after Fresh: %q %v after %d requests, want the fresh at2 from the cache", at, err, fs.count.Load())
	}

	fail.Store(true)
	_, err := get(m, true)
	var oe *Error
	if !errors.As(err, &oe) || oe.AADSTS() != 7000215 || fs.count.Load() != 3 {
		t.Fatalf("Fresh with a wrong secret: %v after %d requests, want AADSTS7000215 from a third request", err, fs.count.Load())
	}
	// The good token stays cached, in memory and in the store.
	if at, err := get(m, false); err != nil || at != "at2" || fs.count.Load() != 3 {
		t.Fatalf("Token after a failed Fresh: %q %v after %d requests, want at2 kept", at, err, fs.count.Load())
	}
	if at, err := get(NewManager(store, nil), false); err != nil || at != "at2" || fs.count.Load() != 3 {
		t.Fatalf("another process after a failed Fresh: %q %v after %d requests, want at2 from the store", at, err, fs.count.Load())
	}
}

func TestManagerBindingDropsCache(t *testing.T) {
	// A token obtained with other settings is not used: each change below
	// makes the next Token call ask the server, in the same process (the
	// memory cache) and in another one (the Store).
	fs := newFakeServer(t, func(n int64, _ *http.Request, _ url.Values) (int, http.Header, string) {
		return 200, nil, okJSON(fmt.Sprintf("at%d", n), "", 3600)
	})
	changes := []struct {
		name   string
		change func(p *Profile)
	}{
		{"client secret", func(p *Profile) { p.ClientSecret = "wrong" }},
		{"client id", func(p *Profile) { p.ClientID = "other-client" }},
		{"tenant", func(p *Profile) { p.Tenant = "other-tenant" }},
		{"token url", func(p *Profile) { p.TokenURL = fs.URL + "/other" }},
		{"username", func(p *Profile) { p.Username = "someone-else" }},
		{"password", func(p *Profile) { p.Password = "new-password" }},
		{"grant", func(p *Profile) { p.Grant = GrantPassword }},
		{"auth style", func(p *Profile) { p.AuthStyle = AuthStyleBasic }},
		{"scopes", func(p *Profile) { p.Scopes = []string{"mail", "other"} }},
	}
	for _, tt := range changes {
		t.Run(tt.name, func(t *testing.T) {
			for _, sameProcess := range []bool{true, false} {
				store := NewMemoryStore()
				m := NewManager(store, nil)
				p := genericProfile(fs.URL, GrantClientCredentials)
				first, err := m.Token(t.Context(), p, nil)
				if err != nil {
					t.Fatal(err)
				}
				if !sameProcess {
					m = NewManager(store, nil)
					// unchanged, the stored token is used
					if tok, err := m.Token(t.Context(), p, nil); err != nil || tok.AccessToken != first.AccessToken {
						t.Fatalf("unchanged profile in another process: %v %v, want %s from the store", tok, err, first.AccessToken)
					}
				}
				before := fs.count.Load()
				changed := *p
				tt.change(&changed)
				tok, err := m.Token(t.Context(), &changed, nil)
				if err != nil {
					t.Fatal(err)
				}
				if tok.AccessToken == first.AccessToken || fs.count.Load() != before+1 {
					t.Errorf("same process %v: after the change got %s (first %s) with %d new requests, want a new token from one request",
						sameProcess, tok.AccessToken, first.AccessToken, fs.count.Load()-before)
				}
			}
		})
	}
}

func TestManagerRefreshTokenBinding(t *testing.T) {
	// A refresh token survives a secret rotation but not a move to another
	// client: it is bound to what the server binds it to.
	fs := newFakeServer(t, func(n int64, _ *http.Request, form url.Values) (int, http.Header, string) {
		return 200, nil, okJSON(fmt.Sprintf("at%d", n), fmt.Sprintf("rt%d", n), 3600)
	})
	store := NewMemoryStore()
	if err := store.SaveRefreshToken(t.Context(), "gen", "rt0"); err != nil { // imported: no binding
		t.Fatal(err)
	}
	p := genericProfile(fs.URL, GrantRefreshToken)
	if _, err := NewManager(store, nil).Token(t.Context(), p, nil); err != nil {
		t.Fatalf("an unbound (imported) refresh token must be used: %v", err)
	}
	if got := fs.form(0).Get("refresh_token"); got != "rt0" {
		t.Fatalf("first refresh sent %q, want rt0", got)
	}
	rotated := *p
	rotated.ClientSecret = "rotated-secret"
	if _, err := NewManager(store, nil).Token(t.Context(), &rotated, nil); err != nil {
		t.Fatalf("after a secret rotation: %v", err)
	}
	if fs.count.Load() != 2 {
		t.Fatalf("after a secret rotation: %d requests, want a second one (the access token was obtained with the old secret)", fs.count.Load())
	}
	if got := fs.form(1).Get("refresh_token"); got != "rt1" {
		t.Fatalf("after a secret rotation the refresh sent %q, want rt1 (the sign-in is kept)", got)
	}
	moved := rotated
	moved.ClientID = "another-app"
	_, err := NewManager(store, nil).Token(t.Context(), &moved, nil)
	if !errors.Is(err, ErrLoginRequired) || fs.count.Load() != 2 {
		t.Fatalf("after a client id change: %v after %d requests, want login required without a request", err, fs.count.Load())
	}
}

func TestUnbind(t *testing.T) {
	tests := []struct{ stored, binding, value string }{
		{bind("abc", "eyJ0.x.y"), "abc", "eyJ0.x.y"},
		{bind("abc", "a:b:c"), "abc", "a:b:c"},
		{"0.AAAA-legacy-refresh-token", "", "0.AAAA-legacy-refresh-token"},
		{"mailgate-binding-v1:no-separator", "", "mailgate-binding-v1:no-separator"},
		{"", "", ""},
	}
	for _, tt := range tests {
		if b, v := unbind(tt.stored); b != tt.binding || v != tt.value {
			t.Errorf("unbind(%q) = %q, %q; want %q, %q", tt.stored, b, v, tt.binding, tt.value)
		}
	}
	p := genericProfile("https://idp.example/token", GrantAuthorizationCode)
	rotated := *p
	rotated.ClientSecret = "rotated"
	if p.accessBinding() == rotated.accessBinding() || p.refreshBinding() != rotated.refreshBinding() {
		t.Error("a secret rotation must change the access binding and keep the refresh binding")
	}
	if s := p.accessBinding() + p.refreshBinding(); strings.Contains(s, p.ClientSecret) || strings.Contains(s, p.Password) {
		t.Error("a binding shows a secret")
	}
}
