package oauth

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAuthorizer is a generic provider with an authorize endpoint that
// redirects at once (as after a sign-in) and a token endpoint that checks
// the PKCE verifier.
type fakeAuthorizer struct {
	mu        sync.Mutex
	challenge string
	redirect  string
	fs        *fakeServer
}

func newFakeAuthorizer(t *testing.T) *fakeAuthorizer {
	fa := &fakeAuthorizer{}
	fa.fs = newFakeServer(t, func(n int64, r *http.Request, form url.Values) (int, http.Header, string) {
		fa.mu.Lock()
		defer fa.mu.Unlock()
		if r.URL.Path == "/auth" {
			q := r.URL.Query()
			fa.challenge, fa.redirect = q.Get("code_challenge"), q.Get("redirect_uri")
			loc := q.Get("redirect_uri") + "?code=the-code&state=" + url.QueryEscape(q.Get("state"))
			if q.Get("login_hint") == "deny" {
				loc = q.Get("redirect_uri") + "?error=access_denied&error_description=AADSTS65004%3A+User+declined&state=" + url.QueryEscape(q.Get("state"))
			}
			return http.StatusFound, http.Header{"Location": {loc}}, ""
		}
		if form.Get("code") != "the-code" || challengeS256(form.Get("code_verifier")) != fa.challenge || form.Get("redirect_uri") != fa.redirect {
			return 400, nil, `{"error":"invalid_grant","error_description":"AADSTS501481: The Code_Verifier does not match the code_challenge supplied in the authorization request.","error_codes":[501481]}`
		}
		return 200, nil, okJSON("login-at", "login-rt", 3600)
	})
	return fa
}

func (fa *fakeAuthorizer) profile() *Profile {
	return &Profile{Name: "user", Provider: ProviderGeneric, Grant: GrantAuthorizationCode, ClientID: "native",
		TokenURL: fa.fs.URL + "/token", AuthorizeURL: fa.fs.URL + "/auth", Scopes: []string{"mail"}}
}

// browse follows the authorization URL like a browser would.
func browse(ctx context.Context, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return errors.New(string(body))
	}
	return nil
}

func TestLogin(t *testing.T) {
	fa := newFakeAuthorizer(t)
	var out bytes.Buffer
	var pages []string
	opened := ""
	tok, err := Login(t.Context(), fa.profile(), LoginOptions{
		Out: &out,
		OpenBrowser: func(u string) error {
			opened = u
			// A stray answer with the wrong state first: refused, the
			// login keeps waiting.
			redirect := fa.profileRedirect(u)
			resp, err := http.Get(redirect + "?code=x&state=forged")
			if err != nil {
				return err
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			pages = append(pages, resp.Status+" "+string(b))
			go browse(context.Background(), u)
			return nil
		},
	})
	if err != nil {
		t.Fatalf("Login: %v\n%s", err, out.String())
	}
	if tok.AccessToken != "login-at" || tok.RefreshToken != "login-rt" {
		t.Errorf("token %v", tok)
	}
	if !strings.Contains(out.String(), opened) || opened == "" {
		t.Errorf("the URL was not printed:\n%s", out.String())
	}
	if len(pages) != 1 || !strings.HasPrefix(pages[0], "400") || !strings.Contains(pages[0], "state mismatch") {
		t.Errorf("forged answer page: %q", pages)
	}
	if !strings.HasPrefix(fa.redirect, "http://localhost:") || strings.HasSuffix(fa.redirect, ":0") {
		t.Errorf("redirect URI %q: want localhost with the bound port", fa.redirect)
	}
}

// profileRedirect extracts redirect_uri from an authorization URL.
func (fa *fakeAuthorizer) profileRedirect(authURL string) string {
	u, _ := url.Parse(authURL)
	return u.Query().Get("redirect_uri")
}

func TestLoginFailures(t *testing.T) {
	t.Run("denied", func(t *testing.T) {
		fa := newFakeAuthorizer(t)
		p := fa.profile()
		p.Username = "deny"
		_, err := Login(t.Context(), p, LoginOptions{OpenBrowser: func(u string) error { go browse(context.Background(), u); return nil }})
		var oe *Error
		if !errors.As(err, &oe) || oe.Code != "access_denied" || oe.Endpoint != "authorize" {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		fa := newFakeAuthorizer(t)
		var out bytes.Buffer
		_, err := Login(t.Context(), fa.profile(), LoginOptions{Out: &out, NoBrowser: true, Timeout: 50 * time.Millisecond})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("no display", func(t *testing.T) {
		fa := newFakeAuthorizer(t)
		var out bytes.Buffer
		_, err := Login(t.Context(), fa.profile(), LoginOptions{Out: &out, Getenv: func(string) string { return "" }, Timeout: 50 * time.Millisecond})
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(out.String(), "no browser opened") {
			t.Fatalf("err %v, out %s", err, out.String())
		}
	})
	t.Run("https redirect refused", func(t *testing.T) {
		fa := newFakeAuthorizer(t)
		_, err := Login(t.Context(), fa.profile(), LoginOptions{RedirectURI: "https://app.example/cb"})
		if err == nil || !strings.Contains(err.Error(), "must be http on localhost") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("fixed port and path", func(t *testing.T) {
		fa := newFakeAuthorizer(t)
		l, uri := freePortURI(t)
		l.Close()
		tok, err := Login(t.Context(), fa.profile(), LoginOptions{RedirectURI: uri + "/callback",
			OpenBrowser: func(u string) error { go browse(context.Background(), u); return nil }})
		if err != nil || tok.AccessToken != "login-at" {
			t.Fatalf("tok %v err %v", tok, err)
		}
		if fa.redirect != uri+"/callback" {
			t.Errorf("redirect %q, want %q", fa.redirect, uri+"/callback")
		}
	})
}

// freePortURI finds a free loopback port.
func freePortURI(t *testing.T) (net.Listener, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l, "http://" + l.Addr().String()
}
