package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// valid is a small complete configuration; cases below append to it or
// replace lines of it. Its lines are numbered in comments for the cases.
const valid = `profiles:
  - name: contoso
    provider: microsoft
    grant: client_credentials
    tenant: contoso.onmicrosoft.com
    client_id: aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee
    client_secret: ${SECRET}
mailboxes:
  - name: forms
    protocol: imap
    host: outlook.office365.com
    username: forms@contoso.com
    profile: contoso
    sink: out
sinks:
  - {name: out, type: maildir, path: ./inbox}
senders:
  - name: noreply
    protocol: smtp
    host: smtp.office365.com
    username: noreply@contoso.com
    profile: contoso
`

func parseTest(t *testing.T, src string) (*Config, error) {
	t.Helper()
	dir := t.TempDir()
	return parse([]byte(src), filepath.Join(dir, "mailgate.yaml"), env(map[string]string{"SECRET": "s3cret"}), testNow, nil)
}

func problemsOf(t *testing.T, err error) []Problem {
	t.Helper()
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("error %v (%T) is not a *config.Error", err, err)
	}
	return cerr.Problems
}

func TestValidLoads(t *testing.T) {
	cfg, err := parseTest(t, valid)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings: %v", cfg.Warnings)
	}
	p, ok := cfg.Profile("contoso")
	if !ok || p.ClientSecret.Reveal() != "s3cret" {
		t.Fatalf("profile contoso: %v %v", ok, p)
	}
	if _, ok := cfg.Profile("nope"); ok {
		t.Error("Profile(nope) found something")
	}
	if _, ok := cfg.Mailbox("forms"); !ok {
		t.Error("Mailbox(forms) not found")
	}
	if _, ok := cfg.Sink("out"); !ok {
		t.Error("Sink(out) not found")
	}
	if _, ok := cfg.Sender("noreply"); !ok {
		t.Error("Sender(noreply) not found")
	}
}

// replace returns valid with line n (1-based) replaced by repl (which may
// hold several lines, or none to delete it).
func replace(n int, repl string) string {
	lines := strings.Split(valid, "\n")
	out := append([]string{}, lines[:n-1]...)
	if repl != "" {
		out = append(out, strings.Split(repl, "\n")...)
	}
	return strings.Join(append(out, lines[n:]...), "\n")
}

