package e2e

import (
	"bufio"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/emulator"
	"github.com/mailgate/mailgate/internal/oauth"
)

// TestServiceAccountTokens: the emulator's service-account profile gets
// tokens for two users through the binary, one request per user however
// often asked (each cached in the store), each token for its own user; a
// user outside the delegation fails with the Admin console path, the
// client ID and the scope in the message.
func TestServiceAccountTokens(t *testing.T) {
	srv, dir := emulatorConfig(t, "")
	alice, bob := "alice@"+emulator.GoogleDomain, "bob@"+emulator.GoogleDomain
	for range 2 {
		for _, user := range []string{alice, bob} {
			r := mailgate(t, t.Context(), dir, "token", "google-workspace", "--subject", user)
			if r.code != 0 {
				t.Fatalf("token --subject %s: exit %d\n%s", user, r.code, r.stderr)
			}
			c, err := srv.VerifyGoogleToken(strings.TrimSuffix(r.stdout, "\n"))
			if err != nil || c.Email != user || !c.HasScope(emulator.GoogleMailScope) {
				t.Fatalf("token for %s: %+v %v", user, c, err)
			}
		}
	}
	for _, user := range []string{alice, bob} {
		if n := srv.GoogleTokenRequests(user); n != 1 {
			t.Errorf("%d token requests for %s, want 1 (cached)", n, user)
		}
	}
	r := mailgate(t, t.Context(), dir, "token", "google-workspace", "--subject", emulator.GoogleOutsideUser)
	if r.code != 1 {
		t.Fatalf("outside the delegation: exit %d\n%s", r.code, r.stderr)
	}
	for _, want := range []string{oauth.DomainWideDelegationPath, "Client ID " + emulator.GoogleServiceAccountClientID,
		"OAuth scopes " + emulator.GoogleMailScope, emulator.GoogleOutsideUser, "unauthorized_client"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if r := mailgate(t, t.Context(), dir, "token", "emulator-secret", "--subject", alice); r.code != 2 || !strings.Contains(r.stderr, "service_account") {
		t.Errorf("--subject on a client_credentials profile: exit %d\n%s", r.code, r.stderr)
	}
}

// pasteLogin runs `mailgate login PROFILE --paste`, has browse sign in
// with the URL it prints (starting with prefix) and return the address
// the browser is sent to, and pastes edit(that address) back; it returns
// the exit code and stderr.
func pasteLogin(t *testing.T, dir, profile, prefix string, browse func(authURL string) string, edit func(string) string) (int, string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), mailgateBin, "login", profile, "--paste")
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "MAILGATE_KEY=" + testKey, "NO_PROXY=*"}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var errText strings.Builder
	sc := bufio.NewScanner(stderr)
	authURL := ""
	for authURL == "" && sc.Scan() {
		errText.WriteString(sc.Text() + "\n")
		if l := strings.TrimSpace(sc.Text()); strings.HasPrefix(l, prefix) {
			authURL = l
		}
	}
	rest := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(stderr)
		rest <- string(b)
	}()
	if authURL == "" {
		_ = cmd.Wait()
		t.Fatalf("no authorization URL printed:\n%s", errText.String())
	}
	io.WriteString(stdin, edit(browse(authURL))+"\n")
	stdin.Close()
	errText.WriteString(<-rest)
	err = cmd.Wait()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, errText.String()
}

