package web

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
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

// TestProxyAccountForm: the console's account form adds an account (its
// password stored only as the bcrypt hash), edits it (an empty password
// keeps the hash; the form never shows the hash), shows a problem without
// echoing the password, refuses a file account, and deletes; the
// dashboard offers Add, Edit and Delete.
func TestProxyAccountForm(t *testing.T) {
	f := newFixture(t)
	_, ed, srv := recordsServer(t, f)
	noRedirects := &http.Client{CheckRedirect: noRedirect}
	post := func(path string, form url.Values) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Authorization", "Bearer "+f.token)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := noRedirects.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	get := func(path string) (int, string) {
		code, _, b := bearer(t, srv.URL, f.token, "GET", path, "")
		return code, b
	}
	stored := func() AccountInput {
		t.Helper()
		y, found, err := ed.Load(t.Context(), "accounts", "printer")
		if err != nil || !found {
			t.Fatalf("printer not stored: %v", err)
		}
		var a AccountInput
		if err := yaml.Unmarshal(y, &a); err != nil {
			t.Fatal(err)
		}
		return a
	}
	if code, page := get("/accounts/new"); code != 200 || !strings.Contains(page, `<input type="password" name="password"`) ||
		!strings.Contains(page, `name="username"`) || !strings.Contains(page, `name="allowed_from"`) || !strings.Contains(page, `name="rate"`) {
		t.Fatalf("new account form: %d %s", code, page)
	}
	const pw = "typed-in-FORM-pw-7"
	code, body := post("/accounts", url.Values{"original": {""}, "username": {"printer"}, "password": {pw}, "profile": {"contoso"},
		"mailbox": {"printer@contoso.com"}, "listeners": {""}, "allowed_from": {"printer@contoso.com @reports.contoso.com"}, "rate": {"10"}})
	if code != http.StatusSeeOther {
		t.Fatalf("add: %d %s", code, body)
	}
	first := stored()
	if !proxy.CheckPassword(first.Password, pw) || first.Rate != 10 || len(first.AllowedFrom) != 2 {
		t.Fatalf("stored account: %+v", first)
	}
	code, page := get("/accounts/printer/edit")
	if code != 200 || !strings.Contains(page, `value="printer@contoso.com @reports.contoso.com"`) || !strings.Contains(page, `value="10"`) ||
		strings.Contains(page, first.Password) || strings.Contains(page, pw) {
		t.Fatalf("edit form: %d %s", code, page)
	}
	code, body = post("/accounts", url.Values{"original": {"printer"}, "username": {"printer"}, "password": {""}, "profile": {"contoso"},
		"mailbox": {"printer2@contoso.com"}, "allowed_from": {"@contoso.com"}})
	if code != http.StatusSeeOther {
		t.Fatalf("edit: %d %s", code, body)
	}
	if second := stored(); second.Password != first.Password || second.Mailbox != "printer2@contoso.com" || second.Rate != 0 {
		t.Errorf("after an edit with an empty password: %+v (hash kept: %v)", second, second.Password == first.Password)
	}
	code, body = post("/accounts", url.Values{"original": {"printer"}, "username": {"printer"}, "password": {"another-" + pw}, "profile": {"contoso"},
		"mailbox": {"printer2@contoso.com"}, "rate": {"fast"}})
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "rate:") || strings.Contains(body, pw) {
		t.Errorf("bad rate: %d %s", code, body)
	}
	code, body = post("/accounts", url.Values{"original": {""}, "username": {"x"}, "password": {"p"}, "profile": {"nope"}, "mailbox": {"x@contoso.com"}})
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "nope") {
		t.Errorf("unknown profile: %d %s", code, body)
	}
	if code, _ := get("/accounts/scanner/edit"); code != http.StatusNotFound {
		t.Errorf("a file account's edit form: %d", code)
	}
	_, dash := get("/")
	for _, want := range []string{`id="add-accounts" href="/accounts/new"`, `href="/accounts/printer/edit"`, `action="/accounts/printer/delete"`} {
		if !strings.Contains(dash, want) {
			t.Errorf("dashboard lacks %q", want)
		}
	}
	if strings.Contains(dash, `href="/accounts/scanner/edit"`) {
		t.Error("the dashboard offers to edit a file account")
	}
	if code, body := post("/accounts/printer/delete", url.Values{}); code != http.StatusSeeOther {
		t.Fatalf("delete: %d %s", code, body)
	}
	if _, found, _ := ed.Load(t.Context(), "accounts", "printer"); found {
		t.Error("the deleted account is still stored")
	}
}
