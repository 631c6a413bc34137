package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/agent"
	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/metrics"
	"github.com/mailgate/mailgate/internal/store"
)

// Known secret values put into the config: none may ever be served.
var secrets = []string{
	"client-SECRET-value-0001",
	"webhook-HMAC-secret-0002",
	"url-PASSWORD-0003",
	"query-TOKEN-0004",
	"command-ARG-token-0005",
	"header-VALUE-bearer-0006",
	"admin-PASSWORD-0007-long",
	"proxy-PASSWORD-0008",
}

const keptMessage = "From: a@example.com\r\nSubject: kept\r\n\r\nkept in the store\r\n"

const testConfig = `profiles:
  - name: contoso
    provider: microsoft
    grant: client_credentials
    tenant: contoso.onmicrosoft.com
    client_id: aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee
    client_secret: ${SECRET}
    secret_expires: 2026-12-01
mailboxes:
  - {name: forms, protocol: imap, host: outlook.office365.com, username: forms@contoso.com, profile: contoso, sink: hook}
  - {name: invoices, protocol: imap, host: outlook.office365.com, username: invoices@contoso.com, profile: contoso, sink: cmd}
sinks:
  - name: hook
    type: webhook
    url: https://app:url-PASSWORD-0003@app.example.com/in?token=query-TOKEN-0004
    secret: webhook-HMAC-secret-0002
    headers: {Authorization: Bearer header-VALUE-bearer-0006}
  - {name: cmd, type: command, command: [/usr/local/bin/import, --token, command-ARG-token-0005]}
senders:
  - {name: noreply, protocol: smtp, host: smtp.office365.com, username: noreply@contoso.com, profile: contoso}
listeners:
  - {name: legacy-imap, protocol: imap, listen: '127.0.0.1:1143', upstream: {host: outlook.office365.com}}
accounts:
  - {username: scanner, password: proxy-PASSWORD-0008, profile: contoso, mailbox: scanner@contoso.com}
  - {username: fax, password: proxy-PASSWORD-0008, profile: contoso, mailbox: fax@contoso.com, listeners: [legacy-imap]}
`

type fixture struct {
	srv     *httptest.Server
	web     *Server
	st      *store.Store
	token   string
	retried chan string // Options.Retried's calls
}