func TestProblems(t *testing.T) {
	tests := []struct {
		name string
		src  string
		line int
		key  string
		msg  string // substring
	}{
		{"unknown top key with suggestion", valid + "listn: 127.0.0.1:80\n", 23, "listn", `unknown key "listn" (did you mean "listen"?)`},
		{"unknown key far from any", valid + "frobnicate: 1\n", 23, "frobnicate", `unknown key "frobnicate"`},
		{"unknown profile key", replace(6, "    clientid: x"), 6, "profiles[contoso].clientid", `did you mean "client_id"?`},
		{"duplicate key", replace(5, "    tenant: a\n    tenant: b"), 6, "profiles[contoso].tenant", "duplicate key (first at line 5)"},
		{"string where list expected", replace(7, "    client_secret: x\n    scopes: https://x/.default"), 8, "profiles[contoso].scopes", "expected a list"},
		{"list where string expected", replace(5, "    tenant: [a, b]"), 5, "profiles[contoso].tenant", "expected a single value, got a list"},
		{"profiles not a list", "profiles: {name: x}\n", 1, "profiles", "expected a list of items"},
		{"missing name", replace(2, "  - provider: microsoft\n    name:"), 3, "profiles[0].name", "required"},
		{"bad name", replace(2, "  - name: a b"), 2, "profiles[0].name", "names may use only"},
		{"missing provider", replace(3, ""), 2, "profiles[contoso].provider", "required"},
		{"bad provider", replace(3, "    provider: microsft"), 3, "profiles[contoso].provider", `"microsft" is not one of microsoft, google, generic (did you mean "microsoft"?)`},
		{"bad grant", replace(4, "    grant: implicit"), 4, "profiles[contoso].grant", "is not one of client_credentials, authorization_code"},
		{"missing client_id", replace(6, ""), 2, "profiles[contoso].client_id", "required"},
		{"missing tenant", replace(5, ""), 2, "profiles[contoso].tenant", "required for provider microsoft"},
		{"missing credential", replace(7, ""), 2, "profiles[contoso].client_secret", "needs client_secret or client_certificate"},
		{"secret and certificate", replace(7, "    client_secret: x\n    client_certificate: {cert: /etc/hostname, key: /etc/hostname}"), 8, "profiles[contoso].client_certificate", "both set"},
		{"certificate file missing", replace(7, "    client_certificate:\n      cert: nope.crt\n      key: /etc/hostname"), 8, "profiles[contoso].client_certificate.cert", "no such file"},
		{"bad alg", replace(7, "    client_certificate: {cert: /etc/hostname, key: /etc/hostname, alg: ES256}"), 7, "profiles[contoso].client_certificate.alg", "is not one of PS256, RS256"},
		{"password grant needs password", replace(4, "    grant: password\n    username: u@contoso.com"), 2, "profiles[contoso].password", "required for grant password"},
		{"generic needs token_url", replace(3, "    provider: generic"), 2, "profiles[contoso].token_url", "required for provider generic"},
		{"service_account needs its key", "profiles:\n  - name: ws\n    provider: google\n    grant: service_account\n    scopes: [https://mail.google.com/]\n", 2,
			"profiles[ws].service_account_key", "required for grant service_account"},
		{"google scopes with commas", "profiles:\n  - name: ws\n    provider: google\n    grant: service_account\n    service_account_key: '{}'\n    scopes: ['https://mail.google.com/,https://www.googleapis.com/auth/gmail.send']\n", 6,
			"profiles[ws].scopes[0]", "Google refuses scopes joined with commas"},
		{"service_account on microsoft", "profiles:\n  - name: ws\n    provider: microsoft\n    tenant: t\n    grant: service_account\n    service_account_key: '{}'\n", 5,
			"profiles[ws].grant", "service_account is a Google grant"},
		{"subject on client_credentials", replace(7, "    client_secret: x\n    subject: a@contoso.com"), 8, "profiles[contoso].subject", "does not apply to grant client_credentials"},
		{"tenant for generic", replace(3, "    provider: generic\n    token_url: https://idp/token"), 6, "profiles[contoso].tenant", "does not apply to provider generic"},
		{"relative url", replace(7, "    client_secret: x\n    authority: login.microsoftonline.com"), 8, "profiles[contoso].authority", "not an absolute URL"},
		{"http token url to remote", replace(7, "    client_secret: x\n    token_url: http://idp.example/token"), 8, "profiles[contoso].token_url", "plain http is allowed only to a loopback host"},
		{"ftp proxy", replace(7, "    client_secret: x\n    http_proxy: ftp://proxy:21"), 8, "profiles[contoso].http_proxy", `scheme "ftp" is not http or https`},
		{"bad date", replace(7, "    client_secret: x\n    secret_expires: 01/05/2027"), 8, "profiles[contoso].secret_expires", "is not a date"},
		{"bad duration", replace(7, "    client_secret: x\n    refresh_margin: 5 minutes"), 8, "profiles[contoso].refresh_margin", "is not a duration"},
		{"missing env", replace(7, "    client_secret: ${NOPE}"), 7, "profiles[contoso].client_secret", "environment variable NOPE is not set"},
		{"missing file ref", replace(7, "    client_secret: file:nope.secret"), 7, "profiles[contoso].client_secret", "cannot read"},
		{"unterminated ref", replace(7, "    client_secret: ${SECRET"), 7, "profiles[contoso].client_secret", "unterminated"},
		{"duplicate profile", strings.Replace(valid, "mailboxes:", "  - {name: contoso, provider: google, grant: device_code, client_id: x}\nmailboxes:", 1), 8, "profiles[1].name", "duplicate name \"contoso\" (first at line 2)"},
		{"dangling mailbox profile", replace(13, "    profile: fabrikam"), 13, "mailboxes[forms].profile", `no profile named "fabrikam"`},
		{"dangling sink", replace(14, "    sink: nowhere"), 14, "mailboxes[forms].sink", `no sink named "nowhere"`},
		{"dangling sender profile", replace(22, "    profile: fabrikam"), 22, "senders[noreply].profile", `no profile named "fabrikam"`},
		{"missing host", replace(11, ""), 9, "mailboxes[forms].host", "required"},
		{"bad protocol", replace(10, "    protocol: imaps"), 10, "mailboxes[forms].protocol", "is not one of imap, pop3, graph"},
		{"security none remote", replace(11, "    host: outlook.office365.com\n    security: none"), 12, "mailboxes[forms].security", "allowed only to a loopback host"},
		{"bad port", replace(11, "    host: h\n    port: 99999"), 12, "mailboxes[forms].port", "from 1 to 65535"},
		{"port not a number", replace(11, "    host: h\n    port: imaps"), 12, "mailboxes[forms].port", "not a whole number"},
		{"interval too short", replace(11, "    host: h\n    interval: 1s"), 12, "mailboxes[forms].interval", "below the minimum of 10s"},
		{"move without folder", replace(11, "    host: h\n    after: 'move:'"), 12, "mailboxes[forms].after", "move: needs a folder"},
		{"bad after", replace(11, "    host: h\n    after: delet"), 12, "mailboxes[forms].after", `(did you mean "delete"?)`},
		{"graph with host", replace(10, "    protocol: graph"), 11, "mailboxes[forms].host", "does not apply to protocol graph"},
		{"graph endpoint http remote", replace(10, "    protocol: graph\n    endpoint: http://graph.example"), 11, "mailboxes[forms].endpoint", "plain http"},
		{"pop3 idle", replace(10, "    protocol: pop3\n    mode: idle"), 11, "mailboxes[forms].mode", "idle is for imap only"},
		{"bad bool", replace(11, "    host: h\n    enabled: maybe"), 12, "mailboxes[forms].enabled", "is not true or false"},
		{"maildir without path", replace(16, "  - {name: out, type: maildir}"), 16, "sinks[out].path", "required"},
		{"webhook url bad", replace(16, "  - {name: out, type: webhook, url: /relative}"), 16, "sinks[out].url", "not an absolute URL"},
		{"command not a list", replace(16, "  - {name: out, type: command, command: /usr/bin/procmail}"), 16, "sinks[out].command", "expected a list"},
		{"command empty", replace(16, "  - {name: out, type: command}"), 16, "sinks[out].command", "required"},
		{"bad sink type", replace(16, "  - {name: out, type: mbox}"), 16, "sinks[out].type", "is not one of maildir, webhook, command, store"},
		{"path on store sink", replace(16, "  - {name: out, type: store, path: x}"), 16, "sinks[out].path", "does not apply to type store"},
		{"allowed_from not address", valid + "    allowed_from: [noreply@contoso.com, \"Bob <bob@contoso.com>\"]\n", 23, "senders[noreply].allowed_from[1]", "not a bare email address"},
		{"allowed_from not a list", valid + "    allowed_from: noreply@contoso.com\n", 23, "senders[noreply].allowed_from", "expected a list"},
		{"sender security none remote", valid + "    security: none\n", 23, "senders[noreply].security", "loopback"},
		{"save_to_sent_items on smtp", valid + "    save_to_sent_items: false\n", 23, "senders[noreply].save_to_sent_items", "does not apply to protocol smtp"},
		{"store scheme", "store: mysql://x\n", 1, "store", "must start with sqlite: or postgres://"},
		{"listen", "listen: 8025\n", 1, "listen", "is not host:port"},
		{"log level", "log: {level: verbose}\n", 1, "log.level", `"verbose" is not one of debug, info, warn, error`},
		{"log format", "log:\n  format: jsn\n", 2, "log.format", `(did you mean "json"?)`},
		{"tls_cert without key", "tls_cert: /etc/hostname\n", 1, "tls_cert", "tls_cert needs tls_key"},
		{"syntax error", "profiles:\n  - name: a\n   bad: [\n", 3, "", "invalid YAML"},
		{"flow with env ref", "sinks:\n  - {name: a, type: webhook, url: https://x, secret: ${S}}\n", 2, "", `quote values holding ${NAME}`},
		{"two documents", "listen: 127.0.0.1:1\n---\nlisten: 127.0.0.1:2\n", 2, "", "more than one document"},
		{"top level list", "- a\n- b\n", 1, "", "expected a mapping"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseTest(t, tc.src)
			if err == nil {
				t.Fatal("no error")
			}
			ps := problemsOf(t, err)
			for _, p := range ps {
				if p.Line == tc.line && p.Key == tc.key && strings.Contains(p.Msg, tc.msg) {
					if !strings.HasSuffix(p.File, "mailgate.yaml") {
						t.Errorf("file = %q", p.File)
					}
					return
				}
			}
			t.Errorf("want line %d key %q msg containing %q; got:\n%s", tc.line, tc.key, tc.msg, err)
		})
	}
}

