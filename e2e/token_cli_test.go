package e2e

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/emulator"
	"github.com/mailgate/mailgate/internal/oauth"
)

// emulatorConfig starts an emulator and writes its ready config (plus
// extra YAML profiles) to a fresh directory.
func emulatorConfig(t *testing.T, extra string) (*emulator.Server, string) {
	t.Helper()
	srv := emu(t)
	dir := t.TempDir()
	cfg := string(srv.ConfigYAML()) + extra
	if err := os.WriteFile(filepath.Join(dir, "mailgate.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv, dir
}

// profileYAML is one more profile against srv, from a template of keys.
func profileYAML(srv *emulator.Server, name string, keys ...string) string {
	var b strings.Builder
	b.WriteString("  - name: " + name + "\n    provider: microsoft\n    authority: " + srv.URL() +
		"\n    tls_ca: '" + srv.CAFile() + "'\n    tenant: " + emulator.DemoTenantID + "\n")
	for _, k := range keys {
		b.WriteString("    " + k + "\n")
	}
	return b.String()
}

func TestTokenCommandPrintsOnlyTheToken(t *testing.T) {
	srv, dir := emulatorConfig(t, "")
	for _, p := range []string{"emulator-secret", "emulator-cert", "emulator-graph", "emulator-password"} {
		r := mailgate(t, t.Context(), dir, "token", p)
		if r.code != 0 {
			t.Fatalf("%s: exit %d\n%s", p, r.code, r.stderr)
		}
		tok := strings.TrimSuffix(r.stdout, "\n")
		if strings.ContainsAny(tok, " \n") {
			t.Fatalf("%s: stdout is not just the token: %q", p, r.stdout)
		}
		if _, err := srv.VerifyAccessToken(tok); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if p == "emulator-password" && !strings.Contains(strings.ToLower(r.stderr), "deprecat") {
			t.Errorf("no ROPC deprecation warning on stderr: %q", r.stderr)
		}
	}
	n := srv.TokenRequests()
	r := mailgate(t, t.Context(), dir, "token", "emulator-secret")
	if r.code != 0 || srv.TokenRequests() != n {
		t.Errorf("a second process asked the token endpoint again (exit %d, %d → %d requests)", r.code, n, srv.TokenRequests())
	}
	// nothing secret in the store or printed
	files, _ := filepath.Glob(filepath.Join(dir, "mailgate.db*"))
	if len(files) == 0 {
		t.Fatal("no store file")
	}
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, secret := range []string{emulator.DemoAppSecret, emulator.DemoUserPassword, "eyJ0eXAi", "eyJhbGci"} {
			if strings.Contains(string(b), secret) {
				t.Errorf("%s contains %q in clear", filepath.Base(f), secret[:8])
			}
		}
	}
}

func TestTokenCommandErrors(t *testing.T) {
	srv, _ := emulatorConfig(t, "")
	extra := "\n" +
		profileYAML(srv, "secret-id", "grant: client_credentials", "client_id: "+emulator.DemoAppID, "client_secret: "+emulator.DemoAppSecretID, "scopes: [https://outlook.office365.com/.default]") +
		profileYAML(srv, "expired", "grant: client_credentials", "client_id: "+emulator.DemoAppID, "client_secret: '"+emulator.DemoExpiredSecret+"'", "scopes: [https://outlook.office365.com/.default]") +
		profileYAML(srv, "unknown-app", "grant: client_credentials", "client_id: 12345678-1234-4234-8234-123456789012", "client_secret: x", "scopes: [https://outlook.office365.com/.default]") +
		profileYAML(srv, "no-default", "grant: client_credentials", "client_id: "+emulator.DemoAppID, "client_secret: '"+emulator.DemoAppSecret+"'", "scopes: [https://outlook.office365.com/IMAP.AccessAsApp]") +
		profileYAML(srv, "bad-password", "grant: password", "client_id: "+emulator.DemoPublicAppID, "username: "+emulator.DemoUser, "password: wrong", "scopes: [https://outlook.office.com/IMAP.AccessAsUser.All]") +
		profileYAML(srv, "mfa", "grant: password", "client_id: "+emulator.DemoPublicAppID, "username: "+emulator.DemoMFAUser, "password: "+emulator.DemoMFAUserPassword, "scopes: [https://outlook.office.com/IMAP.AccessAsUser.All]") +
		profileYAML(srv, "no-consent", "grant: password", "client_id: "+emulator.DemoPublicAppID, "username: "+emulator.DemoUser, "password: "+emulator.DemoUserPassword, "scopes: [Mail.Read]") +
		profileYAML(srv, "bad-scope", "grant: password", "client_id: "+emulator.DemoPublicAppID, "username: "+emulator.DemoUser, "password: "+emulator.DemoUserPassword, "scopes: [https://outlook.office.com/IMAP.Everything]") +
		strings.Replace(profileYAML(srv, "wrong-tenant", "grant: client_credentials", "client_id: "+emulator.DemoAppID, "client_secret: x", "scopes: [https://outlook.office365.com/.default]"),
			"tenant: "+emulator.DemoTenantID, "tenant: fabrikam.example", 1) +
		profileYAML(srv, "unregistered-cert", "grant: client_credentials", "client_id: "+emulator.DemoAppID, "client_certificate: {cert: other-cert.pem, key: other-key.pem}", "scopes: [https://outlook.office365.com/.default]") +
		profileYAML(srv, "skewed-cert", "grant: client_credentials", "client_id: "+emulator.DemoAppID, "client_certificate: {cert: '"+filepath.Join(srv.Dir(), "app-cert.pem")+"', key: '"+filepath.Join(srv.Dir(), "app-key.pem")+"'}", "scopes: [https://outlook.office365.com/.default]")
	dir := t.TempDir()
	otherCert, otherKey, err := oauth.NewSelfSignedCertificate("not-registered", 2048, 30)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"other-cert.pem": otherCert, "other-key.pem": otherKey} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "mailgate.yaml"), append(srv.ConfigYAML(), extra...), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		profile string
		aadsts  string
	}{
		{"secret-id", "7000215"}, {"expired", "7000222"}, {"unknown-app", "700016"}, {"no-default", "1002012"},
		{"bad-password", "50126"}, {"mfa", "50076"}, {"no-consent", "65001"}, {"bad-scope", "70011"},
		{"wrong-tenant", "90002"}, {"unregistered-cert", "700027"}, {"skewed-cert", "700024"},
	}
	for _, tt := range tests {
		t.Run(tt.profile, func(t *testing.T) {
			if tt.profile == "skewed-cert" { // this machine's clock is an hour behind Entra's
				srv.SetClock(func() time.Time { return time.Now().Add(time.Hour) })
				defer srv.SetClock(nil)
			}
			r := mailgate(t, t.Context(), dir, "token", tt.profile)
			if r.code != 1 || r.stdout != "" {
				t.Fatalf("exit %d stdout %q, want 1 and nothing", r.code, r.stdout)
			}
			if !strings.Contains(r.stderr, "AADSTS"+tt.aadsts) || !strings.Contains(r.stderr, "fix:") {
				t.Errorf("stderr lacks AADSTS%s and a fix:\n%s", tt.aadsts, r.stderr)
			}
			if strings.Contains(r.stderr, emulator.DemoAppSecret) || strings.Contains(r.stderr, emulator.DemoExpiredSecret) {
				t.Error("stderr shows a secret")
			}
		})
	}
	r := mailgate(t, t.Context(), dir, "token", "no-such-profile")
	if r.code != 2 || !strings.Contains(r.stderr, "no-such-profile") {
		t.Errorf("unknown profile: exit %d\n%s", r.code, r.stderr)
	}
	r = mailgate(t, t.Context(), dir, "token", "emulator-user")
	if r.code != 1 || !strings.Contains(r.stderr, "mailgate login emulator-user") {
		t.Errorf("authorization_code profile without login: exit %d\n%s", r.code, r.stderr)
	}
}

