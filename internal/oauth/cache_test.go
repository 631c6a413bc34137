package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
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
	if rt, _ := store.LoadRefreshToken(t.Context(), "gen"); rt != "pw-rt" {
		t.Errorf("stored refresh token %q", rt)
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
	if rt, _ := store.LoadRefreshToken(t.Context(), p.Name); rt != "rt" {
		t.Errorf("stored refresh token %q", rt)
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

func TestManagerSourceAndWaiterCancel(t *testing.T) {
	release := make(chan struct{})
	var started atomic.Int64
	fs := newFakeServer(t, func(n int64, _ *http.Request, _ url.Values) (int, http.Header, string) {
		started.Add(1)
		<-release
		return 200, nil, okJSON("slow-at", "", 3600)
	})
	m := NewManager(nil, nil)
	src := m.Source(genericProfile(fs.URL, GrantClientCredentials), nil)
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { _, err := src.Token(ctx); errc <- err }()
	for started.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	tokc := make(chan *Token, 1)
	go func() { tok, _ := src.Token(t.Context()); tokc <- tok }()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter got %v", err)
	}
	close(release)
	if tok := <-tokc; tok == nil || tok.AccessToken != "slow-at" {
		t.Fatalf("other waiter got %v", tok)
	}
	if fs.count.Load() != 1 {
		t.Errorf("%d requests", fs.count.Load())
	}
}
