package cli

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/store"
)

// TestAdminCommands: admin list, unlock, remove and the token commands
// (list, revoke, --expires) on a store, and a password reset that offers
// to revoke the administrator's tokens (--revoke-tokens).
func TestAdminCommands(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "mailgate.yaml")
	if err := os.WriteFile(cfg, []byte("listen: 127.0.0.1:8025\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(stdin string, args ...string) (int, string, string) {
		t.Helper()
		var out, errb bytes.Buffer
		code := Main(t.Context(), append(args, "--config", cfg), Stdio{In: strings.NewReader(stdin), Out: &out, Err: &errb})
		return code, out.String(), errb.String()
	}
	for _, n := range []string{"ops", "dev"} {
		if code, _, e := run("a long enough password\n", "admin", "add", n); code != ExitOK {
			t.Fatalf("admin add %s: %d %s", n, code, e)
		}
	}
	code, tok, e := run("", "admin", "token", "ops", "--expires", "90d")
	if code != ExitOK || !strings.HasPrefix(tok, "mgt_") || !strings.Contains(e, "it expires "+time.Now().Add(90*24*time.Hour).UTC().Format("2006-01-02")) {
		t.Fatalf("admin token --expires: %d %q %s", code, tok, e)
	}
	if code, _, _ := run("", "admin", "token", "dev"); code != ExitOK {
		t.Fatal("admin token dev")
	}
	code, out, e := run("", "admin", "token", "list")
	rows := strings.Split(strings.TrimSpace(out), "\n")
	if code != ExitOK || len(rows) != 3 || !strings.HasPrefix(rows[0], "ID") || strings.Contains(out, strings.TrimSpace(tok)) {
		t.Fatalf("admin token list: %d\n%s%s", code, out, e)
	}
	opsRow := regexp.MustCompile(`(?m)^([0-9a-f]{12})\s+ops\s.*\s` + time.Now().Add(90*24*time.Hour).UTC().Format("2006-01-02")).FindStringSubmatch(out)
	if opsRow == nil {
		t.Fatalf("no row for ops's token with its expiry:\n%s", out)
	}
	if _, out, _ := run("", "admin", "token", "list", "dev"); strings.Count(out, "\n") != 2 || !strings.Contains(out, " dev ") {
		t.Errorf("admin token list dev:\n%s", out)
	}
	if code, _, e := run("", "admin", "token", "revoke", opsRow[1]); code != ExitOK {
		t.Errorf("revoke: %d %s", code, e)
	}
	if code, _, e := run("", "admin", "token", "revoke", opsRow[1]); code != ExitFailed || !strings.Contains(e, "no API token") {
		t.Errorf("revoke twice: %d %s", code, e)
	}
	// a password reset says the tokens live on, or revokes them
	if code, _, e := run("another long password\n", "admin", "add", "dev"); code != ExitOK || !strings.Contains(e, "dev still has 1 API token,") {
		t.Errorf("password reset: %d %s", code, e)
	}
	if code, _, e := run("another long password\n", "admin", "add", "dev", "--revoke-tokens"); code != ExitOK || !strings.Contains(e, "1 API token of dev revoked") {
		t.Errorf("password reset with --revoke-tokens: %d %s", code, e)
	}

	// unlock: failures recorded by the console are forgotten
	key, err := store.LoadKey(filepath.Join(dir, "mailgate.key"), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(t.Context(), "sqlite:"+filepath.Join(dir, "mailgate.db"), &store.Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	for range store.FreeLoginFailures {
		if err := st.BeginLogin(t.Context(), "ops", "192.0.2.1", now); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.BeginLogin(t.Context(), "ops", "192.0.2.1", now); !errors.As(err, new(*store.ThrottledError)) {
		t.Fatalf("not throttled: %v", err)
	}
	if code, out, _ := run("", "admin", "list"); code != ExitOK || !regexp.MustCompile(`(?m)^ops\s.*\s0\s+until .*\(1 address; mailgate admin unlock ops\)$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^dev\s.*never\s+0\s+no$`).MatchString(out) {
		t.Errorf("admin list: %d\n%s", code, out)
	}
	if code, _, e := run("", "admin", "unlock", "ops"); code != ExitOK || !strings.Contains(e, "(1 address)") {
		t.Errorf("unlock: %d %s", code, e)
	}
	if err := st.BeginLogin(t.Context(), "ops", "192.0.2.1", now); err != nil {
		t.Errorf("after admin unlock: %v", err)
	}
	if code, _, e := run("", "admin", "unlock", "nobody"); code != ExitFailed || !strings.Contains(e, `no administrator "nobody"`) {
		t.Errorf("unlock nobody: %d %s", code, e)
	}
	// remove
	if code, _, e := run("", "admin", "remove", "dev"); code != ExitOK {
		t.Errorf("remove: %d %s", code, e)
	}
	if _, out, _ := run("", "admin", "list"); strings.Contains(out, "dev") || !strings.Contains(out, "ops") {
		t.Errorf("after remove:\n%s", out)
	}
	if code, _, _ := run("", "admin", "remove", "dev"); code != ExitFailed {
		t.Errorf("remove twice: %d", code)
	}
	// usage
	for _, args := range [][]string{{"admin"}, {"admin", "list", "x"}, {"admin", "frob", "x"}, {"admin", "token", "revoke"},
		{"admin", "remove", "ops", "--expires", "1d"}, {"admin", "token", "ops", "--expires", "soon"}} {
		if code, _, _ := run("", args...); code != ExitUsage {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

func TestParseDays(t *testing.T) {
	for in, want := range map[string]time.Duration{"90d": 90 * 24 * time.Hour, "1d": 24 * time.Hour, "12h": 12 * time.Hour, "90m": 90 * time.Minute} {
		if got, err := parseDays(in); err != nil || got != want {
			t.Errorf("%s: %s %v, want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "d", "x1d", "1.5d", "soon"} {
		if _, err := parseDays(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
