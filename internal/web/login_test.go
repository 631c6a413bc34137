package web

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/store"
)

// clientFrom is an HTTP client whose connections come from the loopback
// address ip (127.0.0.2 is loopback on Linux too), not following redirects.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}, CheckRedirect: noRedirect}
}

// signIn posts the login form and returns the status and the page.
func signIn(t *testing.T, c *http.Client, base, name, pw string) (int, http.Header, string) {
	t.Helper()
	resp, err := c.PostForm(base+"/login", url.Values{"name": {name}, "password": {pw}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// countChecks makes the fixture count the password checks (bcrypt).
func countChecks(f *fixture) *atomic.Int32 {
	var n atomic.Int32
	check := f.web.checkAdmin
	f.web.checkAdmin = func(ctx context.Context, name, pw string) error {
		n.Add(1)
		return check(ctx, name, pw)
	}
	return &n
}

// TestParallelWrongPasswords: 50 wrong passwords sent at once from one
// address are counted before bcrypt runs, so at most 5 of them are checked
// (the fixture's clock stands still: no delay runs out meanwhile).
func TestParallelWrongPasswords(t *testing.T) {
	f := newFixture(t)
	checks := countChecks(f)
	c := clientFrom("127.0.0.1")
	var refused atomic.Int32
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			resp, err := c.PostForm(f.srv.URL+"/login", url.Values{"name": {"ops"}, "password": {"wrong password!!"}})
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusTooManyRequests:
				refused.Add(1)
			case http.StatusUnauthorized:
			default:
				t.Errorf("wrong password: %d", resp.StatusCode)
			}
		})
	}
	wg.Wait()
	if n := checks.Load(); n > 5 || n == 0 {
		t.Errorf("%d passwords checked, want 1 to 5", n)
	}
	if refused.Load() < 45 {
		t.Errorf("%d of 50 refused before the check", refused.Load())
	}
}

// TestThrottlePerAddress: failures from another address do not keep the
// right password out from 127.0.0.1; from the failing address the delay
// is said (429, Retry-After, the wait on the page); admin unlock
// (Store.UnlockAdmin) lifts it at once.
func TestThrottlePerAddress(t *testing.T) {
	f := newFixture(t)
	other, local := clientFrom("127.0.0.2"), clientFrom("127.0.0.1")
	for i := range 10 {
		code, hdr, page := signIn(t, other, f.srv.URL, "ops", "wrong password!!")
		switch {
		case i < store.FreeLoginFailures && code != http.StatusUnauthorized:
			t.Fatalf("wrong password %d: %d", i+1, code)
		case i >= store.FreeLoginFailures && (code != http.StatusTooManyRequests || hdr.Get("Retry-After") != "1" || !strings.Contains(page, "wait 1s")):
			t.Fatalf("wrong password %d: %d Retry-After %q\n%s", i+1, code, hdr.Get("Retry-After"), page)
		}
	}
	if code, _, _ := signIn(t, local, f.srv.URL, "", "wrong password!!"); code != http.StatusUnauthorized {
		t.Errorf("no name: %d, want 401", code)
	}
	if code, _, page := signIn(t, local, f.srv.URL, "ops", secrets[6]); code != http.StatusSeeOther {
		t.Fatalf("the right password from 127.0.0.1 after failures from 127.0.0.2: %d\n%s", code, page)
	}
	// from the failing address the right password waits too, until unlocked
	if code, _, _ := signIn(t, other, f.srv.URL, "ops", secrets[6]); code != http.StatusTooManyRequests {
		t.Errorf("the right password from the throttled address: %d, want 429", code)
	}
	if _, err := f.st.UnlockAdmin(t.Context(), "ops"); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := signIn(t, other, f.srv.URL, "ops", secrets[6]); code != http.StatusSeeOther {
		t.Errorf("after unlock: %d", code)
	}
}