// googleBrowser signs user in on the emulated Google's page (in a browser
// on another machine) and returns the address it is sent back to.
func googleBrowser(t *testing.T, srv *emulator.Server, user string) func(string) string {
	return func(authURL string) string {
		c := srv.Client()
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, err := c.Get(authURL)
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := formReq.FindSubmatch(page)
		if m == nil {
			t.Fatalf("no sign-in form: %s", page)
		}
		resp, err = c.PostForm(srv.URL()+"/google/signin", url.Values{"req": {string(m[1])}, "email": {user}, "decision": {"allow"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if !strings.HasPrefix(loc, "http://127.0.0.1:8401/?") {
			t.Fatalf("sign-in answered %d, Location %q", resp.StatusCode, loc)
		}
		return loc
	}
}

// entraBrowser signs the demo user in on the emulated Entra ID's pages
// and returns the address it is sent back to.
func entraBrowser(t *testing.T, srv *emulator.Server) func(string) string {
	return func(authURL string) string {
		loc, err := entraSignIn(srv, authURL, emulator.DemoUser, emulator.DemoUserPassword)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(loc, "http://localhost:8400/?") {
			t.Fatalf("sign-in sent the browser to %q", loc)
		}
		return loc
	}
}

// TestLoginPaste: `login --paste` against the emulated Google: the pasted
// redirect URL is accepted and the refresh token stored (token then works
// in another process), a URL with another state is refused.
func TestLoginPaste(t *testing.T) {
	srv, dir := emulatorConfig(t, "")
	alice := googleBrowser(t, srv, "alice@"+emulator.GoogleDomain)
	code, stderr := pasteLogin(t, dir, "google-user", srv.GoogleAuthorizeURL()+"?", alice, func(loc string) string {
		return strings.Replace(loc, "state=", "state=x", 1)
	})
	if code != 1 || !strings.Contains(stderr, "state") {
		t.Fatalf("a wrong state: exit %d\n%s", code, stderr)
	}
	if r := mailgate(t, t.Context(), dir, "token", "google-user"); r.code == 0 {
		t.Fatalf("a token after a refused sign-in: %s", r.stdout)
	}
	code, stderr = pasteLogin(t, dir, "google-user", srv.GoogleAuthorizeURL()+"?", alice, func(loc string) string { return loc })
	if code != 0 || !strings.Contains(stderr, "Signed in") {
		t.Fatalf("login --paste: exit %d\n%s", code, stderr)
	}
	r := mailgate(t, t.Context(), dir, "token", "google-user", "--fresh")
	if r.code != 0 {
		t.Fatalf("token after login --paste: exit %d\n%s", r.code, r.stderr)
	}
	if c, err := srv.VerifyGoogleToken(strings.TrimSpace(r.stdout)); err != nil || c.Email != "alice@"+emulator.GoogleDomain {
		t.Errorf("token %+v %v", c, err)
	}
	// A week later Google (the app is in Testing status) refuses the
	// refresh token: token and doctor say why.
	srv.SetClock(func() time.Time { return time.Now().Add(7*24*time.Hour + time.Hour) })
	defer srv.SetClock(nil)
	for _, args := range [][]string{{"token", "google-user", "--fresh"}, {"doctor", "google-user"}} {
		r := mailgate(t, t.Context(), dir, args...)
		if r.code != 1 || !strings.Contains(r.stdout+r.stderr, "apps in Google's Testing status get refresh tokens that expire after 7 days") {
			t.Errorf("%s a week after sign-in: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
	}
}

// TestConsolePaste: the console's "by pasting" sign-in, for when its
// callback is not reachable from the browser: the page links the emulated
// Google's sign-in, the address the browser ends on is pasted back, a
// forged one is refused, and the refresh token is stored.
func TestConsolePaste(t *testing.T) {
	srv, dir := emulatorConfig(t, "")
	appendConfig(t, dir, "listen: 127.0.0.1:0\n")
	adminAdd(t, dir, "a long enough password")
	serve := startServe(t, dir)
	base := serve.base
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.PostForm(base+"/login", url.Values{"name": {"ops"}, "password": {"a long enough password"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = c.PostForm(base+"/authorize/google-user", url.Values{"paste": {"1"}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	_, after, _ := strings.Cut(string(page), `id="auth-url" href="`)
	href, _, _ := strings.Cut(after, `"`)
	authURL := html.UnescapeString(href)
	if resp.StatusCode != 200 || !strings.HasPrefix(authURL, srv.GoogleAuthorizeURL()+"?") || !strings.Contains(string(page), `action="/oauth/paste"`) {
		t.Fatalf("authorize by pasting: %d\n%s", resp.StatusCode, page)
	}
	loc := googleBrowser(t, srv, "bob@"+emulator.GoogleDomain)(authURL)
	paste := func(text string) (int, string) {
		resp, err := c.PostForm(base+"/oauth/paste", url.Values{"pasted": {text}})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	if code, body := paste(strings.Replace(loc, "state=", "state=forged", 1)); code != http.StatusBadRequest || !strings.Contains(body, "unknown or expired") {
		t.Fatalf("a forged state: %d\n%s", code, body)
	}
	if code, body := paste("  " + loc + "\n"); code != 200 || !strings.Contains(body, "now has a refresh token") {
		t.Fatalf("paste: %d\n%s\n%s", code, body, serve.logs.String())
	}
	r := mailgate(t, t.Context(), dir, "token", "google-user", "--fresh")
	if c, err := srv.VerifyGoogleToken(strings.TrimSpace(r.stdout)); r.code != 0 || err != nil || c.Email != "bob@"+emulator.GoogleDomain {
		t.Errorf("token after the console's paste sign-in: exit %d %v\n%s", r.code, err, r.stderr)
	}
}

// TestDoctorGoogle: doctor on a service-account profile says how old the
// key is (from the certificate Google publishes for it), checks the
// token's scopes against each mailbox's need, and gets a token for each
// mailbox's user: a user outside the delegation fails with the Admin
// console path; a profile without https://mail.google.com/ is told to add
// it.
func TestDoctorGoogle(t *testing.T) {
	srv, dir := emulatorConfig(t, "")
	alice := "alice@" + emulator.GoogleDomain
	appendConfig(t, dir, `  - name: readonly
    provider: google
    grant: service_account
    service_account_key: 'file:`+srv.GoogleKeyFile()+`'
    tls_ca: '`+srv.CAFile()+`'
    scopes: [https://www.googleapis.com/auth/gmail.readonly]
sinks:
  - {name: kept, type: store}
mailboxes:
  - {name: alice, protocol: imap, host: imap.gmail.com, username: `+alice+`, profile: google-workspace, sink: kept}
  - {name: carol, protocol: imap, host: imap.gmail.com, username: `+emulator.GoogleOutsideUser+`, profile: google-workspace, sink: kept}
  - {name: ro, protocol: imap, host: imap.gmail.com, username: `+alice+`, profile: readonly, sink: kept}
`)
	r := mailgate(t, t.Context(), dir, "doctor", "google-workspace")
	out := r.stdout + r.stderr
	if r.code != 1 {
		t.Fatalf("doctor google-workspace: exit %d\n%s", r.code, out)
	}
	for _, want := range []string{"key ", "was created on " + time.Now().UTC().Format(time.DateOnly)[:8], emulator.GoogleServiceAccountEmail,
		"mailbox alice (imap): the token carries https://mail.google.com/", "acting for " + alice + ": a token",
		"acting for " + emulator.GoogleOutsideUser, oauth.DomainWideDelegationPath, emulator.GoogleServiceAccountClientID} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor google-workspace lacks %q:\n%s", want, out)
		}
	}
	r = mailgate(t, t.Context(), dir, "doctor", "readonly")
	out = r.stdout + r.stderr
	if r.code != 1 || !strings.Contains(out, "mailbox ro (imap) needs https://mail.google.com/") || !strings.Contains(out, "add https://mail.google.com/ to the profile's scopes") {
		t.Errorf("doctor readonly: exit %d\n%s", r.code, out)
	}
}

// TestLoginPasteMicrosoft: the paste flow works for a Microsoft profile
// too: the emulated Entra ID's sign-in, the address pasted back, then a
// token from the stored refresh token.
func TestLoginPasteMicrosoft(t *testing.T) {
	srv, dir := emulatorConfig(t, "")
	code, stderr := pasteLogin(t, dir, "emulator-user", srv.URL()+"/", entraBrowser(t, srv), func(loc string) string { return loc })
	if code != 0 || !strings.Contains(stderr, "Signed in as "+emulator.DemoUser) {
		t.Fatalf("login --paste: exit %d\n%s", code, stderr)
	}
	if r := mailgate(t, t.Context(), dir, "token", "emulator-user", "--fresh"); r.code != 0 {
		t.Errorf("token after login --paste: exit %d\n%s", r.code, r.stderr)
	}
}
