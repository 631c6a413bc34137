package e2e

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/emulator"
	"github.com/mailgate/mailgate/internal/testcert"
)

// TestServeConsoleAPIAndMetrics: an administrator created with `mailgate
// admin add` (password on stdin) gets an API token with `mailgate admin
// token`; `mailgate serve` reads a Graph mailbox, and /api/v1/status and
// /metrics show the messages delivered and the token requests made, while
// an anonymous request gets 401.
// graphServeConfig is an emulator config for serve on a free port with
// mailbox g reading n messages through Graph into the maildir ./inbox.
func graphServeConfig(t *testing.T, n int) (*emulator.Server, string) {
	t.Helper()
	srv, dir := emulatorConfig(t, "")
	for i := range n {
		if _, err := srv.GraphDeliver(emulator.DemoSharedMailbox, []byte(fmt.Sprintf("Message-ID: <c%d@x>\r\nSubject: %d\r\n\r\nhello\r\n", i, i))); err != nil {
			t.Fatal(err)
		}
	}
	appendConfig(t, dir, fmt.Sprintf("listen: 127.0.0.1:0\nmailboxes:\n  - {name: g, protocol: graph, endpoint: '%s', username: %s, profile: emulator-graph, after: seen, sink: out, interval: 10s}\nsinks:\n  - {name: out, type: maildir, path: ./inbox}\n",
		srv.URL(), emulator.DemoSharedMailbox))
	return srv, dir
}

func TestServeConsoleAPIAndMetrics(t *testing.T) {
	srv, dir := graphServeConfig(t, 5)
	// a sender, for its queue in the status (nothing is queued for it)
	appendConfig(t, dir, fmt.Sprintf("senders:\n  - {name: gs, protocol: graph, endpoint: '%s', username: %s, profile: emulator-graph, rate: 60, max_recipients_per_day: 500}\n",
		srv.URL(), emulator.DemoSenderMailbox))
	run := func(stdin string, args ...string) (string, string, int) {
		r := mailgateStdin(t, dir, stdin, args...)
		return r.stdout, r.stderr, r.code
	}
	if _, e, code := run("short\n", "admin", "add", "ops"); code != 2 || !strings.Contains(e, "at least 12 characters") {
		t.Fatalf("short password: exit %d %s", code, e)
	}
	if _, e, code := run("a long enough password\n", "admin", "add", "ops"); code != 0 {
		t.Fatalf("admin add: exit %d %s", code, e)
	}
	tok, e, code := run("", "admin", "token", "ops")
	tok = strings.TrimSpace(tok)
	if code != 0 || !strings.HasPrefix(tok, "mgt_") {
		t.Fatalf("admin token: exit %d %q %s", code, tok, e)
	}

	serve := startServe(t, dir)
	logs := serve.logs
	get := func(path, bearer string) (int, string) { return serve.api(t, "GET", path, bearer, "") }
	if code, _ := get("/api/v1/status", ""); code != 401 {
		t.Errorf("anonymous status: %d", code)
	}
	if code, _ := get("/metrics", ""); code != 401 {
		t.Errorf("anonymous metrics: %d", code)
	}
	if code, _ := get("/healthz", ""); code != 200 {
		t.Errorf("healthz: %d", code)
	}
	var status string
	for deadline := time.Now().Add(15 * time.Second); !strings.Contains(status, `"delivered_since_start": 5`); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("status never showed 5 delivered:\n%s\n%s", status, logs.String())
		}
		_, status = get("/api/v1/status", tok)
	}
	if !strings.Contains(status, `"state": "ok"`) {
		t.Errorf("status:\n%s", status)
	}
	for _, want := range []string{`"senders": [`, `"name": "gs"`, `"state": "idle"`, `"rate": 60`, `"recipients_left": 500`, `"drain_seconds": 0`, `"queued": 0`} {
		if !strings.Contains(status, want) {
			t.Errorf("status lacks the sender's queue %s:\n%s", want, status)
		}
	}
	if _, p := get("/api/v1/profiles/emulator-graph", tok); !strings.Contains(p, `"result": "ok"`) {
		t.Errorf("profile token health:\n%s", p)
	}
	_, m := get("/metrics", tok)
	for _, want := range []string{`mailgate_messages_delivered_total{mailbox="g"} 5`, `mailgate_messages_fetched_total{mailbox="g"} 5`, `mailgate_messages_failed_total{mailbox="g"} 0`, `mailgate_polls_total{mailbox="g",result="ok"}`,
		`mailgate_token_requests_total{profile="emulator-graph",result="ok",aadsts="0"}`, `mailgate_last_successful_poll_timestamp_seconds{mailbox="g"}`, `mailgate_outbox_messages{state="queued"} 0`, `mailgate_poll_duration_seconds_count{mailbox="g"}`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s:\n%s", want, m)
		}
	}
	// the build (as `mailgate version` names it) and the process
	v := strings.Fields(mailgate(t, t.Context(), dir, "version").stdout)
	if len(v) < 4 || !strings.Contains(m, `mailgate_build_info{version="`+v[1]+`",commit="`+v[3]+`"} 1`) {
		t.Errorf("metrics lack mailgate_build_info of %q", v)
	}
	for _, want := range []string{"\ngo_goroutines ", "\ngo_memstats_heap_alloc_bytes ", "\ngo_gc_duration_seconds_count ", "\nprocess_resident_memory_bytes ",
		"\nprocess_cpu_seconds_total ", "\nprocess_open_fds ", "\nprocess_start_time_seconds "} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", strings.TrimSpace(want))
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a process's output and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// appendConfig adds text to dir's mailgate.yaml.
func appendConfig(t *testing.T, dir, text string) {
	t.Helper()
	path := filepath.Join(dir, "mailgate.yaml")
	cfg, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(cfg, text...), 0o600); err != nil {
		t.Fatal(err)
	}
}