// TestLoginPageShowsKnownMessagesOnly: the login page never prints the
// text of its query; known codes select a fixed message.
func TestLoginPageShowsKnownMessagesOnly(t *testing.T) {
	f := newFixture(t)
	for _, q := range []string{"?e=" + url.QueryEscape("Your password expired: call +1-555-EVIL"), "?e=%3Cb%3EPWNED%3C%2Fb%3E"} {
		resp, err := http.Get(f.srv.URL + "/login" + q)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || strings.Contains(string(b), "EVIL") || strings.Contains(string(b), "PWNED") || strings.Contains(string(b), `class="error"`) {
			t.Errorf("GET /login%s: %d\n%s", q, resp.StatusCode, b)
		}
	}
	resp, err := http.Get(f.srv.URL + "/login?e=expired")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "Your session has ended: sign in again.") {
		t.Errorf("known code: %s", b)
	}
	// a stale session cookie is sent there
	req, _ := http.NewRequest("GET", f.srv.URL+"/", nil)
	req.AddCookie(&http.Cookie{Name: SessionCookie, Value: "stale"})
	resp, err = (&http.Client{CheckRedirect: noRedirect}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Location") != "/login?e=expired" {
		t.Errorf("stale session: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestStaticServesOnlyItsFolder: /static/ serves the files of the static
// folder, not the templates next to it (%2e%2e), and lists no directory.
func TestStaticServesOnlyItsFolder(t *testing.T) {
	f := newFixture(t)
	for path, want := range map[string]int{
		"/static/style.css":                       200,
		"/static/":                                404,
		"/static/%2e%2e/templates/login.html":     404,
		"/static/%2e%2e/":                         404,
		"/static/..%2ftemplates%2flogin.html":     404,
		"/static/%2e%2e%2ftemplates%2flogin.html": 404,
	} {
		resp, err := (&http.Client{CheckRedirect: noRedirect}).Get(f.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || strings.Contains(string(b), "{{") || strings.Contains(string(b), "<pre>") {
			t.Errorf("GET %s: %d, want %d\n%.300s", path, resp.StatusCode, want, b)
		}
	}
}

// TestReadyzHidesStoreError: /readyz says the store is unavailable without
// the driver's error text.
func TestReadyzHidesStoreError(t *testing.T) {
	f := newFixture(t)
	f.st.Close()
	resp, err := http.Get(f.srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || strings.TrimSpace(string(b)) != "store unavailable" {
		t.Errorf("readyz with a closed store: %d %q", resp.StatusCode, b)
	}
}

// TestExpiringAPIToken: a token is refused (401) from its expiry on.
func TestExpiringAPIToken(t *testing.T) {
	f := newFixture(t)
	live, err := f.st.NewAPITokenUntil(t.Context(), "ops", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	expired, err := f.st.NewAPITokenUntil(t.Context(), "ops", time.Now().Add(-time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if code, _, b := bearer(t, f.srv.URL, live, "GET", "/api/v1/status", ""); code != 200 {
		t.Errorf("unexpired token: %d %s", code, b)
	}
	if code, _, b := bearer(t, f.srv.URL, expired, "GET", "/api/v1/status", ""); code != http.StatusUnauthorized {
		t.Errorf("expired token: %d %s", code, b)
	}
}

// TestThrottleAddress: the throttle counts IPv4 addresses one by one and
// IPv6 addresses by their /64.
func TestThrottleAddress(t *testing.T) {
	for remote, want := range map[string]string{
		"192.0.2.7:4711":              "192.0.2.7",
		"[::ffff:192.0.2.7]:4711":     "192.0.2.7",
		"[2001:db8:1:2:aaaa::1]:4711": "2001:db8:1:2::/64",
		"[2001:db8:1:2:bbbb::9]:80":   "2001:db8:1:2::/64",
		"[fe80::1%eth0]:80":           "fe80::/64",
		"[::1]:8025":                  "::/64",
		"not an address":              "not an address",
	} {
		if got := throttleAddress(&http.Request{RemoteAddr: remote}); got != want {
			t.Errorf("%s: %q, want %q", remote, got, want)
		}
	}
}
