package web

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/mailgate/mailgate/internal/proxy"
)

// TestProxyAccountsAndListeners: the API lists the proxy's listeners and
// accounts, the password only as "set", each account's last login from
// the runtime; the dashboard shows them.
func TestProxyAccountsAndListeners(t *testing.T) {
	f := newFixture(t)
	get := func(path string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+f.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	_, body := get("/api/v1/accounts")
	var v struct {
		Accounts []AccountView `json:"accounts"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if len(v.Accounts) != 2 || v.Accounts[0].Username != "scanner" || v.Accounts[0].Password != "set" ||
		v.Accounts[0].LastLogin == nil || v.Accounts[0].LastLogin.Result != "upstream" || v.Accounts[1].LastLogin != nil ||
		len(v.Accounts[1].Listeners) != 1 {
		t.Errorf("accounts: %s", body)
	}
	if code, one := get("/api/v1/accounts/fax"); code != 200 || !strings.Contains(one, `"mailbox": "fax@contoso.com"`) {
		t.Errorf("account fax: %d %s", code, one)
	}
	if code, _ := get("/api/v1/accounts/nobody"); code != 404 {
		t.Errorf("unknown account: %d", code)
	}
	if _, l := get("/api/v1/listeners"); !strings.Contains(l, `"upstream": "tls://outlook.office365.com:993"`) {
		t.Errorf("listeners: %s", l)
	}
	_, page := get("/")
	for _, want := range []string{`<table id="accounts">`, `<tr data-name="scanner">`, "from 192.0.2.7 on legacy-imap", "upstream", "the server refused the app-only token", `<tr data-name="legacy-imap">`} {
		if !strings.Contains(page, want) {
			t.Errorf("dashboard lacks %q", want)
		}
	}
}

// TestProxyAccountsAPI: a console account made through the API is stored
// with the bcrypt hash of its password only, never shown; a change
// without a password keeps the hash; a file account cannot be changed or
// deleted; a console one can be deleted.
func TestProxyAccountsAPI(t *testing.T) {
	f := newFixture(t)
	_, ed, srv := recordsServer(t, f)
	do := func(method, path, body string) (int, string) {
		code, _, b := bearer(t, srv.URL, f.token, method, path, body)
		return code, b
	}
	const pw = "typed-in-PROXY-pw-9"
	code, body := do("POST", "/api/v1/accounts", `{"username":"printer","password":"`+pw+`","profile":"contoso","mailbox":"printer@contoso.com","allowed_from":["printer@contoso.com"]}`)
	if code != 201 || !strings.Contains(body, `"source": "console"`) || !strings.Contains(body, `"password": "set"`) || strings.Contains(body, pw) {
		t.Fatalf("create: %d %s", code, body)
	}
	y, _, _ := ed.Load(t.Context(), "accounts", "printer")
	var stored AccountInput
	if err := yaml.Unmarshal(y, &stored); err != nil || strings.Contains(string(y), pw) || !proxy.CheckPassword(stored.Password, pw) {
		t.Fatalf("stored record is not the hash of the password: %s", y)
	}
	if code, body := do("PUT", "/api/v1/accounts/printer", `{"profile":"contoso","mailbox":"printer2@contoso.com"}`); code != 200 || !strings.Contains(body, "printer2@contoso.com") {
		t.Errorf("update: %d %s", code, body)
	}
	y2, _, _ := ed.Load(t.Context(), "accounts", "printer")
	var changed AccountInput
	_ = yaml.Unmarshal(y2, &changed)
	if changed.Password != stored.Password {
		t.Errorf("the hash changed on an update without a password: %s", y2)
	}
	for _, tc := range []struct {
		method, path, body string
		code               int
	}{
		{"POST", "/api/v1/accounts", `{"username":"x","password":"p","profile":"nope","mailbox":"x@contoso.com"}`, 422},
		{"POST", "/api/v1/accounts", `{"username":"x","profile":"contoso","mailbox":"x@contoso.com"}`, 422},
		{"POST", "/api/v1/accounts", `{"username":"x","password":"${HOME}","profile":"contoso","mailbox":"x@contoso.com"}`, 422},
		{"POST", "/api/v1/accounts", `{"username":"scanner","password":"p","profile":"contoso","mailbox":"x@contoso.com"}`, 422},
		{"PUT", "/api/v1/accounts/scanner", `{"profile":"contoso","mailbox":"x@contoso.com"}`, 409},
		{"DELETE", "/api/v1/accounts/scanner", "", 409},
		{"DELETE", "/api/v1/accounts/nobody", "", 404},
		{"DELETE", "/api/v1/accounts/printer", "", 204},
	} {
		if code, body := do(tc.method, tc.path, tc.body); code != tc.code {
			t.Errorf("%s %s %s: %d %s, want %d", tc.method, tc.path, tc.body, code, body, tc.code)
		}
	}
	if _, found, _ := ed.Load(t.Context(), "accounts", "printer"); found {
		t.Error("the deleted account is still stored")
	}
}
