package e2e

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailgate/mailgate/internal/emulator"
)

// TestTestAfterSecretChanged: a token cached with the right client secret
// does not make `mailgate test`, `doctor` or `token` pass once the secret in
// the config is wrong; the good token stays cached for when it is put back.
func TestTestAfterSecretChanged(t *testing.T) {
	srv, dir := emulatorConfig(t, "")
	good := mailgate(t, t.Context(), dir, "token", "emulator-secret")
	if good.code != 0 {
		t.Fatalf("token: exit %d\n%s", good.code, good.stderr)
	}
	// the config reads the secret from this file (client_secret: file:…)
	path := filepath.Join(srv.Dir(), "client-secret.txt")
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(orig)) != emulator.DemoAppSecret {
		t.Fatalf("%s does not hold the demo secret", path)
	}
	if err := os.WriteFile(path, []byte("a-wrong-secret-value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"test", "emulator-secret"}, {"doctor", "emulator-secret"}, {"token", "emulator-secret"}} {
		r := mailgate(t, t.Context(), dir, args...)
		out := r.stdout + r.stderr
		if r.code != 1 || !strings.Contains(out, "AADSTS7000215: the client secret is wrong") || !strings.Contains(out, "fix: Entra admin center") {
			t.Errorf("%s with a wrong secret: exit %d, want 1 with AADSTS7000215 explained\n%s", strings.Join(args, " "), r.code, out)
		}
		if args[0] == "token" && r.stdout != "" {
			t.Errorf("token printed %d bytes on stdout, want none", len(r.stdout))
		}
	}
	// The secret put back: the token cached before is good again, no
	// failure replaced it.
	if err := os.WriteFile(path, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	n := srv.TokenRequests()
	r := mailgate(t, t.Context(), dir, "token", "emulator-secret")
	if r.code != 0 || r.stdout != good.stdout || srv.TokenRequests() != n {
		t.Errorf("secret put back: exit %d, same token %v, %d new requests; want the cached token\n%s",
			r.code, r.stdout == good.stdout, srv.TokenRequests()-n, r.stderr)
	}
}

// TestTestWhileTokenEndpointDown: while the token endpoint fails, Test
// (the command and the console's button) and doctor fail although a valid
// token is cached; `token` still answers from the cache for the programs
// that use it, and `token --fresh` asks the endpoint.
func TestTestWhileTokenEndpointDown(t *testing.T) {
	srv, dir := emulatorConfig(t, "")
	appendConfig(t, dir, "listen: 127.0.0.1:0\n")
	adminAdd(t, dir, "a long enough password")
	api := mailgate(t, t.Context(), dir, "admin", "token", "ops")
	bearer := strings.TrimSpace(api.stdout)
	if api.code != 0 || bearer == "" {
		t.Fatalf("admin token: exit %d\n%s", api.code, api.stderr)
	}
	cached := mailgate(t, t.Context(), dir, "token", "emulator-secret")
	if cached.code != 0 {
		t.Fatalf("token: exit %d\n%s", cached.code, cached.stderr)
	}
	serve := startServe(t, dir)
	testButton := func() string {
		t.Helper()
		code, b := serve.api(t, "POST", "/api/v1/profiles/emulator-secret/test", bearer, "")
		if code != 200 {
			t.Fatalf("Test button: HTTP %d\n%s", code, b)
		}
		return b
	}
	if body := testButton(); !strings.Contains(body, `"ok": true`) {
		t.Fatalf("Test button with the endpoint up:\n%s\n%s", body, serve.logs.String())
	}
	// the button's new token replaced the one cached before
	if cached = mailgate(t, t.Context(), dir, "token", "emulator-secret"); cached.code != 0 {
		t.Fatalf("token: exit %d\n%s", cached.code, cached.stderr)
	}

	srv.InjectFault(emulator.Fault{Status: 503, Route: "token"})
	for _, args := range [][]string{{"test", "emulator-secret"}, {"doctor", "emulator-secret"}, {"token", "emulator-secret", "--fresh"}} {
		r := mailgate(t, t.Context(), dir, args...)
		if r.code != 1 || !strings.Contains(r.stdout+r.stderr, "503") {
			t.Errorf("%s with the token endpoint down: exit %d, want 1 naming the 503\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
	}
	if body := testButton(); !strings.Contains(body, `"ok": false`) || !strings.Contains(body, "503") {
		t.Errorf("Test button with the token endpoint down:\n%s", body)
	}
	if r := mailgate(t, t.Context(), dir, "token", "emulator-secret"); r.code != 0 || r.stdout != cached.stdout {
		t.Errorf("token with the endpoint down: exit %d, cached token %v; the cached token must still serve\n%s", r.code, r.stdout == cached.stdout, r.stderr)
	}

	srv.ClearFaults()
	n := srv.TokenRequests()
	fresh := mailgate(t, t.Context(), dir, "token", "emulator-secret", "--fresh")
	if fresh.code != 0 || srv.TokenRequests() != n+1 || fresh.stdout == cached.stdout {
		t.Fatalf("token --fresh: exit %d, %d requests (want 1), new token %v\n%s", fresh.code, srv.TokenRequests()-n, fresh.stdout != cached.stdout, fresh.stderr)
	}
	if _, err := srv.VerifyAccessToken(strings.TrimSpace(fresh.stdout)); err != nil {
		t.Fatal(err)
	}
	// the fresh token replaced the cached one
	if r := mailgate(t, t.Context(), dir, "token", "emulator-secret"); r.code != 0 || r.stdout != fresh.stdout || srv.TokenRequests() != n+1 {
		t.Errorf("token after --fresh: exit %d, the fresh token %v, %d requests", r.code, r.stdout == fresh.stdout, srv.TokenRequests()-n)
	}
}

// TestDemoTwiceInOneDir: `mailgate demo --dir D` run again in the same
// directory (even on the same port) works: the new emulator has new keys,
// and the tokens cached by the first run are not reused.
func TestDemoTwiceInOneDir(t *testing.T) {
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	for run := 1; run <= 2; run++ {
		r := mailgate(t, t.Context(), dir, "demo", "--dir", dir, "--once", "--listen", addr)
		if r.code != 0 || strings.Contains(r.stdout+r.stderr, "unexpected") {
			t.Fatalf("run %d: exit %d\n%s%s", run, r.code, r.stdout, r.stderr)
		}
		if moved := strings.Contains(r.stderr, "moved to "+filepath.Join(dir, "previous-run")); moved != (run == 2) {
			t.Errorf("run %d: said it moved the previous run's state: %v\n%s", run, moved, r.stderr)
		}
	}
}
