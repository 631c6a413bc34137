package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServeCountersSurviveReload: the dashboard's "Delivered" count of a
// mailbox survives a reload caused by saving an unrelated record, and
// "Last token" of a profile in use shows a token even when it came from the
// store's cache (here: fetched by `mailgate token` before serve started)
// rather than from a request of this process.
func TestServeCountersSurviveReload(t *testing.T) {
	_, dir := graphServeConfig(t, 3)
	if r := mailgate(t, t.Context(), dir, "token", "emulator-graph"); r.code != 0 {
		t.Fatalf("token: exit %d\n%s", r.code, r.stderr)
	}
	adminAdd(t, dir, "a long enough password")
	r := mailgate(t, t.Context(), dir, "admin", "token", "ops")
	tok := strings.TrimSpace(r.stdout)
	if r.code != 0 || tok == "" {
		t.Fatalf("admin token: exit %d %s", r.code, r.stderr)
	}
	serve := startServe(t, dir)
	do := func(method, path, body string) (int, string) { return serve.api(t, method, path, tok, body) }
	var status string
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(status, `"delivered_since_start": 3`); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("status never showed 3 delivered:\n%s\n%s", status, serve.logs.String())
		}
		_, status = do("GET", "/api/v1/status", "")
	}
	if _, p := do("GET", "/api/v1/profiles/emulator-graph", ""); !strings.Contains(p, `"result": "ok"`) {
		t.Errorf("last token of a profile in use (token from the store's cache):\n%s", p)
	}
	if code, body := do("POST", "/api/v1/sinks", `{"name":"unrelated","type":"webhook","url":"https://app.example.com/in"}`); code != http.StatusCreated {
		t.Fatalf("save an unrelated sink: %d %s", code, body)
	}
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(serve.logs.String(), "mailgate reloaded"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not reload:\n%s", serve.logs.String())
		}
	}
	if _, status = do("GET", "/api/v1/status", ""); !strings.Contains(status, `"delivered_since_start": 3`) {
		t.Errorf("after the reload:\n%s", status)
	}
	if _, p := do("GET", "/api/v1/profiles/emulator-graph", ""); !strings.Contains(p, `"result": "ok"`) {
		t.Errorf("last token after the reload:\n%s", p)
	}
}
