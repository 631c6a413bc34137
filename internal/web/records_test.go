package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/metrics"
)

// memEditor keeps records in memory and validates them with the config
// package, as serve's editor does; a save swaps the live config in.
type memEditor struct {
	mu   sync.Mutex
	recs map[string][]byte // kind/name → YAML
	file string
	srv  *Server
}

func (e *memEditor) list(skip string, extra *config.Record) []config.Record {
	var out []config.Record
	for k, y := range e.recs {
		if k == skip {
			continue
		}
		kind, name, _ := strings.Cut(k, "/")
		out = append(out, config.Record{Kind: kind, Name: name, YAML: y})
	}
	if extra != nil {
		out = append(out, *extra)
	}
	return out
}

func (e *memEditor) apply(recs []config.Record) error {
	cfg, err := config.ParseWith([]byte(testConfig), e.file, func(k string) string { return secrets[0] }, recs)
	if err != nil {
		return err
	}
	e.srv.SetConfig(cfg)
	return nil
}

func (e *memEditor) Save(_ context.Context, kind, name string, y []byte) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.apply(e.list(kind+"/"+name, &config.Record{Kind: kind, Name: name, YAML: y})); err != nil {
		return err
	}
	e.recs[kind+"/"+name] = y
	return nil
}

func (e *memEditor) Delete(_ context.Context, kind, name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.apply(e.list(kind+"/"+name, nil)); err != nil {
		return err
	}
	delete(e.recs, kind+"/"+name)
	return nil
}

func (e *memEditor) Load(_ context.Context, kind, name string) ([]byte, bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	y, ok := e.recs[kind+"/"+name]
	return y, ok, nil
}

// recordsServer serves the fixture's configuration with console records
// kept by a memEditor.
func recordsServer(t *testing.T, f *fixture) (*Server, *memEditor, *httptest.Server) {
	t.Helper()
	ed := &memEditor{recs: map[string][]byte{}, file: filepath.Join(t.TempDir(), "mailgate.yaml")}
	w := New(Options{Store: f.st, Config: f.web.cfg(), Metrics: &metrics.Registry{}, Editor: ed})
	ed.srv = w
	srv := httptest.NewServer(w)
	t.Cleanup(srv.Close)
	return w, ed, srv
}