func TestAllProblemsCollected(t *testing.T) {
	src := replace(3, "    provider: microsft") + "listn: x\n"
	src = strings.Replace(src, "sink: out", "sink: nowhere", 1)
	_, err := parseTest(t, src)
	ps := problemsOf(t, err)
	var got []string
	for _, p := range ps {
		got = append(got, fmt.Sprintf("%d %s", p.Line, p.Key))
	}
	want := []string{"3 profiles[contoso].provider", "14 mailboxes[forms].sink", "23 listn"}
	if strings.Join(got, ";") != strings.Join(want, ";") {
		t.Errorf("problems = %q, want %q", got, want)
	}
	s := ps[0].String()
	if !strings.HasSuffix(s, `mailgate.yaml:3: profiles[contoso].provider: "microsft" is not one of microsoft, google, generic (did you mean "microsoft"?)`) {
		t.Errorf("String() = %q", s)
	}
}

func TestWarnings(t *testing.T) {
	tests := []struct {
		name, add, key, msg string
	}{
		{"expired", "    secret_expires: 2026-01-31\n", "profiles[contoso].secret_expires", "expired on 2026-01-31"},
		{"expiring soon", "    secret_expires: 2026-03-11\n", "profiles[contoso].secret_expires", "expires on 2026-03-11 (in 10 days)"},
		{"http webhook", "", "sinks[hook].url", "unencrypted"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := replace(7, "    client_secret: x\n"+strings.TrimSuffix(tc.add, "\n"))
			if tc.add == "" {
				src = strings.Replace(valid, "sinks:\n", "sinks:\n  - {name: hook, type: webhook, url: \"http://app.internal/mail\"}\n", 1)
			}
			cfg, err := parseTest(t, src)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range cfg.Warnings {
				if w.Key == tc.key && strings.Contains(w.Msg, tc.msg) && w.Line > 0 {
					return
				}
			}
			t.Errorf("no warning %s: %q in %v", tc.key, tc.msg, cfg.Warnings)
		})
	}
	cfg, err := parseTest(t, replace(7, "    client_secret: x\n    secret_expires: 2026-06-01"))
	if err != nil || len(cfg.Warnings) != 0 {
		t.Errorf("far expiry: err %v warnings %v", err, cfg.Warnings)
	}
}