// TestTokenCommandProcessesShareOneRequest: 20 consecutive processes
// (msmtp/getmail6 calling mailgate token as a password command, once per
// message) cause one token request.
func TestTokenCommandProcessesShareOneRequest(t *testing.T) {
	srv, dir := emulatorConfig(t, "")
	results := make([]result, 20)
	for i := range results {
		results[i] = mailgate(t, t.Context(), dir, "token", "emulator-secret")
	}
	for i, r := range results {
		if r.code != 0 || r.stdout != results[0].stdout {
			t.Fatalf("process %d: exit %d, same token %v\n%s", i, r.code, r.stdout == results[0].stdout, r.stderr)
		}
	}
	if n := srv.TokenRequests(); n != 1 {
		t.Errorf("%d token requests for 20 processes, want 1", n)
	}
}

// startLogin starts `mailgate login` with args in dir and returns it with
// a scanner of what it writes to stderr (its prompts), for the test to
// play the user; it is killed if the test ends first.
func startLogin(t *testing.T, dir string, args ...string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	login := exec.CommandContext(t.Context(), mailgateBin, append([]string{"login"}, args...)...)
	login.Dir = dir
	login.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "MAILGATE_KEY=" + testKey}
	stderr, err := login.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := login.Start(); err != nil {
		t.Fatal(err)
	}
	return login, bufio.NewScanner(stderr)
}

