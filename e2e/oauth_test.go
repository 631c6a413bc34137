package e2e

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/app"
	"github.com/mailgate/mailgate/internal/emulator"
	"github.com/mailgate/mailgate/internal/oauth"
	"github.com/mailgate/mailgate/internal/store"
)

// emu starts an in-process emulator for one test.
func emu(t *testing.T) *emulator.Server {
	t.Helper()
	srv, err := emulator.Start(t.Context(), emulator.Options{IMAPListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// profile is a profile of the demo tenant pointing at srv.
func profile(t *testing.T, srv *emulator.Server, name string) *oauth.Profile {
	t.Helper()
	client, err := oauth.NewHTTPClient(oauth.HTTPOptions{CAFile: srv.CAFile()})
	if err != nil {
		t.Fatal(err)
	}
	return &oauth.Profile{Name: name, Provider: "microsoft", Grant: "client_credentials", Tenant: emulator.DemoTenantID,
		ClientID: emulator.DemoAppID, ClientSecret: emulator.DemoAppSecret, Authority: srv.URL(), HTTPClient: client,
		Scopes: []string{"https://outlook.office365.com/.default"}}
}

func demoCert(t *testing.T, srv *emulator.Server, alg string) *oauth.ClientCertificate {
	t.Helper()
	certPEM, err := os.ReadFile(filepath.Join(srv.Dir(), "app-cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(srv.Dir(), "app-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := oauth.LoadClientCertificate(certPEM, keyPEM, alg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sqliteStore is a real encrypted store in a temp dir.
func sqliteStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	key, err := store.LoadKey(filepath.Join(dir, "key"), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(t.Context(), "sqlite:"+filepath.Join(dir, "mailgate.db"), &store.Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

var formReq = regexp.MustCompile(`name="req" value="([^"]+)"`)

// signIn plays the user in a browser: it opens the authorization URL, signs
// in on the emulator's pages and follows the redirect to mailgate's loopback
// listener.
func signIn(t *testing.T, srv *emulator.Server, user, password string) func(string) error {
	return func(authURL string) error {
		loc, err := entraSignIn(srv, authURL, user, password)
		if err != nil {
			return err
		}
		go func() { // the browser lands on mailgate's listener
			r, err := http.Get(loc)
			if err == nil {
				r.Body.Close()
			}
		}()
		return nil
	}
}

// entraSignIn opens the authorization URL, signs user in on the emulated
// Entra ID's pages and returns the address the browser is sent back to.
func entraSignIn(srv *emulator.Server, authURL, user, password string) (string, error) {
	c := srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Get(authURL)
	if err != nil {
		return "", err
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := formReq.FindSubmatch(page)
	if m == nil {
		return "", errors.New("no sign-in form: " + string(page))
	}
	u, _ := url.Parse(authURL)
	tenant := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")[0]
	resp, err = c.PostForm(srv.URL()+"/"+tenant+"/login", url.Values{"req": {string(m[1])}, "username": {user}, "password": {password}})
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || loc == "" {
		return "", errors.New("sign-in did not redirect")
	}
	return loc, nil
}

// TestGrantsAgainstEmulator obtains a token with every grant from the
// emulator through the oauth engine and checks what the resource sees.
func TestGrantsAgainstEmulator(t *testing.T) {
	srv := emu(t)
	srv.Tenant().SetDeviceInterval(time.Second)
	mgr := oauth.NewManager(app.TokenStore(sqliteStore(t, t.TempDir())), nil)
	delegated := []string{"https://outlook.office.com/IMAP.AccessAsUser.All", "offline_access"}
	tests := []struct {
		name    string
		edit    func(*oauth.Profile)
		obtain  func(*oauth.Profile) (*oauth.Token, error)
		wantAud string
		wantUPN string
	}{
		{name: "client secret", wantAud: "https://outlook.office365.com"},
		{name: "certificate PS256", edit: func(p *oauth.Profile) { p.ClientSecret, p.Certificate = "", demoCert(t, srv, "PS256") }, wantAud: "https://outlook.office365.com"},
		{name: "certificate RS256", edit: func(p *oauth.Profile) { p.ClientSecret, p.Certificate = "", demoCert(t, srv, "RS256") }, wantAud: "https://outlook.office365.com"},
		{name: "v1 endpoint", edit: func(p *oauth.Profile) { p.EndpointVersion = "v1" }, wantAud: "https://outlook.office365.com"},
		{name: "graph", edit: func(p *oauth.Profile) { p.Scopes = []string{"https://graph.microsoft.com/.default"} }, wantAud: "https://graph.microsoft.com"},
		{name: "password", edit: func(p *oauth.Profile) {
			p.Grant, p.ClientID, p.ClientSecret, p.Username, p.Password, p.Scopes = "password", emulator.DemoPublicAppID, "", emulator.DemoUser, emulator.DemoUserPassword, delegated
		}, wantAud: "https://outlook.office.com", wantUPN: emulator.DemoUser},
		{name: "authorization code", edit: func(p *oauth.Profile) {
			p.Grant, p.ClientID, p.ClientSecret, p.Scopes, p.RedirectURI = "authorization_code", emulator.DemoPublicAppID, "", delegated, "http://localhost/"
		}, obtain: func(p *oauth.Profile) (*oauth.Token, error) {
			return mgr.Login(t.Context(), p, oauth.LoginOptions{Out: io.Discard, OpenBrowser: signIn(t, srv, emulator.DemoUser, emulator.DemoUserPassword), Timeout: 20 * time.Second})
		}, wantAud: "https://outlook.office.com", wantUPN: emulator.DemoUser},
		{name: "device code", edit: func(p *oauth.Profile) {
			p.Grant, p.ClientID, p.ClientSecret, p.Scopes = "device_code", emulator.DemoPublicAppID, "", delegated
		}, obtain: func(p *oauth.Profile) (*oauth.Token, error) {
			return mgr.DeviceLogin(t.Context(), p, func(d oauth.DeviceAuth) {
				if err := srv.ApproveDevice(d.UserCode, emulator.DemoMFAUser); err != nil {
					t.Error(err)
				}
			})
		}, wantAud: "https://outlook.office.com", wantUPN: emulator.DemoMFAUser},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := profile(t, srv, strings.ReplaceAll(tt.name, " ", "-"))
			if tt.edit != nil {
				tt.edit(p)
			}
			var tok *oauth.Token
			var err error
			if tt.obtain != nil {
				tok, err = tt.obtain(p)
			} else {
				tok, err = mgr.Token(t.Context(), p, nil)
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, oauth.ExplainFor(err, p))
			}
			c, err := srv.VerifyAccessToken(tok.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			if c.Aud != tt.wantAud || c.Upn != tt.wantUPN {
				t.Errorf("aud %q upn %q, want %q %q", c.Aud, c.Upn, tt.wantAud, tt.wantUPN)
			}
			if tt.wantUPN != "" {
				// the refresh token was stored: a later Token call works without the user
				mgr.Invalidate(p.Name, nil)
				srv.SetClock(func() time.Time { return time.Now().Add(2 * time.Hour) })
				defer srv.SetClock(nil)
				again, err := mgr.Token(t.Context(), p, nil)
				if err != nil {
					t.Fatalf("token after login: %v", err)
				}
				if again.AccessToken == tok.AccessToken {
					t.Error("Invalidate did not force a new token")
				}
			}
		})
	}
}

// TestAADSTSExplained provokes the errors administrators hit and checks
// each comes back typed, with its AADSTS number and a fix.
func TestAADSTSExplained(t *testing.T) {
	srv := emu(t)
	otherPEM, otherKey, err := oauth.NewSelfSignedCertificate("not-registered", 2048, 30)
	if err != nil {
		t.Fatal(err)
	}
	other, err := oauth.LoadClientCertificate(otherPEM, otherKey, "")
	if err != nil {
		t.Fatal(err)
	}
	user := func(p *oauth.Profile) {
		p.Grant, p.ClientID, p.ClientSecret, p.Username, p.Password = "password", emulator.DemoPublicAppID, "", emulator.DemoUser, emulator.DemoUserPassword
		p.Scopes = []string{"https://outlook.office.com/IMAP.AccessAsUser.All", "offline_access"}
	}
	tests := []struct {
		aadsts int
		edit   func(*oauth.Profile)
		clock  time.Duration
	}{
		{7000215, func(p *oauth.Profile) { p.ClientSecret = emulator.DemoAppSecretID }, 0},
		{7000222, func(p *oauth.Profile) { p.ClientSecret = emulator.DemoExpiredSecret }, 0},
		{700016, func(p *oauth.Profile) { p.ClientID = "12345678-1234-4234-8234-123456789012" }, 0},
		{90002, func(p *oauth.Profile) { p.Tenant = "fabrikam.example" }, 0},
		{1002012, func(p *oauth.Profile) { p.Scopes = []string{"https://outlook.office365.com/IMAP.AccessAsApp"} }, 0},
		{500011, func(p *oauth.Profile) { p.Scopes = []string{"https://mail.example.com/.default"} }, 0},
		{70011, func(p *oauth.Profile) { user(p); p.Scopes = []string{"https://outlook.office.com/IMAP.Everything"} }, 0},
		{65001, func(p *oauth.Profile) { user(p); p.Scopes = []string{"Mail.Read"} }, 0},
		{700027, func(p *oauth.Profile) { p.ClientSecret, p.Certificate = "", other }, 0},
		{700024, func(p *oauth.Profile) { p.ClientSecret, p.Certificate = "", demoCert(t, srv, "") }, time.Hour},
		{50126, func(p *oauth.Profile) { user(p); p.Password = "Summer2026!" }, 0},
		{50076, func(p *oauth.Profile) {
			user(p)
			p.Username, p.Password = emulator.DemoMFAUser, emulator.DemoMFAUserPassword
		}, 0},
		{50057, func(p *oauth.Profile) { user(p); p.Username, p.Password = emulator.DemoDisabledUser, "Former-Passw0rd" }, 0},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.aadsts), func(t *testing.T) {
			mgr := oauth.NewManager(oauth.NewMemoryStore(), nil)
			p := profile(t, srv, "p")
			tt.edit(p)
			if tt.clock != 0 {
				srv.SetClock(func() time.Time { return time.Now().Add(tt.clock) })
				defer srv.SetClock(nil)
			}
			_, err := mgr.Token(t.Context(), p, nil)
			var oe *oauth.Error
			if !errors.As(err, &oe) {
				t.Fatalf("want *oauth.Error, got %v", err)
			}
			if oe.AADSTS() != tt.aadsts {
				t.Fatalf("AADSTS%d, want %d: %v", oe.AADSTS(), tt.aadsts, err)
			}
			ex, ok := oauth.ExplainError(err, p)
			if !ok || ex.AADSTS != tt.aadsts || ex.Fix == "" || ex.Meaning == "" {
				t.Errorf("explanation %+v %v", ex, ok)
			}
			if strings.Contains(err.Error(), emulator.DemoAppSecret) || strings.Contains(ex.String(), emulator.DemoAppSecret) {
				t.Error("the error shows the secret")
			}
		})
	}
}

// TestOneRequestForConcurrentCallers: 50 callers with a cold cache cause
// one token request.
func TestOneRequestForConcurrentCallers(t *testing.T) {
	srv := emu(t)
	srv.InjectFault(emulator.Fault{Delay: 200 * time.Millisecond, Count: 1, Route: "token"})
	mgr := oauth.NewManager(app.TokenStore(sqliteStore(t, t.TempDir())), nil)
	p := profile(t, srv, "shared")
	var wg sync.WaitGroup
	toks := make([]string, 50)
	for i := range toks {
		wg.Go(func() {
			tok, err := mgr.Token(t.Context(), p, nil)
			if err != nil {
				t.Error(err)
				return
			}
			toks[i] = tok.AccessToken
		})
	}
	wg.Wait()
	if n := srv.TokenRequests(); n != 1 {
		t.Errorf("%d token requests for 50 concurrent callers, want 1", n)
	}
	for _, tok := range toks {
		if tok != toks[0] {
			t.Fatal("callers got different tokens")
		}
	}
}

// TestRefreshWithinMargin: a token is replaced once when it enters the
// refresh margin, and not before.
func TestRefreshWithinMargin(t *testing.T) {
	srv := emu(t)
	srv.SetTokenLifetime(time.Hour)
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	mgr := oauth.NewManager(app.TokenStore(sqliteStore(t, t.TempDir())), &oauth.ManagerOptions{Now: clock})
	p := profile(t, srv, "margin")
	first, err := mgr.Token(t.Context(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	advance(50 * time.Minute) // 10 min left: outside the 5 min margin
	for range 5 {
		if tok, err := mgr.Token(t.Context(), p, nil); err != nil || tok.AccessToken != first.AccessToken {
			t.Fatalf("refreshed before the margin: %v", err)
		}
	}
	advance(6 * time.Minute) // 4 min left: inside
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if _, err := mgr.Token(t.Context(), p, nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := srv.TokenRequests(); n != 2 {
		t.Errorf("%d token requests, want 2 (first + one refresh)", n)
	}
}

// TestRotatedRefreshTokenKept: with strict rotation (an exchanged refresh
// token stops working) the engine must always hold the newest one.
func TestRotatedRefreshTokenKept(t *testing.T) {
	srv := emu(t)
	srv.Tenant().SetRotationRevokesOld(true)
	dir := t.TempDir()
	st := sqliteStore(t, dir)
	mgr := oauth.NewManager(app.TokenStore(st), nil)
	p := profile(t, srv, "rotating")
	p.Grant, p.ClientID, p.ClientSecret, p.Username, p.Password = "password", emulator.DemoPublicAppID, "", emulator.DemoUser, emulator.DemoUserPassword
	p.Scopes = []string{"https://outlook.office.com/IMAP.AccessAsUser.All", "offline_access"}
	p.Password = emulator.DemoUserPassword
	if _, err := mgr.Token(t.Context(), p, nil); err != nil {
		t.Fatal(err)
	}
	// from now on only the refresh token can get tokens: the password changed
	srv.Tenant().AddUser(emulator.User{UPN: emulator.DemoUser, Password: "changed-" + emulator.DemoUserPassword})
	for i := range 3 {
		mgr.Invalidate(p.Name, nil)
		srv.SetClock(func() time.Time { return time.Now().Add(time.Duration(i+1) * 2 * time.Hour) })
		if _, err := mgr.Token(t.Context(), p, nil); err != nil {
			t.Fatalf("refresh %d: %v", i, err)
		}
	}
	srv.SetClock(nil)
	// a new process (new Manager on the same store) continues the chain
	mgr2 := oauth.NewManager(app.TokenStore(st), nil)
	mgr2.Invalidate(p.Name, nil)
	if _, err := mgr2.Token(t.Context(), p, []string{"https://outlook.office.com/SMTP.Send", "offline_access"}); err != nil {
		t.Fatalf("refresh from a new manager: %v", err)
	}
}

func openStore(ctx context.Context, dir string, key []byte) (*store.Store, error) {
	return store.Open(ctx, "sqlite:"+filepath.Join(dir, "mailgate.db"), &store.Options{Key: key})
}