func TestDefaults(t *testing.T) {
	src := strings.Replace(valid, "sinks:\n", `  - name: pop
    protocol: pop3
    host: pop.example
    security: starttls
    username: u
    profile: contoso
    sink: out
  - name: gm
    protocol: graph
    username: g@contoso.com
    profile: contoso
    sink: out
    enabled: false
sinks:
  - {name: hook, type: webhook, url: "https://x"}
`, 1)
	cfg, err := parseTest(t, src)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(cfg.File)
	if cfg.Store != "sqlite:"+filepath.Join(dir, "mailgate.db") || cfg.Listen != DefaultListen || cfg.KeyFile != filepath.Join(dir, "mailgate.key") {
		t.Errorf("top defaults: %q %q %q", cfg.Store, cfg.Listen, cfg.KeyFile)
	}
	p, _ := cfg.Profile("contoso")
	if p.Authority != DefaultAuthority || p.EndpointVersion != "v2" || p.RefreshMargin.D() != 5*time.Minute || p.AuthStyle != "params" {
		t.Errorf("profile defaults: %+v", p)
	}
	m, _ := cfg.Mailbox("forms")
	if m.Port != 993 || m.Security != "tls" || m.SASL != "xoauth2" || m.Folder != "INBOX" || m.Mode != "poll" ||
		m.Interval.D() != time.Minute || m.After != "seen" || !m.Enabled || m.BatchSize != DefaultBatchSize || m.Endpoint != "" {
		t.Errorf("imap defaults: %+v", m)
	}
	m, _ = cfg.Mailbox("pop")
	if m.Port != 110 || m.Security != "starttls" {
		t.Errorf("pop3 defaults: port %d security %q", m.Port, m.Security)
	}
	m, _ = cfg.Mailbox("gm")
	if m.Endpoint != DefaultGraphEndpoint || m.Folder != "inbox" || m.Enabled || m.Port != 0 || m.Security != "" {
		t.Errorf("graph defaults: %+v", m)
	}
	s, _ := cfg.Sink("out")
	if s.Path != filepath.Join(dir, "inbox") {
		t.Errorf("maildir path %q", s.Path)
	}
	s, _ = cfg.Sink("hook")
	if s.Timeout.D() != 30*time.Second {
		t.Errorf("webhook timeout %v", s.Timeout)
	}
	snd, _ := cfg.Sender("noreply")
	if snd.Port != 587 || snd.Security != "starttls" || snd.SASL != "xoauth2" {
		t.Errorf("smtp defaults: %+v", snd)
	}
}