// TestRecordsAPI: create, read, update and delete console records through
// the API; secrets are write-only (kept when omitted, never returned);
// ${…} and file: references are refused; config-file records cannot be
// changed; a record still referred to cannot be deleted.
func TestRecordsAPI(t *testing.T) {
	f := newFixture(t)
	w, ed, srv := recordsServer(t, f)
	do := func(method, path, body string) (int, string) {
		code, _, b := bearer(t, srv.URL, f.token, method, path, body)
		return code, b
	}
	const secret = "typed-in-SECRET-value-42"
	code, body := do("POST", "/api/v1/profiles", `{"name":"p2","provider":"microsoft","grant":"client_credentials","tenant":"contoso.onmicrosoft.com","client_id":"11111111-2222-3333-4444-555555555555","client_secret":"`+secret+`","scopes":["https://outlook.office365.com/.default"]}`)
	if code != 201 || !strings.Contains(body, `"source": "console"`) || !strings.Contains(body, `"client_secret": "set"`) || strings.Contains(body, secret) {
		t.Fatalf("create: %d %s", code, body)
	}
	// update without the secret keeps it
	if code, body := do("PUT", "/api/v1/profiles/p2", `{"provider":"microsoft","grant":"client_credentials","tenant":"contoso.onmicrosoft.com","client_id":"11111111-2222-3333-4444-555555555555","scopes":"https://outlook.office365.com/.default"}`); code != 200 || !strings.Contains(body, `"client_secret": "set"`) {
		t.Errorf("update: %d %s", code, body)
	}
	if y, _, _ := ed.Load(t.Context(), "profiles", "p2"); !strings.Contains(string(y), secret) {
		t.Errorf("secret lost on update: %s", y)
	}
	if code, body := do("POST", "/api/v1/mailboxes", `{"name":"m2","protocol":"imap","host":"outlook.office365.com","username":"m2@contoso.com","profile":"p2","sink":"hook"}`); code != 201 {
		t.Errorf("mailbox: %d %s", code, body)
	}
	const hookSecret = "console-HOOK-secret-77"
	if code, body := do("POST", "/api/v1/sinks", `{"name":"hook2","type":"webhook","url":"https://app.example.com/in","secret":"`+hookSecret+`"}`); code != 201 || !strings.Contains(body, `"secret": "set"`) {
		t.Errorf("sink: %d %s", code, body)
	}
	// no route shows a console record's secret either
	for _, route := range w.Routes() {
		method, path := concrete(route)
		if method != http.MethodGet {
			continue
		}
		for _, name := range []string{"p2", "m2", "hook2"} {
			code, body := do("GET", strings.ReplaceAll(path, "/forms", "/"+name), "")
			if strings.Contains(body, secret) || strings.Contains(body, hookSecret) {
				t.Errorf("GET %s (%d) shows a console record's secret", path, code)
			}
		}
	}
	if code, body := do("GET", "/sinks/hook2/edit", ""); code != 200 || strings.Contains(body, hookSecret) || !strings.Contains(body, `name="secret" value=""`) {
		t.Errorf("edit form: %d, secret shown or field not empty", code)
	}
	if code, _ := do("DELETE", "/api/v1/sinks/hook2", ""); code != 204 {
		t.Errorf("delete sink: %d", code)
	}
	tests := []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"POST", "/api/v1/mailboxes", `{"name":"m3","protocol":"imap","host":"${HOME}","username":"u@x","profile":"p2","sink":"hook"}`, 422, "references are for the config file"},
		{"POST", "/api/v1/mailboxes", `{"name":"m3","protocol":"imap","host":"h.example","username":"u@x","profile":"nope","sink":"hook"}`, 422, "mailboxes[m3].profile"},
		{"POST", "/api/v1/mailboxes", `{"name":"forms","protocol":"imap","host":"h.example","username":"u@x","profile":"p2","sink":"hook"}`, 422, "taken"},
		{"POST", "/api/v1/mailboxes", `{"name":"../x"}`, 422, "name: use"},
		{"POST", "/api/v1/mailboxes", `not json`, 400, "JSON object"},
		{"PUT", "/api/v1/mailboxes/forms", `{"host":"x"}`, 422, "comes from the config file"},
		{"DELETE", "/api/v1/profiles/contoso", ``, 409, "comes from the config file"},
		{"DELETE", "/api/v1/profiles/p2", ``, 422, "mailboxes[m2].profile"},
		{"DELETE", "/api/v1/profiles/nope", ``, 404, "no profile"},
	}
	for _, tt := range tests {
		code, body := do(tt.method, tt.path, tt.body)
		if code != tt.code || !strings.Contains(body, tt.want) {
			t.Errorf("%s %s %s: %d %s, want %d %q", tt.method, tt.path, tt.body, code, body, tt.code, tt.want)
		}
	}
	if code, _ := do("DELETE", "/api/v1/mailboxes/m2", ""); code != 204 {
		t.Errorf("delete mailbox: %d", code)
	}
	if code, _ := do("DELETE", "/api/v1/profiles/p2", ""); code != 204 {
		t.Errorf("delete profile: %d", code)
	}
	if code, body := do("GET", "/api/v1/profiles", ""); strings.Contains(body, "p2") || code != 200 {
		t.Errorf("after delete: %s", body)
	}
}

