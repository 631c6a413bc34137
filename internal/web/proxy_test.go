package web

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
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
