package web

import (
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/metrics"
)

// declaredConfig sets every key of every kind at least once; its secrets
// (typed in as values, some inside URLs) must never be served.
const declaredConfig = `profiles:
  - name: ropc
    provider: microsoft
    grant: password
    tenant: contoso.onmicrosoft.com
    client_id: aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee
    client_secret: decl-CLIENT-secret-01
    secret_expires: 2036-12-01
    scopes: [https://outlook.office365.com/.default]
    authority: https://login.microsoftonline.com
    endpoint_version: v1
    token_url: https://login.example.com/t/decl-PATH-token-0123456789abcdef/token?key=decl-QUERY-02
    authorize_url: https://login.example.com/authorize
    device_url: https://login.example.com/device
    redirect_uri: http://127.0.0.1:8025/oauth/callback
    username: svc@contoso.com
    password: decl-PASSWORD-03
    http_proxy: http://user:decl-PROXY-pass-04@proxy.example:3128
    tls_ca: /etc/hostname
    refresh_margin: 10m
    auth_style: basic
  - {name: cert, provider: microsoft, grant: client_credentials, tenant: contoso.onmicrosoft.com, client_id: aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee,
     client_certificate: {cert: /etc/hostname, key: /etc/hostname, alg: RS256}}
mailboxes:
  - {name: box, protocol: imap, host: outlook.office365.com, port: 993, security: tls, tls_ca: /etc/hostname, sasl: oauthbearer,
     username: box@contoso.com, folder: INBOX, profile: ropc, mode: idle, interval: 2m, after: keep, sink: hook, enabled: true, batch_size: 7}
  - {name: gbox, protocol: graph, endpoint: https://graph.example.com/v/decl-GRAPH-token-0123456789abc, username: g@contoso.com, profile: ropc, sink: pipe}
sinks:
  - {name: md, type: maildir, path: ./md}
  - {name: hook, type: webhook, url: https://hook.example.com/in, secret: decl-HMAC-05, timeout: 5s, headers: {X-Key: decl-HEADER-06}}
  - {name: pipe, type: command, command: [/bin/cat, decl-ARG-07], timeout: 9s}
senders:
  - {name: smtp1, protocol: smtp, host: smtp.office365.com, port: 587, security: starttls, tls_ca: /etc/hostname, sasl: xoauth2,
     username: s@contoso.com, profile: ropc, allowed_from: [s@contoso.com]}
  - {name: graph1, protocol: graph, endpoint: https://graph.microsoft.com, username: g@contoso.com, profile: ropc, allowed_from: [g@contoso.com], save_to_sent_items: false}
`

var declaredSecrets = []string{"decl-CLIENT-secret-01", "decl-QUERY-02", "decl-PASSWORD-03", "decl-PROXY-pass-04", "decl-HMAC-05", "decl-HEADER-06",
	"decl-ARG-07", "decl-PATH-token", "decl-GRAPH-token"}

func declaredServer(t *testing.T) (*Server, *httptest.Server, string) {
	t.Helper()
	cfg, st := configAndStore(t, declaredConfig, nil)
	tok := opsToken(t, st, "declared-admin-password")
	w := New(Options{Store: st, Config: cfg, Metrics: &metrics.Registry{}})
	srv := httptest.NewServer(w)
	t.Cleanup(srv.Close)
	return w, srv, tok
}

// TestRecordJSONHasEveryDeclaredKey: the API's JSON of a record holds
// every key of its declaration that applies to it (under its own name, or
// the view key that covers it: a command's program, a webhook's header
// names), with no secret value, even for keys no view names. Keys left
// empty are left out, as the views leave out theirs.
func TestRecordJSONHasEveryDeclaredKey(t *testing.T) {
	w, srv, tok := declaredServer(t)
	cfg := w.cfg()
	items := map[string][]any{}
	for _, p := range cfg.Profiles {
		items["profiles"] = append(items["profiles"], p)
	}
	for _, m := range cfg.Mailboxes {
		items["mailboxes"] = append(items["mailboxes"], m)
	}
	for _, s := range cfg.Sinks {
		items["sinks"] = append(items["sinks"], s)
	}
	for _, s := range cfg.Senders {
		items["senders"] = append(items["senders"], s)
	}
	checked := 0
	for _, kind := range config.Kinds {
		code, _, body := bearer(t, srv.URL, tok, "GET", "/api/v1/"+kind, "")
		if code != 200 {
			t.Fatalf("GET %s: %d %s", kind, code, body)
		}
		for _, s := range declaredSecrets {
			if strings.Contains(body, s) {
				t.Errorf("GET /api/v1/%s shows %q:\n%s", kind, s, body)
			}
		}
		var got map[string][]map[string]any
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatal(err)
		}
		covered := presented(viewType(kind))
		fields := config.Fields(kind)
		for i, item := range items[kind] {
			rec := got[kind][i]
			for _, f := range fields {
				top, _, _ := strings.Cut(f.Key, ".")
				v, set := f.Value(item)
				if !set || !f.Applies(item, fields) || !f.WriteOnly && reflect.ValueOf(v).IsZero() {
					continue // an empty text is left out
				}
				if _, ok := rec[top]; !ok && !covered[top] {
					t.Errorf("%s %v: key %s missing:\n%v", kind, rec["name"], f.Key, rec)
				}
				if f.WriteOnly {
					if v, ok := rec[f.Key]; ok && v != secretSet && v != secretNotSet {
						t.Errorf("%s %v: write-only %s shown as %v", kind, rec["name"], f.Key, v)
					}
				}
				checked++
			}
		}
	}
	if checked < 60 {
		t.Errorf("only %d keys checked", checked)
	}
	// keys no view names, shown from the declaration
	code, _, body := bearer(t, srv.URL, tok, "GET", "/api/v1/profiles/ropc", "")
	for _, want := range []string{`"password": "set"`, `"http_proxy": "http://proxy.example:3128"`, `"token_url": "https://login.example.com/t/%E2%80%A6/token?key=%E2%80%A6"`,
		`"refresh_margin": "10m0s"`, `"auth_style": "basic"`} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("profile ropc lacks %s: %d\n%s", want, code, body)
		}
	}
	code, _, body = bearer(t, srv.URL, tok, "GET", "/api/v1/mailboxes/box", "")
	for _, want := range []string{`"batch_size": 7`, `"interval": "2m0s"`, `"sasl": "oauthbearer"`} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("mailbox box lacks %s: %d\n%s", want, code, body)
		}
	}
	if strings.Contains(body, `"endpoint"`) {
		t.Errorf("an imap mailbox shows endpoint, a graph-only key:\n%s", body)
	}
}

