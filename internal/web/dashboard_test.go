package web

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/store"
)

// TestDashboardLastTokenAndRefresh: a profile whose token this process did
// not request (it came from the store's cache, fetched by another process
// or before a restart) shows that token rather than "none yet"; one with
// nothing cached still says "none yet"; the dashboard reloads itself
// without scripts (a meta refresh, which the CSP allows).
func TestDashboardLastTokenAndRefresh(t *testing.T) {
	cfg, st := configAndStore(t, `profiles:
  - {name: app, provider: microsoft, grant: client_credentials, tenant: contoso.onmicrosoft.com, client_id: aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee, client_secret: x, scopes: [https://outlook.office365.com/.default]}
  - {name: idle, provider: microsoft, grant: client_credentials, tenant: contoso.onmicrosoft.com, client_id: aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee, client_secret: x, scopes: [https://outlook.office365.com/.default]}
`, nil)
	now := time.Now()
	if err := st.SaveToken(t.Context(), "app", "https://outlook.office365.com/.default",
		&store.Token{AccessToken: "at-value", TokenType: "Bearer", IssuedAt: now, Expiry: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	tok := opsToken(t, st, secrets[6])
	srv := httptest.NewServer(New(Options{Store: st, Config: cfg,
		Runtime: &runtimeFuncs{}}))
	t.Cleanup(srv.Close)
	get := func(path string) string {
		code, _, b := bearer(t, srv.URL, tok, "GET", path, "")
		if code != 200 {
			t.Fatalf("GET %s: %d %s", path, code, b)
		}
		return b
	}
	if p := get("/api/v1/profiles/app"); !strings.Contains(p, `"result": "ok"`) || !strings.Contains(p, `"cached": true`) {
		t.Errorf("app's last token:\n%s", p)
	}
	if p := get("/api/v1/profiles/idle"); strings.Contains(p, "last_token") {
		t.Errorf("idle has no token:\n%s", p)
	}
	page := get("/")
	for _, want := range []string{`<meta http-equiv="refresh" content="30">`, "(cached)", "none yet"} {
		if !strings.Contains(page, want) {
			t.Errorf("dashboard lacks %q", want)
		}
	}
}