func TestPortDefaults(t *testing.T) {
	tests := []struct {
		protocol, security string
		port               int
	}{
		{"imap", "tls", 993}, {"imap", "starttls", 143}, {"pop3", "tls", 995}, {"pop3", "starttls", 110},
	}
	for _, tc := range tests {
		src := replace(10, "    protocol: "+tc.protocol+"\n    security: "+tc.security)
		cfg, err := parseTest(t, src)
		if err != nil {
			t.Fatal(err)
		}
		if m, _ := cfg.Mailbox("forms"); m.Port != tc.port {
			t.Errorf("%s/%s: port %d, want %d", tc.protocol, tc.security, m.Port, tc.port)
		}
	}
	for sec, port := range map[string]int{"starttls": 587, "tls": 465} {
		cfg, err := parseTest(t, valid+"    security: "+sec+"\n")
		if err != nil {
			t.Fatal(err)
		}
		if s, _ := cfg.Sender("noreply"); s.Port != port {
			t.Errorf("smtp %s: port %d, want %d", sec, s.Port, port)
		}
	}
}

// TestRateDefaults: a sender's rate defaults to Microsoft's published
// limit for its host, and an explicit rate (0 included) wins.
func TestRateDefaults(t *testing.T) {
	graph := "  - name: g\n    protocol: graph\n    username: g@contoso.com\n    profile: contoso\n"
	tests := []struct {
		name, extra, sender string
		want                int
	}{
		{"exchange online", "", "noreply", ExchangeOnlineSMTPRate},
		{"explicit", "    rate: 12\n", "noreply", 12},
		{"explicit zero", "    rate: 0\n", "noreply", 0},
		{"graph", graph, "g", GraphSendRate},
		{"graph elsewhere", graph + "    endpoint: http://127.0.0.1:9/\n", "g", 0},
		{"other host", "", "other", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := valid + tc.extra
			if tc.sender == "other" {
				src = strings.Replace(valid, "smtp.office365.com", "mail.example.com", 1)
				tc.sender = "noreply"
			}
			cfg, err := parseTest(t, src)
			if err != nil {
				t.Fatal(err)
			}
			if s, _ := cfg.Sender(tc.sender); s.Rate != tc.want {
				t.Errorf("rate %d, want %d", s.Rate, tc.want)
			}
		})
	}
	if _, err := parseTest(t, valid+"    rate: -1\n"); err == nil || !strings.Contains(err.Error(), "rate") {
		t.Errorf("rate -1: %v, want an error about rate", err)
	}
}

func TestReferences(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "secret.txt"), []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "certs"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"certs/app.crt", "certs/app.key", "ca.pem"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	src := `store: postgres://mg:${PGPASS}@db:5432/mail
profiles:
  - name: a
    provider: microsoft
    grant: client_credentials
    tenant: ${TENANT}
    client_id: id
    client_secret: file:secret.txt
    tls_ca: ca.pem
  - name: b
    provider: microsoft
    grant: password
    tenant: t
    client_id: id
    username: u@x.example
    password: "lit$${NOT_A_REF}$HOME"
    client_certificate: {cert: certs/app.crt, key: certs/app.key}
`
	path := filepath.Join(dir, "mailgate.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path, env(map[string]string{"PGPASS": "pw", "TENANT": "contoso.example"}))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := cfg.Profile("a")
	b, _ := cfg.Profile("b")
	checks := []struct{ name, got, want string }{
		{"embedded env", cfg.Store, "postgres://mg:pw@db:5432/mail"},
		{"whole env", a.Tenant, "contoso.example"},
		{"file ref, newline trimmed", a.ClientSecret.Reveal(), "from-file"},
		{"relative tls_ca", a.TLSCA, filepath.Join(dir, "ca.pem")},
		{"escape", b.Password.Reveal(), "lit${NOT_A_REF}$HOME"},
		{"relative cert", b.ClientCertificate.Cert, filepath.Join(dir, "certs/app.crt")},
		{"cert alg default", b.ClientCertificate.Alg, "PS256"},
		{"file", cfg.File, path},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, c.got, c.want)
		}
	}
}