// TestKilledAfterRefreshKeepsRotatedToken: with strict rotation, a process
// killed (SIGKILL) the moment it printed a token must already have stored
// the rotated refresh token, so the next process can refresh.
func TestKilledAfterRefreshKeepsRotatedToken(t *testing.T) {
	srv, dir := emulatorConfig(t, "")
	srv.Tenant().SetDeviceInterval(time.Second)
	srv.Tenant().SetRotationRevokesOld(true)
	srv.SetTokenLifetime(2 * time.Second) // every run finds its token expired and refreshes
	login, sc := startLogin(t, dir, "emulator-device", "--device")
	approved := false
	for sc.Scan() && !approved {
		for _, f := range strings.Fields(sc.Text()) {
			if err := srv.ApproveDevice(strings.Trim(f, ".,'\""), emulator.DemoUser); err == nil {
				approved = true
				break
			}
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	if err := login.Wait(); err != nil || !approved {
		t.Fatalf("login --device: %v (approved %v)", err, approved)
	}
	for i := range 4 {
		time.Sleep(2100 * time.Millisecond)
		before := srv.TokenRequests()
		cmd := exec.CommandContext(t.Context(), mailgateBin, "token", "emulator-device")
		cmd.Dir = dir
		cmd.Env = login.Env
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(out).ReadString('\n')
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		if err != nil || line == "" {
			t.Fatalf("run %d printed no token: %v", i, err)
		}
		if _, err := srv.VerifyAccessToken(strings.TrimSpace(line)); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		if srv.TokenRequests() == before {
			t.Fatalf("run %d did not refresh; the test proves nothing", i)
		}
	}

	// Entra forgets a refresh token unused for 90 days: the message says to log in again
	srv.Tenant().ExpireRefreshTokens(emulator.DemoUser)
	time.Sleep(2100 * time.Millisecond)
	r := mailgate(t, t.Context(), dir, "token", "emulator-device")
	if r.code != 1 || !strings.Contains(r.stderr, "AADSTS700082") || !strings.Contains(r.stderr, "mailgate login emulator-device") {
		t.Errorf("expired refresh token: exit %d\n%s", r.code, r.stderr)
	}
}

// TestLoginBrowserFlow runs `mailgate login` for an authorization-code
// profile: the test plays the user's browser with the printed URL.
func TestLoginBrowserFlow(t *testing.T) {
	srv, dir := emulatorConfig(t, "")
	cfg, _ := os.ReadFile(filepath.Join(dir, "mailgate.yaml"))
	// a free port instead of the sample's fixed 8400
	cfg = []byte(strings.Replace(string(cfg), "redirect_uri: http://localhost:8400/", "redirect_uri: http://localhost/", 1))
	if err := os.WriteFile(filepath.Join(dir, "mailgate.yaml"), cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	login, sc := startLogin(t, dir, "emulator-user", "--no-browser", "--timeout", "30s")
	var lines []string
	opened := false
	for !opened && sc.Scan() {
		lines = append(lines, sc.Text())
		if u := strings.TrimSpace(sc.Text()); strings.HasPrefix(u, srv.URL()) {
			if err := signIn(t, srv, emulator.DemoUser, emulator.DemoUserPassword)(u); err != nil {
				t.Fatal(err)
			}
			opened = true
		}
	}
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := login.Wait(); err != nil || !opened {
		t.Fatalf("login: %v\n%s", err, strings.Join(lines, "\n"))
	}
	if out := strings.Join(lines, "\n"); !strings.Contains(out, "Signed in as "+emulator.DemoUser) {
		t.Errorf("stderr:\n%s", out)
	}
	r := mailgate(t, t.Context(), dir, "token", "emulator-user")
	c, err := srv.VerifyAccessToken(strings.TrimSpace(r.stdout))
	if r.code != 0 || err != nil || c.Upn != emulator.DemoUser {
		t.Fatalf("token after login: exit %d, %v\n%s", r.code, err, r.stderr)
	}
}
