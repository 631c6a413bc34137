package oauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeServer is a scripted RFC 6749 server for behaviour the emulator does
// not model (Google's non-rotation, form answers, slow_down, Basic auth).
type fakeServer struct {
	*httptest.Server
	mu       sync.Mutex
	requests []*http.Request
	forms    []url.Values
	count    atomic.Int64
	answer   func(n int64, r *http.Request, form url.Values) (status int, header http.Header, body string)
}

func newFakeServer(t *testing.T, answer func(n int64, r *http.Request, form url.Values) (int, http.Header, string)) *fakeServer {
	t.Helper()
	fs := &fakeServer{answer: answer}
	fs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := fs.count.Add(1)
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		fs.mu.Lock()
		fs.requests = append(fs.requests, r)
		fs.forms = append(fs.forms, form)
		fs.mu.Unlock()
		status, h, out := fs.answer(n, r, form)
		for k, v := range h {
			w.Header()[k] = v
		}
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		io.WriteString(w, out)
	}))
	t.Cleanup(fs.Close)
	return fs
}

func (fs *fakeServer) form(i int) url.Values {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.forms[i]
}

func (fs *fakeServer) request(i int) *http.Request {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.requests[i]
}

func okJSON(access, refresh string, expiresIn int) string {
	m := map[string]any{"access_token": access, "token_type": "Bearer", "expires_in": expiresIn}
	if refresh != "" {
		m["refresh_token"] = refresh
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func TestClientSecretAuthStyles(t *testing.T) {
	const secret = "s3cr:t%+/ é"
	tests := []struct {
		style     AuthStyle
		wantBasic bool
	}{
		{"", false},
		{AuthStyleParams, false},
		{AuthStyleBasic, true},
	}
	for _, tt := range tests {
		t.Run(string(tt.style), func(t *testing.T) {
			fs := newFakeServer(t, func(int64, *http.Request, url.Values) (int, http.Header, string) {
				return 200, nil, okJSON("at", "", 3600)
			})
			p := &Profile{Name: "g", Provider: ProviderGeneric, TokenURL: fs.URL + "/token", ClientID: "my client",
				ClientSecret: secret, AuthStyle: tt.style, Scopes: []string{"a", "b"}}
			if _, err := ClientCredentials(t.Context(), p, nil); err != nil {
				t.Fatal(err)
			}
			r, form := fs.request(0), fs.form(0)
			if form.Get("grant_type") != "client_credentials" || form.Get("scope") != "a b" {
				t.Errorf("form %v", form)
			}
			if r.Header.Get("Origin") != "" {
				t.Errorf("Origin header sent")
			}
			user, pass, hasBasic := r.BasicAuth()
			if hasBasic != tt.wantBasic {
				t.Fatalf("basic auth present = %v", hasBasic)
			}
			if tt.wantBasic {
				// RFC 6749 §2.3.1: form-URL-encoded before Basic encoding.
				if user != url.QueryEscape("my client") || pass != url.QueryEscape(secret) {
					t.Errorf("basic user %q pass %q", user, pass)
				}
				if dec, _ := url.QueryUnescape(pass); dec != secret {
					t.Errorf("secret does not survive the round trip: %q", dec)
				}
				if form.Has("client_secret") || form.Has("client_id") {
					t.Errorf("credentials in the body too: %v", form)
				}
			} else if form.Get("client_secret") != secret || form.Get("client_id") != "my client" {
				t.Errorf("body credentials %v", form)
			}
		})
	}
}

func TestRefreshKeepsOldTokenWhenNoneReturned(t *testing.T) {
	// Google: a refresh answer without refresh_token means keep the old one.
	fs := newFakeServer(t, func(n int64, _ *http.Request, form url.Values) (int, http.Header, string) {
		return 200, nil, okJSON(fmt.Sprintf("at%d", n), "", 3599)
	})
	p := &Profile{Name: "g", Provider: ProviderGoogle, Grant: GrantAuthorizationCode, ClientID: "id", ClientSecret: "s",
		TokenURL: fs.URL, Scopes: []string{"https://mail.google.com/"}}
	tok, err := Refresh(t.Context(), p, "google-rt", nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken != "google-rt" {
		t.Errorf("refresh token %q, want the old one kept", tok.RefreshToken)
	}
	form := fs.form(0)
	if form.Get("grant_type") != "refresh_token" || form.Get("refresh_token") != "google-rt" || form.Get("scope") != "https://mail.google.com/" {
		t.Errorf("form %v", form)
	}

	// Through the Manager: the Store keeps the same refresh token and no
	// save happens for it.
	store := &countingStore{Store: NewMemoryStore()}
	store.SaveRefreshToken(t.Context(), "g", "google-rt")
	store.rtSaves.Store(0)
	m := NewManager(store, nil)
	if _, err := m.Token(t.Context(), p, nil); err != nil {
		t.Fatal(err)
	}
	if rt, _ := store.LoadRefreshToken(t.Context(), "g"); rt != "google-rt" || store.rtSaves.Load() != 0 {
		t.Errorf("stored %q after %d saves", rt, store.rtSaves.Load())
	}
}

// countingStore counts refresh-token saves and can fail them.
type countingStore struct {
	Store
	rtSaves atomic.Int64
	failRT  error
}

func (s *countingStore) SaveRefreshToken(ctx context.Context, profile, rt string) error {
	s.rtSaves.Add(1)
	if s.failRT != nil {
		return s.failRT
	}
	return s.Store.SaveRefreshToken(ctx, profile, rt)
}

func TestDeviceLoginPolling(t *testing.T) {
	var polls atomic.Int64
	fs := newFakeServer(t, func(n int64, r *http.Request, form url.Values) (int, http.Header, string) {
		if r.URL.Path == "/device" {
			return 200, nil, `{"device_code":"DEV","user_code":"ABCD-EFGH","verification_url":"https://www.google.com/device","expires_in":1800,"interval":2}`
		}
		if form.Get("grant_type") != DeviceGrantType || form.Get("device_code") != "DEV" {
			return 400, nil, `{"error":"invalid_request"}`
		}
		switch polls.Add(1) {
		case 1:
			return 428, nil, `{"error":"authorization_pending"}`
		case 2:
			return 400, nil, `{"error":"slow_down"}`
		case 3:
			return 503, http.Header{"Retry-After": {"30"}}, `{"error":"temporarily_unavailable"}`
		case 4:
			return 400, nil, `{"error":"authorization_pending"}`
		default:
			return 200, nil, okJSON("device-at", "device-rt", 3599)
		}
	})
	p := &Profile{Name: "d", Provider: ProviderGeneric, Grant: GrantDeviceCode, ClientID: "tv", ClientSecret: "tvs",
		TokenURL: fs.URL + "/token", DeviceAuthURL: fs.URL + "/device", Scopes: []string{"email"}}
	var prompted DeviceAuth
	var waits []time.Duration
	sleep := func(ctx context.Context, d time.Duration) error { waits = append(waits, d); return nil }
	tok, err := direct().deviceLogin(t.Context(), p, func(a DeviceAuth) { prompted = a }, sleep)
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "device-at" || tok.RefreshToken != "device-rt" {
		t.Errorf("token %v", tok)
	}
	if prompted.UserCode != "ABCD-EFGH" || prompted.VerificationURI != "https://www.google.com/device" || prompted.Interval != 2*time.Second {
		t.Errorf("prompt %+v", prompted)
	}
	want := []time.Duration{2 * time.Second, 2 * time.Second, 7 * time.Second, 30 * time.Second, 30 * time.Second}
	if fmt.Sprint(waits) != fmt.Sprint(want) {
		t.Errorf("waits %v, want %v (interval, +5s after slow_down, Retry-After after 503)", waits, want)
	}
	if f := fs.form(0); f.Get("client_id") != "tv" || f.Has("client_secret") || f.Get("scope") != "email" {
		t.Errorf("device authorization form %v", f)
	}
	if f := fs.form(1); f.Get("client_secret") != "tvs" {
		t.Errorf("poll form lacks the client secret: %v", f)
	}
}

func TestDeviceLoginEnds(t *testing.T) {
	tests := []struct {
		name    string
		answer  string
		wantErr error
		code    string
	}{
		{"expired_token", `{"error":"expired_token","error_description":"AADSTS70019: Verification code expired."}`, ErrDeviceCodeExpired, "expired_token"},
		{"declined", `{"error":"authorization_declined"}`, nil, "authorization_declined"},
		{"bad code", `{"error":"bad_verification_code","error_codes":[70018]}`, nil, "bad_verification_code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := newFakeServer(t, func(n int64, r *http.Request, form url.Values) (int, http.Header, string) {
				if r.URL.Path == "/device" {
					return 200, nil, `{"device_code":"D","user_code":"U","verification_uri":"https://x/devicelogin","expires_in":900}`
				}
				return 400, nil, tt.answer
			})
			p := &Profile{Name: "d", Provider: ProviderGeneric, Grant: GrantDeviceCode, ClientID: "c",
				TokenURL: fs.URL + "/token", DeviceAuthURL: fs.URL + "/device"}
			_, err := direct().deviceLogin(t.Context(), p, nil, func(context.Context, time.Duration) error { return nil })
			var oe *Error
			if !errors.As(err, &oe) || oe.Code != tt.code {
				t.Fatalf("err %v", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err %v is not %v", err, tt.wantErr)
			}
		})
	}

	// Our own deadline: the server keeps saying pending past expires_in.
	fs := newFakeServer(t, func(n int64, r *http.Request, form url.Values) (int, http.Header, string) {
		if r.URL.Path == "/device" {
			return 200, nil, `{"device_code":"D","user_code":"U","verification_uri":"https://x","expires_in":10,"interval":4}`
		}
		return 400, nil, `{"error":"authorization_pending"}`
	})
	p := &Profile{Name: "d", Provider: ProviderGeneric, Grant: GrantDeviceCode, ClientID: "c", TokenURL: fs.URL + "/token", DeviceAuthURL: fs.URL + "/device"}
	clock := newFakeClock()
	r := requester{now: clock.Now, wall: time.Now}
	_, err := r.deviceLogin(t.Context(), p, nil, func(_ context.Context, d time.Duration) error { clock.Advance(d); return nil })
	if !errors.Is(err, ErrDeviceCodeExpired) {
		t.Fatalf("err %v, want ErrDeviceCodeExpired", err)
	}
	if n := fs.count.Load(); n != 3 { // device code + polls at 4 s and 8 s
		t.Errorf("%d requests", n)
	}
}

func TestNewHTTPClient(t *testing.T) {
	var sawOrigin atomic.Bool
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Origin") != "" {
			sawOrigin.Store(true)
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, okJSON("tls-at", "", 3599))
	}))
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pemCert(srv.Certificate().Raw), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &Profile{Name: "g", Provider: ProviderGeneric, TokenURL: srv.URL + "/token", ClientID: "c", ClientSecret: "s"}

	t.Run("untrusted without the CA", func(t *testing.T) {
		c, err := NewHTTPClient(HTTPOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pp := *p
		pp.HTTPClient = c
		_, err = ClientCredentials(t.Context(), &pp, nil)
		if err == nil || !strings.Contains(Explain(err), "tls_ca") {
			t.Fatalf("err %v; explain %q", err, Explain(err))
		}
	})
	t.Run("trusted with CAFile, Origin stripped", func(t *testing.T) {
		c, err := NewHTTPClient(HTTPOptions{CAFile: caFile})
		if err != nil {
			t.Fatal(err)
		}
		pp := *p
		pp.HTTPClient = c
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL, nil)
		req.Header.Set("Origin", "https://evil.example")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if sawOrigin.Load() {
			t.Errorf("Origin header reached the server")
		}
		if _, err := ClientCredentials(t.Context(), &pp, nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("explicit proxy", func(t *testing.T) {
		proxy, connects := connectProxy(t)
		c, err := NewHTTPClient(HTTPOptions{CAFile: caFile, Proxy: proxy})
		if err != nil {
			t.Fatal(err)
		}
		pp := *p
		pp.HTTPClient = c
		if _, err := ClientCredentials(t.Context(), &pp, nil); err != nil {
			t.Fatal(err)
		}
		if connects.Load() != 1 {
			t.Errorf("%d CONNECTs through the proxy, want 1", connects.Load())
		}
	})
	t.Run("bad options", func(t *testing.T) {
		empty := filepath.Join(t.TempDir(), "empty.pem")
		os.WriteFile(empty, []byte("nothing"), 0o600)
		for _, tc := range []struct {
			name   string
			opts   HTTPOptions
			caFile bool // the refusal is a *CAFileError
		}{
			{"ftp proxy", HTTPOptions{Proxy: "ftp://x:21"}, false},
			{"proxy not a URL", HTTPOptions{Proxy: "http://", CAFile: caFile}, false},
			{"missing CA file", HTTPOptions{CAFile: filepath.Join(t.TempDir(), "missing.pem")}, true},
			{"CA file without certificates", HTTPOptions{CAFile: empty}, true},
			{"bad proxy and bad CA file", HTTPOptions{Proxy: "ftp://x:21", CAFile: empty}, false},
		} {
			_, err := NewHTTPClient(tc.opts)
			if err == nil {
				t.Errorf("%s: accepted", tc.name)
				continue
			}
			var ce *CAFileError
			if got := errors.As(err, &ce); got != tc.caFile {
				t.Errorf("%s: %v is a *CAFileError: %v, want %v", tc.name, err, got, tc.caFile)
			}
		}
	})
}

func pemCert(der []byte) []byte {
	return []byte("-----BEGIN CERTIFICATE-----\n" + base64.StdEncoding.EncodeToString(der) + "\n-----END CERTIFICATE-----\n")
}

// connectProxy is a minimal HTTP CONNECT proxy on loopback; it returns
// its address as host:port (NewHTTPClient adds http://).
func connectProxy(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	var connects atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		connects.Add(1)
		up, err := net.Dial("tcp", r.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusOK)
		hj, _ := w.(http.Hijacker)
		down, buf, err := hj.Hijack()
		if err != nil {
			up.Close()
			return
		}
		go func() { io.Copy(up, buf); up.Close() }()
		go func() { io.Copy(down, up); down.Close() }()
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), &connects
}

// fakeClock is a settable clock for cache and device-flow tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