// TestOpenAPIRecordSchemas: every declared key of every kind is in the
// OpenAPI schema of the body that creates a record (write-only keys marked
// writeOnly, allowed values as enum, required keys required) and in the
// schema of the record's JSON (or covered by a view key).
func TestOpenAPIRecordSchemas(t *testing.T) {
	_, srv, tok := declaredServer(t)
	code, _, body := bearer(t, srv.URL, tok, "GET", "/api/v1/openapi.json", "")
	if code != 200 {
		t.Fatalf("openapi: %d", code)
	}
	var doc struct {
		Paths      map[string]map[string]any `json:"paths"`
		Components struct {
			Schemas map[string]struct {
				Properties map[string]struct {
					Enum        []string `json:"enum"`
					WriteOnly   bool     `json:"writeOnly"`
					Description string   `json:"description"`
				} `json:"properties"`
				Required []string `json:"required"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	for _, kind := range config.Kinds {
		item := schemaName(kind)
		in, out := doc.Components.Schemas[item+"Input"], doc.Components.Schemas[item]
		if _, ok := doc.Paths["/api/v1/"+kind]["post"]; !ok {
			t.Errorf("no POST /api/v1/%s", kind)
		}
		covered := presented(viewType(kind))
		n := 0
		for _, f := range config.Fields(kind) {
			if f.Type == "object" {
				continue
			}
			n++
			p, ok := in.Properties[f.Key]
			switch {
			case !ok:
				t.Errorf("%sInput lacks %s", item, f.Key)
			case p.WriteOnly != f.WriteOnly:
				t.Errorf("%sInput.%s writeOnly = %v", item, f.Key, p.WriteOnly)
			case !slices.Equal(p.Enum, f.Enum):
				t.Errorf("%sInput.%s enum = %v, want %v", item, f.Key, p.Enum, f.Enum)
			case !strings.Contains(p.Description, f.Doc):
				t.Errorf("%sInput.%s description = %q", item, f.Key, p.Description)
			}
			if slices.Contains(in.Required, f.Key) != f.Required {
				t.Errorf("%sInput: %s required = %v", item, f.Key, !f.Required)
			}
			top, _, _ := strings.Cut(f.Key, ".")
			if _, ok := out.Properties[f.Key]; !ok && !covered[top] {
				t.Errorf("%s lacks %s", item, f.Key)
			}
		}
		if n < 8 {
			t.Errorf("%s: only %d keys", kind, n)
		}
	}
}

// TestFormHasEveryDeclaredKey: the console's new-record form has an input
// for every declared key, allowed values as choices (the grant's from
// oauth, refresh_token included).
func TestFormHasEveryDeclaredKey(t *testing.T) {
	_, srv, tok := declaredServer(t)
	for _, kind := range config.Kinds {
		code, _, body := bearer(t, srv.URL, tok, "GET", "/"+kind+"/new", "")
		if code != 200 {
			t.Fatalf("GET /%s/new: %d", kind, code)
		}
		for _, f := range config.Fields(kind) {
			if f.Type == "object" {
				continue
			}
			if !strings.Contains(body, `name="`+f.Key+`"`) {
				t.Errorf("/%s/new has no input for %s", kind, f.Key)
			}
			for _, v := range f.Enum {
				if !strings.Contains(body, `<option value="`+v+`"`) {
					t.Errorf("/%s/new: %s lacks the choice %s", kind, f.Key, v)
				}
			}
		}
	}
	_, _, body := bearer(t, srv.URL, tok, "GET", "/profiles/new", "")
	if !strings.Contains(body, `<option value="refresh_token">`) {
		t.Error("the grant select lacks refresh_token")
	}
}