// adminAdd creates the console administrator ops with password.
func adminAdd(t *testing.T, dir, password string) {
	t.Helper()
	if r := mailgateStdin(t, dir, password+"\n", "admin", "add", "ops"); r.code != 0 {
		t.Fatalf("admin add: exit %d %s", r.code, r.stderr)
	}
}

// runningServe is a `mailgate serve` started by startServe.
type runningServe struct {
	cmd  *exec.Cmd
	logs *syncBuffer
	base string // the console's URL without the trailing slash
}

// api sends one request to serve's console or API, with bearer as the
// API token when not empty, and returns the status and the body.
func (s *runningServe) api(t *testing.T, method, path, bearer, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, s.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// startServe runs `mailgate serve` in dir until the test ends (SIGTERM,
// then wait) and returns once it said where its console is.
func startServe(t *testing.T, dir string) *runningServe {
	t.Helper()
	cmd := exec.Command(mailgateBin, "serve")
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "MAILGATE_KEY=" + testKey}
	s := &runningServe{cmd: cmd, logs: &syncBuffer{}}
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() })
	console := regexp.MustCompile(`console=(https?://127\.0\.0\.1:\d+)/`)
	for deadline := time.Now().Add(10 * time.Second); s.base == ""; time.Sleep(20 * time.Millisecond) {
		if m := console.FindStringSubmatch(s.logs.String()); m != nil {
			s.base = m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not say where its console is:\n%s", s.logs.String())
		}
	}
	return s
}

// TestServeConsoleOverTLS: with tls_cert and tls_key the console is served
// over HTTPS and its session cookie is Secure.
func TestServeConsoleOverTLS(t *testing.T) {
	_, dir := emulatorConfig(t, "")
	cert := testcert.Make(t, testcert.Options{Names: []string{"127.0.0.1"}})
	cert.WriteFiles(t, dir, "console")
	appendConfig(t, dir, "listen: 127.0.0.1:0\ntls_cert: console.crt\ntls_key: console.key\n")
	adminAdd(t, dir, "a long enough password")
	serve := startServe(t, dir)
	if !strings.HasPrefix(serve.base, "https://") {
		t.Fatalf("serve did not announce an https console:\n%s", serve.logs.String())
	}
	base, logs := serve.base+"/", serve.logs
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cert.Pool()}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.PostForm(base+"login", url.Values{"name": {"ops"}, "password": {"a long enough password"}})
	if err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	resp.Body.Close()
	var secure bool
	for _, ck := range resp.Cookies() {
		secure = secure || (ck.Name == "mailgate_session" && ck.Secure && ck.HttpOnly)
	}
	if resp.StatusCode != http.StatusSeeOther || !secure {
		t.Errorf("login over TLS: %d, Secure session cookie %v", resp.StatusCode, secure)
	}
	// plain HTTP to the TLS port gets no console
	if r, err := http.Get(strings.Replace(base, "https", "http", 1) + "healthz"); err == nil {
		r.Body.Close()
		if r.StatusCode == 200 {
			t.Error("the console answered plain HTTP")
		}
	}
}

// TestConsoleAuthorize: the Authorize button of an authorization-code
// profile sends the administrator to Entra's sign-in (PKCE, state) and back
// to the console, which keeps the refresh token: `mailgate token` then
// works without a sign-in. A replayed or forged callback is refused.
func TestConsoleAuthorize(t *testing.T) {
	srv, dir := emulatorConfig(t, "")
	appendConfig(t, dir, "listen: 127.0.0.1:0\n")
	adminAdd(t, dir, "a long enough password")
	serve := startServe(t, dir)
	base, logs := serve.base, serve.logs
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.PostForm(base+"/login", url.Values{"name": {"ops"}, "password": {"a long enough password"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = c.Post(base+"/authorize/emulator-user", "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	authURL := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(authURL, srv.URL()) || !strings.Contains(authURL, "code_challenge_method=S256") ||
		!strings.Contains(authURL, url.QueryEscape(base+"/oauth/callback")) {
		t.Fatalf("authorize: %d %s\n%s", resp.StatusCode, authURL, logs.String())
	}
	// the user signs in on the emulator's pages
	back, err := entraSignIn(srv, authURL, emulator.DemoUser, emulator.DemoUserPassword)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(back, base+"/oauth/callback?") {
		t.Fatalf("the emulator sent the browser to %q", back)
	}
	// the browser comes back without the session cookie (SameSite=Strict)
	resp, err = http.Get(back)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "now has a refresh token") {
		t.Fatalf("callback: %d %s\n%s", resp.StatusCode, body, logs.String())
	}
	// the same answer again is refused
	if resp, err := http.Get(back); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("replayed callback: %d", resp.StatusCode)
		}
	}
	// the refresh token is in the store: a token without any sign-in
	if r := mailgate(t, t.Context(), dir, "token", "emulator-user"); r.code != 0 || strings.Count(r.stdout, ".") < 2 {
		t.Errorf("token after the console sign-in: exit %d\n%s", r.code, r.stderr)
	}
	// the dashboard now offers Re-authorize and says when the refresh token
	// was saved (that token command was answered from the cache, so it was
	// not used since)
	resp, err = c.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	dash, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	row := regexp.MustCompile(`(?s)<tr data-name="emulator-user">.*?</tr>`).Find(dash)
	if !strings.Contains(string(row), ">Re-authorize</button>") || !strings.Contains(string(row), `class="refresh">saved 20`) {
		t.Errorf("dashboard row of emulator-user after sign-in:\n%s", row)
	}
}