func TestSecretRedaction(t *testing.T) {
	const value = "hunter2-very-secret"
	p := Profile{Name: "x", ClientSecret: NewSecret(value), Password: NewSecret(value)}
	s := Sink{Name: "hook", Secret: NewSecret(value)}
	var outputs []string
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		outputs = append(outputs, fmt.Sprintf(f, p), fmt.Sprintf(f, &p), fmt.Sprintf(f, p.ClientSecret), fmt.Sprintf(f, s))
	}
	outputs = append(outputs, fmt.Sprint(p.Password), p.ClientSecret.String())
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("profile", "secret", p.ClientSecret, "profile", p, "sink", s)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "secret", p.ClientSecret)
	outputs = append(outputs, buf.String())
	for _, v := range []any{p, s, p.ClientSecret, map[string]Secret{"k": p.Password}} {
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		outputs = append(outputs, string(j))
	}
	for _, out := range outputs {
		if strings.Contains(out, value) || strings.Contains(out, fmt.Sprintf("%x", value)) {
			t.Errorf("secret leaked: %s", out)
		}
	}
	if !strings.Contains(buf.String(), `"secret":"[redacted]"`) {
		t.Errorf("slog JSON does not show the redaction: %s", buf.String())
	}
	if p.ClientSecret.Reveal() != value || p.ClientSecret.IsZero() || !(Secret{}).IsZero() {
		t.Error("Reveal/IsZero")
	}
	// The error of a missing reference must not echo secret values either.
	_, err := parseTest(t, replace(7, "    client_secret: ${SECRET}\n    password: ${NOPE}"))
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %v", err)
	}
}

func TestSuggest(t *testing.T) {
	keys := []string{"client_id", "client_secret", "scopes", "tenant"}
	tests := []struct{ in, want string }{
		{"clientid", "client_id"}, {"client-secret", "client_secret"}, {"scope", "scopes"},
		{"tennant", "tenant"}, {"zzz", ""}, {"colour", ""},
	}
	for _, tc := range tests {
		if got := suggest(tc.in, keys); got != tc.want {
			t.Errorf("suggest(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "127.0.0.1": true, "127.8.9.1": true, "::1": true, "[::1]": true,
		"example.com": false, "10.0.0.1": false, "128.0.0.1": false, "": false,
	} {
		if got := IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v", host, got)
		}
	}
}

func TestEmptyFile(t *testing.T) {
	cfg, err := parseTest(t, "# nothing yet\n")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != DefaultListen || !strings.HasPrefix(cfg.Store, "sqlite:") {
		t.Errorf("defaults: %+v", cfg)
	}
}

func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 8; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [", i, i)
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]\n")
	}
	b.WriteString("profiles:\n  - name: x\n    scopes: *a7\n")
	_, err := parseTest(t, b.String())
	if err == nil {
		t.Fatal("no error")
	}
	if len(problemsOf(t, err)) > 50 {
		t.Errorf("too many problems: %d", len(problemsOf(t, err)))
	}
}

