package oauth

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestPastedCode(t *testing.T) {
	a := &AuthorizationRequest{State: "st8", RedirectURI: "http://127.0.0.1:8401/"}
	tests := []struct {
		name, pasted, code string
		err                error
		oauthErr           string
	}{
		{"redirect URL", "http://127.0.0.1:8401/?state=st8&code=4/0Abc&scope=https://mail.google.com/\n", "4/0Abc", nil, ""},
		{"surrounded by spaces", "  http://localhost/?code=c1&state=st8  ", "c1", nil, ""},
		{"only the query", "code=c1&state=st8", "c1", nil, ""},
		{"with a fragment", "http://localhost/?code=c1&state=st8#_=_", "c1", nil, ""},
		{"bare code", "4/0AbcDEF-ghi\n", "4/0AbcDEF-ghi", nil, ""},
		{"wrong state", "http://127.0.0.1:8401/?state=other&code=c1", "", ErrStateMismatch, ""},
		{"no state", "http://127.0.0.1:8401/?code=c1", "", ErrStateMismatch, ""},
		{"denied", "http://127.0.0.1:8401/?error=access_denied&state=st8", "", nil, "access_denied"},
		{"empty", "\n", "", ErrNothingPasted, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, err := a.PastedCode(tt.pasted)
			var oe *Error
			switch {
			case tt.oauthErr != "":
				if !errors.As(err, &oe) || oe.Code != tt.oauthErr || oe.Endpoint != "authorize" {
					t.Fatalf("err = %v, want %s", err, tt.oauthErr)
				}
			case tt.err != nil:
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
			case err != nil || code != tt.code:
				t.Fatalf("PastedCode = %q, %v; want %q", code, err, tt.code)
			}
		})
	}
}

func FuzzPastedCode(f *testing.F) {
	for _, s := range []string{"http://127.0.0.1:8401/?state=st8&code=4/0Abc", "c1", "code=x&state=st8", "?error=access_denied&state=st8", "%zz?=&", ""} {
		f.Add(s)
	}
	a := &AuthorizationRequest{State: "st8"}
	f.Fuzz(func(t *testing.T, s string) {
		code, err := a.PastedCode(s)
		if err == nil && code == "" {
			t.Fatalf("no error and no code for %q", s)
		}
		if err == nil && strings.ContainsAny(strings.TrimSpace(s), "?&=") {
			// a pasted address is only accepted with our state
			q := strings.TrimSpace(s)
			if i := strings.IndexByte(q, '?'); i >= 0 {
				q = q[i+1:]
			}
			q, _, _ = strings.Cut(q, "#")
			v, perr := url.ParseQuery(q)
			if perr != nil || v.Get("state") != "st8" {
				t.Fatalf("accepted %q without the state", s)
			}
		}
	})
}

// TestPasteLogin: the URL goes out with PKCE and a state, the pasted
// redirect URL comes in, the code is redeemed with the same redirect URI
// and verifier, and the refresh token is stored; a wrong state redeems
// nothing.
func TestPasteLogin(t *testing.T) {
	fs := newFakeServer(t, func(int64, *http.Request, url.Values) (int, http.Header, string) {
		return 200, nil, okJSON("at-1", "rt-1", 3600)
	})
	p := &Profile{Name: "gmail", Provider: ProviderGoogle, Grant: GrantAuthorizationCode, ClientID: "c.apps.googleusercontent.com",
		ClientSecret: "s", TokenURL: fs.URL + "/token", AuthorizeURL: fs.URL + "/auth", Scopes: []string{"https://mail.google.com/"},
		RedirectURI: "http://127.0.0.1:8401/"}
	for _, tt := range []struct {
		name  string
		state func(string) string
		ok    bool
	}{
		{"wrong state", func(string) string { return "forged" }, false},
		{"pasted URL", func(s string) string { return s }, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			store := NewMemoryStore()
			m := NewManager(store, nil)
			inR, inW := io.Pipe()
			outR, outW := io.Pipe()
			type res struct {
				tok *Token
				err error
			}
			done := make(chan res, 1)
			go func() {
				tok, err := m.PasteLogin(t.Context(), p, inR, outW, "")
				outW.Close()
				done <- res{tok, err}
			}()
			var authURL *url.URL
			sc := bufio.NewScanner(outR)
			for sc.Scan() {
				if l := strings.TrimSpace(sc.Text()); strings.HasPrefix(l, fs.URL+"/auth?") {
					authURL, _ = url.Parse(l)
					break
				}
			}
			go io.Copy(io.Discard, outR)
			if authURL == nil {
				t.Fatal("no authorization URL printed")
			}
			q := authURL.Query()
			if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("state") == "" ||
				q.Get("redirect_uri") != p.RedirectURI || q.Get("access_type") != "offline" {
				t.Fatalf("authorization URL %s", authURL)
			}
			io.WriteString(inW, "http://127.0.0.1:8401/?state="+url.QueryEscape(tt.state(q.Get("state")))+"&code=the-code&scope=x\n")
			r := <-done
			if !tt.ok {
				if !errors.Is(r.err, ErrStateMismatch) || fs.count.Load() != 0 {
					t.Fatalf("wrong state: %v, %d token requests", r.err, fs.count.Load())
				}
				return
			}
			if r.err != nil || r.tok.AccessToken != "at-1" {
				t.Fatalf("PasteLogin = %v, %v", r.tok, r.err)
			}
			form := fs.form(int(fs.count.Load()) - 1)
			if form.Get("code") != "the-code" || form.Get("redirect_uri") != p.RedirectURI || challengeS256(form.Get("code_verifier")) != q.Get("code_challenge") {
				t.Errorf("redemption form %v", form)
			}
			if rt, err := store.LoadRefreshToken(t.Context(), "gmail"); err != nil || !strings.HasSuffix(rt, ":rt-1") {
				t.Errorf("stored refresh token %q, %v", rt, err)
			}
		})
	}
}