// TestRecordsEveryKey: the console's forms and API take every key of the
// config file's records, nested (client_certificate), booleans, durations,
// lists whose elements hold spaces, and write-only maps (webhook headers)
// and command lines, which are kept when left out and never shown.
func TestRecordsEveryKey(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	w, ed, srv := recordsServer(t, f)
	do := func(method, path, body string) (int, string) {
		code, _, b := bearer(t, srv.URL, f.token, method, path, body)
		return code, b
	}
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for _, p := range []string{cert, key} {
		if err := os.WriteFile(p, []byte("-----BEGIN X-----\n-----END X-----\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const hdr, arg = "Bearer console-HEADER-secret-91", "--token=console-ARG-secret 92"
	steps := []struct {
		method, path, body string
		code               int
		yaml               []string // in the saved record
	}{
		{"POST", "/api/v1/profiles", `{"name":"certp","provider":"microsoft","grant":"client_credentials","tenant":"contoso.onmicrosoft.com",
			"client_id":"11111111-2222-3333-4444-555555555555","client_certificate.cert":"` + cert + `","client_certificate.key":"` + key + `",
			"client_certificate.alg":"RS256","scopes":["https://outlook.office365.com/.default"],"endpoint_version":"v1","refresh_margin":"10m",
			"http_proxy":"http://proxy.example:3128"}`, 201,
			[]string{"client_certificate:\n    alg: RS256\n    cert: " + cert, "endpoint_version: v1", "refresh_margin: 10m", "http_proxy: http://proxy.example:3128"}},
		{"POST", "/api/v1/profiles", `{"name":"ropc","provider":"microsoft","grant":"password","tenant":"contoso.onmicrosoft.com",
			"client_id":"11111111-2222-3333-4444-555555555555","username":"svc@contoso.com","password":"console-PASSWORD-93","scopes":["https://outlook.office.com/IMAP.AccessAsUser.All"]}`, 201,
			[]string{"username: svc@contoso.com", "password: console-PASSWORD-93"}},
		{"POST", "/api/v1/mailboxes", `{"name":"idle","protocol":"imap","host":"outlook.office365.com","sasl":"oauthbearer","username":"i@contoso.com",
			"profile":"certp","sink":"hook","mode":"idle","batch_size":500,"enabled":false,"interval":"2m"}`, 201,
			[]string{"sasl: oauthbearer", "mode: idle", "batch_size: 500", "enabled: false", "interval: 2m"}},
		{"POST", "/api/v1/sinks", `{"name":"hook3","type":"webhook","url":"https://app.example.com/in","headers":{"Authorization":"` + hdr + `","X-Tenant":"contoso"},"timeout":"45s"}`, 201,
			[]string{"Authorization: " + hdr, "X-Tenant: contoso", "timeout: 45s"}},
		{"POST", "/api/v1/sinks", `{"name":"pipe2","type":"command","command":["/usr/bin/import","` + arg + `"]}`, 201,
			[]string{"- /usr/bin/import", "- --token=console-ARG-secret 92"}},
		{"POST", "/api/v1/senders", `{"name":"g2","protocol":"graph","username":"noreply@contoso.com","profile":"certp","save_to_sent_items":false,"allowed_from":"noreply@contoso.com"}`, 201,
			[]string{"save_to_sent_items: false"}},
		// updates that leave write-only values out keep them (while the
		// destination stays the same)
		{"PUT", "/api/v1/sinks/hook3", `{"type":"webhook","url":"https://app.example.com/in","timeout":"50s"}`, 200,
			[]string{"Authorization: " + hdr, "url: https://app.example.com/in", "timeout: 50s"}},
		{"PUT", "/api/v1/sinks/pipe2", `{"type":"command","timeout":"5s"}`, 200,
			[]string{"- --token=console-ARG-secret 92", "timeout: 5s"}},
		{"PUT", "/api/v1/profiles/ropc", `{"provider":"microsoft","grant":"password","tenant":"contoso.onmicrosoft.com","client_id":"11111111-2222-3333-4444-555555555555","username":"svc@contoso.com","scopes":"https://outlook.office.com/IMAP.AccessAsUser.All"}`, 200,
			[]string{"password: console-PASSWORD-93"}},
	}
	for _, s := range steps {
		code, body := do(s.method, s.path, s.body)
		if code != s.code {
			t.Fatalf("%s %s: %d %s", s.method, s.path, code, body)
		}
		for _, secret := range []string{hdr, "console-ARG-secret", "console-PASSWORD-93"} {
			if strings.Contains(body, secret) {
				t.Errorf("%s %s answered with a secret: %s", s.method, s.path, body)
			}
		}
		kind, name, _ := strings.Cut(strings.TrimPrefix(s.path, "/api/v1/"), "/")
		if name == "" {
			name = strings.Split(strings.Split(s.body, `"name":"`)[1], `"`)[0]
		}
		y, _, _ := ed.Load(t.Context(), kind, name)
		for _, want := range s.yaml {
			if !strings.Contains(string(y), want) {
				t.Errorf("%s %s: the record lacks %q:\n%s", s.method, s.path, want, y)
			}
		}
	}
	live := w.cfg()
	var mb *config.Mailbox
	for i := range live.Mailboxes {
		if live.Mailboxes[i].Name == "idle" {
			mb = &live.Mailboxes[i]
		}
	}
	if mb == nil || mb.Enabled || mb.Mode != "idle" || mb.BatchSize != 500 {
		t.Errorf("live config of mailbox idle: %+v", mb)
	}
	// the edit forms show the plain values, not the write-only ones
	for path, want := range map[string][]string{
		"/profiles/certp/edit": {`name="client_certificate.cert" value="` + cert + `"`, `<option value="RS256" selected>`, `value="10m"`},
		"/mailboxes/idle/edit": {`<option value="idle" selected>`, `<option value="false" selected>no</option>`, `value="500"`},
		"/sinks/hook3/edit":    {`<textarea name="headers"`, `placeholder="unchanged"`},
		"/sinks/pipe2/edit":    {`name="command" value=""`},
	} {
		code, body := do("GET", path, "")
		if code != 200 {
			t.Fatalf("GET %s: %d", path, code)
		}
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Errorf("GET %s lacks %q", path, w)
			}
		}
		for _, secret := range []string{"console-HEADER-secret", "console-ARG-secret", "console-PASSWORD-93"} {
			if strings.Contains(body, secret) {
				t.Errorf("GET %s shows a secret", path)
			}
		}
	}
	// bad values name their field
	for body, want := range map[string]string{
		`{"name":"x1","type":"webhook","url":"https://a.example","headers":"no colon here"}`: "headers:",
		`{"name":"x2","type":"command","command":["/bin/x","${HOME}"]}`:                      "command:",
	} {
		if code, got := do("POST", "/api/v1/sinks", body); code != 422 || !strings.Contains(got, want) {
			t.Errorf("POST %s: %d %s, want 422 naming %q", body, code, got, want)
		}
	}
	if code, got := do("POST", "/api/v1/mailboxes", `{"name":"x3","protocol":"imap","host":"h.example","username":"u@x","profile":"certp","sink":"hook","enabled":"maybe"}`); code != 422 || !strings.Contains(got, "enabled:") {
		t.Errorf("enabled=maybe: %d %s", code, got)
	}
}

// TestRecordsSecretsStayWithTheirDestination: changing where a record's
// secrets go (a profile's token_url, authority, proxy, tls_ca or provider;
// a webhook's url) with the secret left empty is refused, 422 naming the
// secret; entering it again saves. Edit forms show URLs redacted, and that
// redacted value submitted back unchanged keeps the stored URL.
func TestRecordsSecretsStayWithTheirDestination(t *testing.T) {
	f := newFixture(t)
	_, ed, srv := recordsServer(t, f)
	do := func(method, path, body string) (int, string) {
		code, _, b := bearer(t, srv.URL, f.token, method, path, body)
		return code, b
	}
	const profile = `"provider":"generic","grant":"client_credentials","client_id":"app","scopes":"mail"`
	if code, body := do("POST", "/api/v1/profiles", `{"name":"g",`+profile+`,"token_url":"https://idp.example/token","http_proxy":"http://proxyuser:proxy-PW-1@proxy.example:3128","client_secret":"client-SECRET-1"}`); code != 201 {
		t.Fatalf("create profile: %d %s", code, body)
	}
	const hookURL = "https://hookuser:url-PW-2@app.example.com/in/AbCdEfGh1234567890XyZwVu?token=query-TOKEN-3#frag-SECRET-4"
	if code, body := do("POST", "/api/v1/sinks", `{"name":"h","type":"webhook","url":"`+hookURL+`","secret":"hook-SECRET-5","headers":{"Authorization":"Bearer header-SECRET-6"}}`); code != 201 {
		t.Fatalf("create webhook: %d %s", code, body)
	}
	tests := []struct {
		name, path, body, want string
	}{
		{"token_url", "/api/v1/profiles/g", `{` + profile + `,"token_url":"https://evil.example/token","http_proxy":"http://proxyuser:proxy-PW-1@proxy.example:3128"}`, "client_secret: enter it again: the destination changed (token_url)"},
		{"http_proxy", "/api/v1/profiles/g", `{` + profile + `,"token_url":"https://idp.example/token","http_proxy":"http://evil.example:3128"}`, "client_secret: enter it again: the destination changed (http_proxy)"},
		{"tls_ca", "/api/v1/profiles/g", `{` + profile + `,"token_url":"https://idp.example/token","http_proxy":"http://proxyuser:proxy-PW-1@proxy.example:3128","tls_ca":"/etc/evil-ca.pem"}`, "destination changed (tls_ca)"},
		{"webhook url", "/api/v1/sinks/h", `{"type":"webhook","url":"https://evil.example/in"}`, "enter it again: the destination changed (url)"},
	}
	for _, tt := range tests {
		if code, body := do("PUT", tt.path, tt.body); code != 422 || !strings.Contains(body, tt.want) {
			t.Errorf("%s changed, secret left empty: %d %s, want 422 %q", tt.name, code, body, tt.want)
		}
	}
	if y, _, _ := ed.Load(t.Context(), "profiles", "g"); !strings.Contains(string(y), "https://idp.example/token") {
		t.Errorf("a refused change was kept: %s", y)
	}
	// with the secret entered again, the new destination is saved
	if code, body := do("PUT", "/api/v1/sinks/h", `{"type":"webhook","url":"https://new.example/in","secret":"hook-SECRET-7","headers":{"X-Other":"v"}}`); code != 200 {
		t.Errorf("new url with the secret: %d %s", code, body)
	}
	if code, body := do("PUT", "/api/v1/sinks/h", `{"type":"webhook","url":"`+hookURL+`","secret":"hook-SECRET-5","headers":{"Authorization":"Bearer header-SECRET-6"}}`); code != 200 {
		t.Fatalf("back to the old url: %d %s", code, body)
	}
	// the edit forms show no URL credential
	for _, path := range []string{"/profiles/g/edit", "/sinks/h/edit"} {
		code, body := do("GET", path, "")
		for _, secret := range []string{"proxyuser", "proxy-PW-1", "hookuser", "url-PW-2", "query-TOKEN-3", "frag-SECRET-4", "AbCdEfGh1234567890XyZwVu", "SECRET"} {
			if code != 200 || strings.Contains(body, secret) {
				t.Errorf("%s (%d) shows %q", path, code, secret)
			}
		}
	}
	// the redacted values submitted back unchanged keep the stored URLs
	if code, body := do("PUT", "/api/v1/sinks/h", `{"type":"webhook","url":"`+config.DisplayURL(hookURL)+`"}`); code != 200 {
		t.Fatalf("webhook saved unchanged: %d %s", code, body)
	}
	if code, body := do("PUT", "/api/v1/profiles/g", `{`+profile+`,"token_url":"https://idp.example/token","http_proxy":"`+config.DisplayURL("http://proxyuser:proxy-PW-1@proxy.example:3128")+`"}`); code != 200 {
		t.Fatalf("profile saved unchanged: %d %s", code, body)
	}
	y, _, _ := ed.Load(t.Context(), "sinks", "h")
	p, _, _ := ed.Load(t.Context(), "profiles", "g")
	for _, want := range []string{hookURL, "hook-SECRET-5", "header-SECRET-6"} {
		if !strings.Contains(string(y), want) {
			t.Errorf("webhook lost %q: %s", want, y)
		}
	}
	for _, want := range []string{"http://proxyuser:proxy-PW-1@proxy.example:3128", "client-SECRET-1"} {
		if !strings.Contains(string(p), want) {
			t.Errorf("profile lost %q: %s", want, p)
		}
	}
}

// TestFailingRecordsShown: the console records serve skipped are on the
// dashboard and in /api/v1/status with their reasons.
func TestFailingRecordsShown(t *testing.T) {
	f := newFixture(t)
	w, _, srv := recordsServer(t, f)
	do := func(path string) (int, string) {
		code, _, b := bearer(t, srv.URL, f.token, "GET", path, "")
		return code, b
	}
	if code, body := do("/api/v1/status"); code != 200 || !strings.Contains(body, `"failing_records": []`) {
		t.Errorf("status without failing records: %d %s", code, body)
	}
	w.SetBroken([]BrokenRecord{{Kind: "sinks", Name: "bad", Reason: "sinks[bad].path: /proc/x is in /proc, where no maildir can be"}})
	if code, body := do("/api/v1/status"); code != 200 || !strings.Contains(body, `"kind": "sinks"`) || !strings.Contains(body, `"error": "sinks[bad].path: /proc/x is in /proc`) {
		t.Errorf("status: %d %s", code, body)
	}
	if code, body := do("/"); code != 200 || !strings.Contains(body, "Console sink bad is failing and does not run: sinks[bad].path: /proc/x is in /proc") {
		t.Errorf("dashboard: %d %s", code, body)
	}
}