// configAndStore parses cfgText as mailgate.yaml in a temporary directory
// (getenv answers its ${VAR}s; nil: none is set) and opens a SQLite store
// beside it, closed when the test ends.
func configAndStore(t *testing.T, cfgText string, getenv func(string) string) (*config.Config, *store.Store) {
	t.Helper()
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	dir := t.TempDir()
	cfg, err := config.Parse([]byte(cfgText), filepath.Join(dir, "mailgate.yaml"), getenv)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(t.Context(), "sqlite:"+filepath.Join(dir, "db"), &store.Options{Key: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return cfg, st
}

// opsToken makes admin "ops" with password and returns a new API token
// of theirs.
func opsToken(t *testing.T, st *store.Store, password string) string {
	t.Helper()
	if err := st.SetAdmin(t.Context(), "ops", password); err != nil {
		t.Fatal(err)
	}
	tok, err := st.NewAPIToken(t.Context(), "ops")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	cfg, st := configAndStore(t, testConfig, func(k string) string {
		if k == "SECRET" {
			return secrets[0]
		}
		return ""
	})
	tok := opsToken(t, st, secrets[6])
	if _, _, err := st.PutMessage(t.Context(), "forms", "forms/imap/7/1", time.Time{}, strings.NewReader(keptMessage)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Enqueue(t.Context(), "noreply", "noreply@contoso.com", []string{"a@example.com"}, []byte("Subject: queued\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := st.MarkDelivered(t.Context(), "forms", []store.LedgerEntry{{Key: "forms/imap/7/1", UID: "1", MessageID: "<d1@contoso.com>", Size: 42, SinkRef: "new/1.mg"},
		{Key: "forms/imap/7/2", UID: "2", MessageID: "<d2@contoso.com>", Size: 43}}); err != nil {
		t.Fatal(err)
	}
	if err := st.MarkAcked(t.Context(), "forms", []string{"forms/imap/7/1"}); err != nil {
		t.Fatal(err)
	}
	if err := st.PutHeld(t.Context(), "forms", []store.HeldMessage{{Key: heldKey, UID: "3", MessageID: "<h3@contoso.com>", Subject: "Refused <b>invoice</b>",
		From: "b@example.com", Size: 99, State: store.HeldRefused, Permanent: true, Reason: "sink command (permanent): exited 1", Attempts: 1}}); err != nil {
		t.Fatal(err)
	}
	reg := &metrics.Registry{}
	reg.Counter("mailgate_messages_delivered_total", "Messages handed to a sink.", "mailbox").Add(3, "forms")
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	retried := make(chan string, 100)
	w := New(Options{Store: st, Config: cfg, Metrics: reg, Now: func() time.Time { return now },
		Runtime: &runtimeFuncs{wake: func(mb string) { retried <- mb },
			proxyLogins: func() map[string]ProxyLogin {
				return map[string]ProxyLogin{"scanner": {At: now.Add(-time.Minute), Listener: "legacy-imap", Remote: "192.0.2.7", Result: "upstream",
					Advice: []string{"the server refused the app-only token for scanner@contoso.com"}}}
			},
			outbox: func() []SenderQueueView {
				left := 0
				return []SenderQueueView{{Name: "noreply", State: "over_budget", Until: "2026-11-24T09:00:00Z", Queued: 1, Rate: 30,
					RecipientsLeft: &left, DrainSeconds: 75600, Drain: "21h0m0s"}}
			},
			tokenHealth: func(p string) (TokenHealth, bool) {
				return TokenHealth{Result: "refused", AADSTS: 7000215, At: now.Add(-time.Minute)}, p == "contoso"
			},
			test: func(_ context.Context, kind, name string) (TestResult, bool) {
				kinds := map[string]string{"invoices": "mailboxes", "forms": "mailboxes", "contoso": "profiles", "noreply": "senders", "hook": "sinks"}
				if kinds[name] != kind {
					return TestResult{}, false
				}
				return TestResult{Name: name, Kind: singular(kind), Steps: []Step{{Name: "token", OK: true, Detail: "valid"},
					{Name: "auth", OK: false, Detail: "AUTHENTICATE failed", Hints: []string{"Add-MailboxPermission -Identity invoices@contoso.com"}}}}, true
			},
			statuses: func() []agent.Status {
				return []agent.Status{{Mailbox: "forms", LastRun: now.Add(-time.Minute), Total: 3},
					{Mailbox: "invoices", LastRun: now, LastError: errors.New("imap: AUTHENTICATE failed"), Failures: 2}}
			}}})
	srv := httptest.NewServer(w)
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, web: w, st: st, token: tok, retried: retried}
}

// heldKey is the fixture's held message.
const heldKey = "forms/imap/7/3"

// concrete turns a route pattern into a method and a path.
func concrete(pattern string) (string, string) {
	method, path, _ := strings.Cut(pattern, " ")
	path = strings.ReplaceAll(path, "{name}", "forms")
	path = strings.ReplaceAll(path, "{mailbox}", "forms")
	path = strings.ReplaceAll(path, "{key}", url.PathEscape(heldKey))
	path = strings.ReplaceAll(path, "{$}", "")
	path = strings.ReplaceAll(path, "{id}", "1")
	return method, path
}

var public = map[string]bool{"GET /healthz": true, "GET /readyz": true, "GET /login": true, "POST /login": true, "GET /static/": true,
	"GET /oauth/callback": true} // refuses anything but a pending sign-in's state: TestCallbackRefusesStrangers

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// bearer sends a request authenticated with an API token (a JSON body when
// body is not empty) and returns the status, the header and the body.
func bearer(t *testing.T, base, token, method, path, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestEveryRouteNeedsAuthentication: each registered route except the
// public ones refuses an anonymous request (401 for the API and metrics, a
// redirect to /login for pages), and every route refuses a cross-origin
// POST, even with a valid session.
func TestEveryRouteNeedsAuthentication(t *testing.T) {
	f := newFixture(t)
	c := &http.Client{CheckRedirect: noRedirect}
	sid, err := f.st.NewSession(t.Context(), "ops", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.web.Routes()) < 15 {
		t.Fatalf("only %d routes registered", len(f.web.Routes()))
	}
	for _, route := range f.web.Routes() {
		method, path := concrete(route)
		t.Run(route, func(t *testing.T) {
			if !public[route] {
				req, _ := http.NewRequest(method, f.srv.URL+path, nil)
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				api := strings.HasPrefix(path, "/api/") || path == "/metrics"
				switch {
				case api && resp.StatusCode != http.StatusUnauthorized:
					t.Errorf("anonymous %s: %d, want 401", route, resp.StatusCode)
				case !api && (resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login"):
					t.Errorf("anonymous %s: %d %q, want a redirect to /login", route, resp.StatusCode, resp.Header.Get("Location"))
				}
				// a wrong token is anonymous too
				req, _ = http.NewRequest(method, f.srv.URL+path, nil)
				req.Header.Set("Authorization", "Bearer "+f.token+"x")
				resp, err = c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					t.Errorf("%s with a wrong token: 200", route)
				}
			}
			req, _ := http.NewRequest(http.MethodPost, f.srv.URL+path, strings.NewReader("name=ops&password="+url.QueryEscape(secrets[6])))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Sec-Fetch-Site", "cross-site")
			req.Header.Set("Origin", "https://evil.example")
			req.AddCookie(&http.Cookie{Name: SessionCookie, Value: sid})
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("cross-origin POST %s: %d, want 403", path, resp.StatusCode)
			}
		})
	}
}

// TestNoSecretInAnyResponse fetches every GET route, signed in, and finds
// none of the config's secret values (nor the admin password or API
// token) in any body.
func TestNoSecretInAnyResponse(t *testing.T) {
	f := newFixture(t)
	c := &http.Client{CheckRedirect: noRedirect}
	checked := 0
	for _, route := range f.web.Routes() {
		method, path := concrete(route)
		if method != http.MethodGet {
			continue
		}
		if path == "/static/" {
			path = "/static/style.css"
		}
		for _, p := range []string{path, strings.ReplaceAll(path, "/forms", "/hook"), strings.ReplaceAll(path, "/forms", "/cmd"), strings.ReplaceAll(path, "/forms", "/contoso")} {
			req, _ := http.NewRequest(method, f.srv.URL+p, nil)
			req.Header.Set("Authorization", "Bearer "+f.token)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, s := range append(secrets, f.token) {
				if strings.Contains(string(b), s) {
					t.Errorf("GET %s shows %q:\n%s", p, s, b)
				}
			}
			checked++
		}
	}
	if checked < 40 {
		t.Errorf("only %d responses checked", checked)
	}
	// what is shown instead
	req, _ := http.NewRequest("GET", f.srv.URL+"/api/v1/sinks/hook", nil)
	req.Header.Set("Authorization", "Bearer "+f.token)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`"secret": "set"`, `"url": "https://app.example.com/in?token=%E2%80%A6"`, `"Authorization"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("sink view lacks %s:\n%s", want, b)
		}
	}
}

// TestLoginSessionAndThrottle: a browser signs in (cookie HttpOnly,
// SameSite=Strict), sees the dashboard with the agents' state and the
// secret-expiry warning, signs out; after three wrong passwords from its
// address the next attempt waits, even with the right password (the
// fixture's clock stands still; TestThrottlePerAddress has the rest).
func TestLoginSessionAndThrottle(t *testing.T) {
	f := newFixture(t)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: noRedirect}
	login := func(pw string) *http.Response {
		resp, err := c.PostForm(f.srv.URL+"/login", url.Values{"name": {"ops"}, "password": {pw}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := login(secrets[6])
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	var cookie *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == SessionCookie {
			cookie = ck
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/" {
		t.Fatalf("session cookie %+v", cookie)
	}
	r, err := c.Get(f.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(r.Body)
	r.Body.Close()
	for _, want := range []string{"imap: AUTHENTICATE failed", `class="state failing"`, `class="state ok"`, "the client secret expires 2026-12-01 (7 days left)", "from config file"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("dashboard lacks %q", want)
		}
	}
	r, _ = c.Post(f.srv.URL+"/logout", "", nil)
	r.Body.Close()
	r, _ = c.Get(f.srv.URL + "/")
	r.Body.Close()
	if r.StatusCode != http.StatusSeeOther {
		t.Errorf("after logout: %d", r.StatusCode)
	}
	for range store.FreeLoginFailures {
		if resp := login("wrong password!!"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong password: %d", resp.StatusCode)
		}
	}
	if resp := login(secrets[6]); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("fourth attempt: %d, want 429", resp.StatusCode)
	}
}

func TestMetricsAndAPI(t *testing.T) {
	f := newFixture(t)
	get := func(path string) string {
		code, _, b := bearer(t, f.srv.URL, f.token, "GET", path, "")
		if code != 200 {
			t.Errorf("%s: %d %s", path, code, b)
		}
		return b
	}
	if m := get("/metrics"); !strings.Contains(m, `mailgate_messages_delivered_total{mailbox="forms"} 3`) {
		t.Errorf("metrics:\n%s", m)
	}
	if s := get("/api/v1/profiles/contoso"); !strings.Contains(s, `"result": "refused"`) || !strings.Contains(s, `"aadsts": 7000215`) {
		t.Errorf("profile token health: %s", s)
	}
	if s := get("/"); !strings.Contains(s, "refused (AADSTS7000215)") {
		t.Errorf("dashboard lacks the token health")
	}
	if s := get("/api/v1/mailboxes/forms"); !strings.Contains(s, `"messages_today": 2`) || !strings.Contains(s, `"last_message": "`) {
		t.Errorf("forms: %s", s)
	}
	if s := get("/api/v1/status"); !strings.Contains(s, `"state": "failing"`) || !strings.Contains(s, "client secret critical (2026-12-01, 7 days left)") {
		t.Errorf("status:\n%s", s)
	}
	o := get("/api/v1/openapi.json")
	if !strings.Contains(o, `"openapi": "3.1.0"`) || !strings.Contains(o, "/api/v1/mailboxes/{name}") {
		t.Errorf("openapi:\n%.300s", o)
	}
	// every API route the server registers is described, with its method
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal([]byte(o), &doc); err != nil {
		t.Fatal(err)
	}
	for _, route := range f.web.Routes() {
		method, path, _ := strings.Cut(route, " ")
		if !strings.HasPrefix(path, "/api/v1/") || path == "/api/v1/openapi.json" {
			continue
		}
		if doc.Paths[path][strings.ToLower(method)] == nil {
			t.Errorf("the OpenAPI document does not describe %s", route)
		}
	}
}

// TestTestButton: the dashboard's Test button and the API run the test and
// show each step with what to fix; an unknown name is 404.
func TestTestButton(t *testing.T) {
	f := newFixture(t)
	do := func(method, path string) (int, string) {
		code, _, b := bearer(t, f.srv.URL, f.token, method, path, "")
		return code, b
	}
	if code, body := do("POST", "/api/v1/mailboxes/invoices/test"); code != 200 || !strings.Contains(body, `"ok": false`) || !strings.Contains(body, "Add-MailboxPermission") {
		t.Errorf("API test: %d %s", code, body)
	}
	if code, body := do("POST", "/test/invoices"); code != 200 || !strings.Contains(body, "✗ auth") || !strings.Contains(body, "<li>Add-MailboxPermission -Identity invoices@contoso.com</li>") {
		t.Errorf("test page: %d %s", code, body)
	}
	if code, _ := do("POST", "/api/v1/mailboxes/nope/test"); code != 404 {
		t.Errorf("unknown mailbox: %d", code)
	}
	if code, _ := do("POST", "/api/v1/profiles/forms/test"); code != 404 {
		t.Errorf("a mailbox tested as a profile: %d", code)
	}
	if code, body := do("POST", "/api/v1/senders/noreply/test"); code != 200 || !strings.Contains(body, `"kind": "sender"`) {
		t.Errorf("sender test: %d %s", code, body)
	}
	if code, body := do("POST", "/test/noreply?kind=senders"); code != 200 || !strings.Contains(body, "noreply") {
		t.Errorf("sender test page: %d %s", code, body)
	}
	if code, body := do("POST", "/api/v1/sinks/hook/test"); code != 200 || !strings.Contains(body, `"kind": "sink"`) {
		t.Errorf("sink test: %d %s", code, body)
	}
	if code, _ := do("POST", "/api/v1/senders/forms/test"); code != 404 {
		t.Errorf("a mailbox tested as a sender: %d", code)
	}
}

// TestOutboxAndMessages: the outbox and the message store are listed, and a
// kept message downloads as its exact bytes.
func TestOutboxAndMessages(t *testing.T) {
	f := newFixture(t)
	get := func(path string) (int, http.Header, string) { return bearer(t, f.srv.URL, f.token, "GET", path, "") }
	if code, _, body := get("/api/v1/outbox"); code != 200 || !strings.Contains(body, `"state": "queued"`) || !strings.Contains(body, `"address": "a@example.com"`) {
		t.Errorf("outbox: %d %s", code, body)
	}
	// filtered by state and sender (the fixture queues one message of noreply)
	for _, tc := range []struct {
		query string
		n     int
	}{{"?state=queued&sender=noreply", 1}, {"?state=sent", 0}, {"?sender=reports", 0}, {"?state=queued", 1}} {
		code, _, body := get("/api/v1/outbox" + tc.query)
		var got struct{ Outbox []OutboxView }
		if err := json.Unmarshal([]byte(body), &got); code != 200 || err != nil || len(got.Outbox) != tc.n {
			t.Errorf("outbox%s: %d %v %s, want %d messages", tc.query, code, err, body, tc.n)
		}
	}
	if code, _, body := get("/outbox?state=sent"); code != 200 || !strings.Contains(body, "Nothing queued yet.") || !strings.Contains(body, "<option selected>sent</option>") {
		t.Errorf("outbox page filtered to sent: %d %s", code, body)
	}
	code, _, body := get("/api/v1/messages")
	if code != 200 || !strings.Contains(body, `"key": "forms/imap/7/1"`) {
		t.Fatalf("messages: %d %s", code, body)
	}
	code, hdr, body := get("/api/v1/messages/1/eml")
	if code != 200 || body != keptMessage || hdr.Get("Content-Type") != "message/rfc822" || !strings.Contains(hdr.Get("Content-Disposition"), "1.eml") {
		t.Errorf("eml: %d %v %q", code, hdr, body)
	}
	if code, _, _ := get("/api/v1/messages/999/eml"); code != 404 {
		t.Errorf("missing message: %d", code)
	}
	if code, _, body := get("/api/v1/deliveries"); code != 200 || !strings.Contains(body, `"message_id": "<d1@contoso.com>"`) ||
		!strings.Contains(body, `"state": "acknowledged"`) || !strings.Contains(body, `"state": "delivered"`) {
		t.Errorf("deliveries: %d %s", code, body)
	}
	if code, _, body := get("/api/v1/deliveries?mailbox=invoices"); code != 200 || !strings.Contains(body, `"deliveries": []`) {
		t.Errorf("deliveries of another mailbox: %d %s", code, body)
	}
	if code, _, body := get("/deliveries"); code != 200 || !strings.Contains(body, "&lt;d2@contoso.com&gt;") {
		t.Errorf("delivery log page: %d %s", code, body)
	}
	if code, _, body := get("/outbox"); code != 200 || !strings.Contains(body, "a@example.com") {
		t.Errorf("outbox page: %d", code)
	}
	if code, _, body := get("/messages"); code != 200 || !strings.Contains(body, `href="/messages/1/eml"`) {
		t.Errorf("messages page: %d %s", code, body)
	}
}

// TestCallbackRefusesStrangers: the OAuth callback, reachable without a
// session, refuses a request without a sign-in's state.
func TestCallbackRefusesStrangers(t *testing.T) {
	f := newFixture(t)
	for _, q := range []string{"", "?code=x", "?code=x&state=forged"} {
		resp, err := http.Get(f.srv.URL + "/oauth/callback" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("callback%s: %d, want 400", q, resp.StatusCode)
		}
	}
}

// TestRefreshTokenState: the dashboard and the API say when a profile's
// refresh token was saved and last used, and warn before Entra ID revokes
// it for 90 days of inactivity — never showing the token.
func TestRefreshTokenState(t *testing.T) {
	const cfgText = `profiles:
  - {name: adele, provider: microsoft, grant: authorization_code, tenant: contoso.onmicrosoft.com, client_id: aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee, scopes: [https://outlook.office.com/IMAP.AccessAsUser.All, offline_access]}
  - {name: megan, provider: microsoft, grant: device_code, tenant: contoso.onmicrosoft.com, client_id: aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee, scopes: [https://outlook.office.com/IMAP.AccessAsUser.All, offline_access]}
  - {name: app, provider: microsoft, grant: client_credentials, tenant: contoso.onmicrosoft.com, client_id: aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee, client_secret: x-secret-value, scopes: [https://outlook.office365.com/.default]}
`
	cfg, st := configAndStore(t, cfgText, nil)
	const rt = "0.AAAA-refresh-TOKEN-value-never-shown"
	if err := st.SaveRefreshToken(t.Context(), "adele", rt); err != nil {
		t.Fatal(err)
	}
	if _, err := st.LoadRefreshToken(t.Context(), "adele"); err != nil { // redeemed once
		t.Fatal(err)
	}
	tok := opsToken(t, st, secrets[6])
	later := time.Now().Add(70 * 24 * time.Hour) // 20 days before the 90-day limit
	srv := httptest.NewServer(New(Options{Store: st, Config: cfg, Now: func() time.Time { return later }}))
	t.Cleanup(srv.Close)
	get := func(path string) string {
		code, _, b := bearer(t, srv.URL, tok, "GET", path, "")
		if code != 200 {
			t.Fatalf("GET %s: %d %s", path, code, b)
		}
		if strings.Contains(b, rt) {
			t.Fatalf("GET %s shows the refresh token", path)
		}
		return b
	}
	var list struct{ Profiles []ProfileView }
	if err := json.Unmarshal([]byte(get("/api/v1/profiles")), &list); err != nil {
		t.Fatal(err)
	}
	byName := map[string]ProfileView{}
	for _, p := range list.Profiles {
		byName[p.Name] = p
	}
	a := byName["adele"].Refresh
	if a == nil || !a.Stored || a.Saved == "" || a.LastUsed == "" || a.IdleExpires == nil {
		t.Fatalf("adele's refresh token state: %+v", a)
	}
	if a.IdleExpires.Level != "warning" || a.IdleExpires.Days < 19 || a.IdleExpires.Days > 20 {
		t.Errorf("idle expiry %+v, want a warning with 19–20 days left", a.IdleExpires)
	}
	if m := byName["megan"].Refresh; m == nil || m.Stored {
		t.Errorf("megan (never signed in): %+v", m)
	}
	if byName["app"].Refresh != nil {
		t.Errorf("client credentials have no refresh token: %+v", byName["app"].Refresh)
	}
	status := get("/api/v1/status")
	if !strings.Contains(status, "profile adele: refresh token warning by inactivity") {
		t.Errorf("status warnings: %s", status)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/login", strings.NewReader("name=ops&password="+secrets[6]))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(b)
	for _, want := range []string{"last used " + a.LastUsed, "revoked if unused until " + a.IdleExpires.Date,
		"none: sign in (Authorize or mailgate login)", "not used by this grant",
		"Profile adele: its refresh token has not been used since " + a.LastUsed} {
		if !strings.Contains(page, want) {
			t.Errorf("dashboard lacks %q", want)
		}
	}
	if strings.Contains(page, rt) {
		t.Error("the dashboard shows the refresh token")
	}
}

// runtimeFuncs is a Runtime of functions; a nil one knows nothing.
type runtimeFuncs struct {
	statuses    func() []agent.Status
	test        func(ctx context.Context, kind, name string) (TestResult, bool)
	explain     func(mailbox string, err error) []string
	tokenHealth func(profile string) (TokenHealth, bool)
	certExpiry  func(profile string) (time.Time, bool)
	wake        func(mailbox string)
	proxyLogins func() map[string]ProxyLogin
	outbox      func() []SenderQueueView
}

func (r *runtimeFuncs) ProxyLogins() map[string]ProxyLogin {
	if r.proxyLogins == nil {
		return nil
	}
	return r.proxyLogins()
}

func (r *runtimeFuncs) OutboxStatus(context.Context) []SenderQueueView {
	if r.outbox == nil {
		return nil
	}
	return r.outbox()
}

func (r *runtimeFuncs) Statuses() []agent.Status {
	if r.statuses == nil {
		return nil
	}
	return r.statuses()
}

func (r *runtimeFuncs) Test(ctx context.Context, kind, name string) (TestResult, bool) {
	if r.test == nil {
		return TestResult{}, false
	}
	return r.test(ctx, kind, name)
}

func (r *runtimeFuncs) Explain(mailbox string, err error) []string {
	if r.explain == nil {
		return nil
	}
	return r.explain(mailbox, err)
}

func (r *runtimeFuncs) TokenHealth(profile string) (TokenHealth, bool) {
	if r.tokenHealth == nil {
		return TokenHealth{}, false
	}
	return r.tokenHealth(profile)
}

func (r *runtimeFuncs) CertExpiry(profile string) (time.Time, bool) {
	if r.certExpiry == nil {
		return time.Time{}, false
	}
	return r.certExpiry(profile)
}

func (r *runtimeFuncs) Wake(mailbox string) {
	if r.wake != nil {
		r.wake(mailbox)
	}
}
