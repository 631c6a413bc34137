package cli

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/store"
)

// TestRecordsCommand: `mailgate records` lists the console's records with
// their state (a failing one with its reason), shows one without its
// secrets, and deletes one, a failing one too.
func TestRecordsCommand(t *testing.T) {
	t.Setenv("MAILGATE_KEY", "")
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "mailgate.yaml")
	if err := os.WriteFile(cfgPath, []byte(recordsFile+"store: sqlite:./db\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := store.LoadKey(filepath.Join(dir, "mailgate.key"), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(t.Context(), "sqlite:"+filepath.Join(dir, "db"), &store.Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []config.Record{
		{Kind: "sinks", Name: "hook", YAML: []byte("{name: hook, type: webhook, url: 'https://u:url-PW@app.example/in?token=query-TOKEN', secret: hook-SECRET, headers: {Authorization: header-SECRET}}")},
		{Kind: "sinks", Name: "bad", YAML: []byte("{name: bad, type: maildir, path: /proc/mailgate-inbox}")},
	} {
		if err := st.PutRecord(t.Context(), r.Kind, r.Name, r.YAML); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	code, out, errs := runCLI(t, "records", "list", "--config", cfgPath)
	if code != ExitOK || !regexp.MustCompile(`sinks\s+bad\s+failing: sinks\[bad\]\.path: /proc/mailgate-inbox is in /proc`).MatchString(out) || !regexp.MustCompile(`sinks\s+hook\s+ok`).MatchString(out) {
		t.Errorf("list: %d\n%s%s", code, out, errs)
	}
	code, out, errs = runCLI(t, "records", "show", "sinks", "hook", "--config", cfgPath)
	if code != ExitOK || !strings.Contains(out, "secret: set") || !strings.Contains(out, "headers: set") || !strings.Contains(out, "url: https://app.example/in?token=") {
		t.Errorf("show: %d\n%s%s", code, out, errs)
	}
	for _, secret := range []string{"url-PW", "query-TOKEN", "hook-SECRET", "header-SECRET"} {
		if strings.Contains(out+errs, secret) {
			t.Errorf("show printed %s:\n%s", secret, out)
		}
	}
	if code, _, errs := runCLI(t, "records", "delete", "sinks", "bad", "--config", cfgPath); code != ExitOK {
		t.Errorf("delete a failing record: %d %s", code, errs)
	}
	if code, _, errs := runCLI(t, "records", "delete", "sinks", "nope", "--config", cfgPath); code != ExitFailed || !strings.Contains(errs, "no console record sinks nope") {
		t.Errorf("delete an unknown record: %d %s", code, errs)
	}
	if code, out, _ := runCLI(t, "records", "list", "sinks", "--config", cfgPath); code != ExitOK || strings.Contains(out, "bad") || !strings.Contains(out, "hook") {
		t.Errorf("list after delete: %d\n%s", code, out)
	}
	if code, _, _ := runCLI(t, "records", "list", "widgets", "--config", cfgPath); code != ExitUsage {
		t.Errorf("unknown kind: exit %d", code)
	}
	// the proxy's console accounts are a kind too
	if code, _, errs := runCLI(t, "records", "list", "accounts", "--config", cfgPath); code != ExitOK {
		t.Errorf("list accounts: exit %d %s", code, errs)
	}
}

// TestOtherCommandsSkipBrokenRecords: the commands other than serve (run
// --once, test, send, token) get the file's configuration with the console
// records that work, and say which were skipped and why.
func TestOtherCommandsSkipBrokenRecords(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mailgate.yaml")
	if err := os.WriteFile(path, []byte(recordsFile), 0o600); err != nil {
		t.Fatal(err)
	}
	fileCfg, err := config.Load(path, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(t.Context(), "sqlite:"+filepath.Join(dir, "db"), &store.Options{Key: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, r := range []config.Record{
		{Kind: "sinks", Name: "good", YAML: []byte("{name: good, type: store}")},
		{Kind: "sinks", Name: "bad", YAML: []byte("{name: bad, type: maildir, path: /proc/mailgate-inbox}")},
	} {
		if err := st.PutRecord(t.Context(), r.Kind, r.Name, r.YAML); err != nil {
			t.Fatal(err)
		}
	}
	var errb strings.Builder
	env := &Env{Stdio: Stdio{In: strings.NewReader(""), Out: io.Discard, Err: &errb}, Getenv: func(string) string { return "" }}
	cfg := withConsoleRecords(t.Context(), env, st, fileCfg)
	if _, ok := cfg.Sink("good"); !ok {
		t.Error("the working record was dropped")
	}
	if _, ok := cfg.Sink("bad"); ok {
		t.Error("the broken record was kept")
	}
	if !strings.Contains(errb.String(), "console record sinks bad is failing and skipped: sinks[bad].path: /proc/mailgate-inbox is in /proc") {
		t.Errorf("stderr: %s", errb.String())
	}
}

// recordsFile is a config file for the console records' tests (app's
// tests have the same one).
const recordsFile = `profiles:
  - {name: p, provider: microsoft, grant: client_credentials, tenant: contoso.onmicrosoft.com, client_id: aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee, client_secret: s, scopes: [https://outlook.office365.com/.default]}
`