func TestValueMarshal(t *testing.T) {
	v := struct {
		D  Date
		Du Duration
		S  Secret
		E  Secret
	}{Date{time.Date(2027, 5, 1, 0, 0, 0, 0, time.UTC)}, Duration(90 * time.Second), NewSecret("x-secret"), Secret{}}
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"D":"2027-05-01","Du":"1m30s","S":"[redacted]","E":""}`; string(j) != want {
		t.Errorf("json = %s, want %s", j, want)
	}
}

// TestListenEveryInterface: an empty host (":8025"), 0.0.0.0 and [::] all
// bind every interface and get the plain-HTTP warning; a loopback address
// does not.
func TestListenEveryInterface(t *testing.T) {
	tests := []struct {
		listen string
		warn   bool
	}{
		{":8025", true},
		{"0.0.0.0:8025", true},
		{"[::]:8025", true},
		{"192.0.2.10:8025", true},
		{"console.localhost:8025", true}, // a name resolved elsewhere than this machine
		{"127.0.0.1:8025", false},
		{"[::1]:8025", false},
		{"localhost:8025", false},
	}
	for _, tc := range tests {
		cfg, err := parseTest(t, valid+"listen: \""+tc.listen+"\"\n")
		if err != nil {
			t.Fatalf("%s: %v", tc.listen, err)
		}
		warned := false
		for _, w := range cfg.Warnings {
			warned = warned || w.Key == "listen" && strings.Contains(w.Msg, "plain HTTP")
		}
		if warned != tc.warn {
			t.Errorf("listen %q: warned %v, want %v (%v)", tc.listen, warned, tc.warn, cfg.Warnings)
		}
	}
}

// TestSecurityNoneLoopbackOnly: security none is accepted for literal
// loopback addresses and the name localhost only; a *.localhost name is
// resolved through DNS and may lead anywhere.
func TestSecurityNoneLoopbackOnly(t *testing.T) {
	tests := []struct {
		host string
		ok   bool
	}{
		{"localhost", true},
		{"127.0.0.1", true},
		{"127.0.0.2", true},
		{"::1", true},
		{"mail.localhost", false},
		{"localhost.example.com", false},
		{"mail.example.com", false},
	}
	for _, tc := range tests {
		src := strings.Replace(valid, "    host: outlook.office365.com\n", "    host: \""+tc.host+"\"\n    port: 1143\n    security: none\n", 1)
		_, err := parseTest(t, src)
		if tc.ok && err != nil {
			t.Errorf("%s: %v", tc.host, err)
		}
		if !tc.ok {
			if err == nil {
				t.Errorf("%s: security none accepted", tc.host)
				continue
			}
			if ps := problemsOf(t, err); len(ps) != 1 || ps[0].Key != "mailboxes[forms].security" {
				t.Errorf("%s: %v", tc.host, ps)
			}
		}
	}
}

// TestManyMailboxes: a file of 10,000 mailboxes of a dozen keys each loads
// (the bound on values is for aliases, not for large installations).
func TestManyMailboxes(t *testing.T) {
	head, rest, _ := strings.Cut(valid, "mailboxes:\n")
	_, tail, _ := strings.Cut(rest, "sinks:\n")
	var b strings.Builder
	b.WriteString(head + "mailboxes:\n")
	for i := range 10000 {
		fmt.Fprintf(&b, "  - {name: mb%d, protocol: imap, host: outlook.office365.com, port: 993, security: tls, sasl: xoauth2, username: mb%d@contoso.com, profile: contoso, mode: idle, after: seen, sink: out}\n", i, i)
	}
	b.WriteString("sinks:\n" + tail)
	c, err := parseTest(t, b.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Mailboxes) != 10000 {
		t.Fatalf("%d mailboxes, want 10000", len(c.Mailboxes))
	}
}

// TestSenderLimitDefaults: max_connections defaults to 1 and
// max_recipients_per_day to Exchange Online's 10,000 for its hosts (0
// elsewhere); explicit values win and negative ones are refused.
func TestSenderLimitDefaults(t *testing.T) {
	graph := "  - name: g\n    protocol: graph\n    username: g@contoso.com\n    profile: contoso\n"
	tests := []struct {
		name, src, sender string
		conns, rcpts      int
	}{
		{"exchange online", valid, "noreply", 1, ExchangeOnlineRecipientsPerDay},
		{"explicit", valid + "    max_connections: 4\n    max_recipients_per_day: 50\n", "noreply", 4, 50},
		{"explicit zero", valid + "    max_recipients_per_day: 0\n", "noreply", 1, 0},
		{"graph", valid + graph, "g", 1, ExchangeOnlineRecipientsPerDay},
		{"other host", strings.Replace(valid, "smtp.office365.com", "mail.example.com", 1), "noreply", 1, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseTest(t, tc.src)
			if err != nil {
				t.Fatal(err)
			}
			s, _ := cfg.Sender(tc.sender)
			if s.MaxConnections != tc.conns || s.MaxRecipientsPerDay != tc.rcpts {
				t.Errorf("max_connections %d, max_recipients_per_day %d; want %d, %d", s.MaxConnections, s.MaxRecipientsPerDay, tc.conns, tc.rcpts)
			}
		})
	}
	for _, bad := range []string{"    max_connections: -1\n", "    max_connections: 101\n", "    max_recipients_per_day: -1\n"} {
		key, _, _ := strings.Cut(strings.TrimSpace(bad), ":")
		if _, err := parseTest(t, valid+bad); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%q: %v, want an error about %s", bad, err, key)
		}
	}
}
