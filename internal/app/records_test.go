package app

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailgate/mailgate/internal/metrics"

	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/store"
	"github.com/mailgate/mailgate/internal/web"
)

// TestConsoleRecords: serve's record editor keeps a record only when the
// file and every record still validate together, refuses to delete one
// something refers to, shows each kept change at once and asks for one
// reload per change.
func TestConsoleRecords(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(t.Context(), "sqlite:"+filepath.Join(dir, "db"), &store.Options{Key: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	file := []byte(`profiles:
  - {name: p, provider: microsoft, grant: client_credentials, tenant: contoso.onmicrosoft.com, client_id: aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee, client_secret: s, scopes: [https://outlook.office365.com/.default]}
`)
	var shown *config.Config
	c := &Records{st: st, data: file, path: filepath.Join(dir, "mailgate.yaml"), getenv: func(string) string { return "" },
		reload: make(chan struct{}, 1), applied: func(cfg *config.Config) { shown = cfg }}
	reloads := func() int {
		select {
		case <-c.reload:
			return 1
		default:
			return 0
		}
	}
	ctx := t.Context()
	sink := []byte("{name: out, type: maildir, path: ./inbox}")
	mbox := []byte("{name: m, protocol: imap, host: h.example, username: m@contoso.com, profile: p, sink: out}")

	// a mailbox whose sink does not exist yet is refused and not kept
	if err := c.Save(ctx, "mailboxes", "m", mbox); err == nil || !strings.Contains(err.Error(), "mailboxes[m].sink") {
		t.Fatalf("mailbox without its sink: %v", err)
	}
	if _, found, _ := c.Load(ctx, "mailboxes", "m"); found || reloads() != 0 || shown != nil {
		t.Fatal("a refused record was kept, shown or reloaded")
	}
	for _, r := range []struct {
		kind, name string
		y          []byte
	}{{"sinks", "out", sink}, {"mailboxes", "m", mbox}} {
		if err := c.Save(ctx, r.kind, r.name, r.y); err != nil {
			t.Fatalf("save %s: %v", r.name, err)
		}
		if reloads() != 1 {
			t.Errorf("save %s: no reload asked", r.name)
		}
	}
	if _, ok := shown.Mailbox("m"); !ok || shown.Mailboxes[0].Origin != config.OriginConsole {
		t.Fatalf("the kept configuration was not shown: %+v", shown)
	}
	// saving again replaces, it does not add
	if err := c.Save(ctx, "sinks", "out", []byte("{name: out, type: maildir, path: ./other}")); err != nil {
		t.Fatal(err)
	}
	reloads()
	if got, _ := c.records(ctx); len(got) != 2 {
		t.Fatalf("%d records after a replace, want 2", len(got))
	}
	// the sink is still used by the mailbox
	if err := c.Delete(ctx, "sinks", "out"); err == nil || !strings.Contains(err.Error(), "still in use") || !strings.Contains(err.Error(), "mailboxes[m].sink") {
		t.Fatalf("delete a used sink: %v", err)
	}
	if err := c.Delete(ctx, "sinks", "nope"); !errors.Is(err, web.ErrNoRecord) {
		t.Fatalf("delete an unknown record: %v", err)
	}
	if reloads() != 0 {
		t.Error("a refused delete asked for a reload")
	}
	for _, r := range [][2]string{{"mailboxes", "m"}, {"sinks", "out"}} {
		if err := c.Delete(ctx, r[0], r[1]); err != nil {
			t.Fatalf("delete %s: %v", r[1], err)
		}
		reloads()
	}
	if got, _ := c.records(ctx); len(got) != 0 {
		t.Fatalf("%d records left", len(got))
	}
	if cfg, _, err := c.Config(ctx); err != nil || len(cfg.Mailboxes) != 0 || len(cfg.Profiles) != 1 {
		t.Fatalf("config after deleting everything: %v", err)
	}
}

// recordsAPI serves the console's API over a real record editor (serve's)
// and returns the editor, the console and a function making bearer
// requests.
func recordsAPI(t *testing.T, file string, seed ...config.Record) (*Records, *web.Server, func(method, path, body string) (int, string)) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(t.Context(), "sqlite:"+filepath.Join(dir, "db"), &store.Options{Key: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, r := range seed {
		if err := st.PutRecord(t.Context(), r.Kind, r.Name, r.YAML); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "mailgate.yaml")
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	ed := &Records{st: st, data: []byte(file), path: path, getenv: func(string) string { return "" }, reload: make(chan struct{}, 1)}
	cfg, broken, err := ed.Config(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	console := web.New(web.Options{Store: st, Config: cfg, Metrics: &metrics.Registry{}, Editor: ed})
	console.SetBroken(broken)
	ed.applied, ed.failing = console.SetConfig, console.SetBroken
	srv := httptest.NewServer(console)
	t.Cleanup(srv.Close)
	if err := st.SetAdmin(t.Context(), "root", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	tok, err := st.NewAPIToken(t.Context(), "root")
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, path, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	return ed, console, do
}

const recordsFile = `profiles:
  - {name: p, provider: microsoft, grant: client_credentials, tenant: contoso.onmicrosoft.com, client_id: aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee, client_secret: s, scopes: [https://outlook.office365.com/.default]}
`

// TestConsoleRecordsBuildLikeServe: the API refuses, with 422 naming the
// key, a record that validates but that serve could not build (a maildir
// under /proc, a NUL byte in a path, a certificate file that is not PEM)
// or that the config file's console section does not allow (a command
// sink, a maildir outside maildir_root, also through a symbolic link); a
// refused record is not kept. A record the console may make is kept, shown
// and deletable.
func TestConsoleRecordsBuildLikeServe(t *testing.T) {
	ed, _, do := recordsAPI(t, recordsFile)
	dir := filepath.Dir(ed.path)
	notPEM := filepath.Join(dir, "app.crt")
	if err := os.WriteFile(notPEM, []byte("this is not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, kind, body, want string
	}{
		{"maildir under /proc", "sinks", `{"name": "bad", "type": "maildir", "path": "/proc/mailgate-inbox"}`, "sinks[bad].path: /proc/mailgate-inbox is in /proc"},
		{"NUL byte in a path", "sinks", `{"name": "bad", "type": "maildir", "path": "inbox\u0000x"}`, "sinks[bad].path: holds a NUL byte"},
		{"certificate not PEM", "profiles", `{"name": "bad", "provider": "microsoft", "grant": "client_credentials", "tenant": "contoso.onmicrosoft.com", "client_id": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", "scopes": "https://outlook.office365.com/.default", "client_certificate.cert": "` + notPEM + `", "client_certificate.key": "` + notPEM + `"}`, "profiles[bad].client_certificate.cert: " + notPEM + " is not a PEM certificate"},
		{"command sink not allowed", "sinks", `{"name": "bad", "type": "command", "command": ["/bin/true"]}`, "sinks[bad].type: command sinks run any program"},
		{"maildir outside the root", "sinks", `{"name": "bad", "type": "maildir", "path": "` + outside + `"}`, "is outside"},
		{"maildir through a symbolic link", "sinks", `{"name": "bad", "type": "maildir", "path": "link/inbox"}`, "is outside"},
	}
	for _, tt := range tests {
		code, body := do("POST", "/api/v1/"+tt.kind, tt.body)
		if code != http.StatusUnprocessableEntity || !strings.Contains(body, tt.want) {
			t.Errorf("%s: %d %s, want 422 with %q", tt.name, code, body, tt.want)
		}
		if _, found, _ := ed.Load(t.Context(), tt.kind, "bad"); found {
			t.Errorf("%s: the refused record was kept", tt.name)
		}
		if code, _ := do("GET", "/api/v1/"+tt.kind+"/bad", ""); code != http.StatusNotFound {
			t.Errorf("%s: GET after a refusal: %d", tt.name, code)
		}
	}
	if _, err := os.Stat(filepath.Join(outside, "new")); err == nil {
		t.Error("a refused maildir was created")
	}
	// what the console may make is kept, shown and deletable
	if code, body := do("POST", "/api/v1/sinks", `{"name": "good", "type": "maildir", "path": "mail/in"}`); code != http.StatusCreated {
		t.Fatalf("allowed maildir: %d %s", code, body)
	}
	if code, body := do("GET", "/api/v1/sinks/good", ""); code != http.StatusOK || !strings.Contains(body, `"source": "console"`) {
		t.Fatalf("GET the kept sink: %d %s", code, body)
	}
	if code, body := do("DELETE", "/api/v1/sinks/good", ""); code != http.StatusNoContent {
		t.Fatalf("DELETE the kept sink: %d %s", code, body)
	}
}

// TestConsoleCommandSinksAllowed: with console.allow_command_sinks in the
// file, the console may make a command sink.
func TestConsoleCommandSinksAllowed(t *testing.T) {
	_, _, do := recordsAPI(t, recordsFile+"console: {allow_command_sinks: true}\n")
	if code, body := do("POST", "/api/v1/sinks", `{"name": "pipe", "type": "command", "command": ["/bin/true"]}`); code != http.StatusCreated {
		t.Fatalf("command sink allowed by the file: %d %s", code, body)
	}
}

// TestConsoleBrokenRecord: a stored record serve cannot build (written
// before these checks, or a file it needs went away) or that the config
// file's console section no longer allows (a command sink) is skipped, shown
// failing with its reason in /api/v1/status, does not keep other records
// from being saved, and can be deleted.
func TestConsoleBrokenRecord(t *testing.T) {
	ed, _, do := recordsAPI(t, recordsFile,
		config.Record{Kind: "sinks", Name: "broken", YAML: []byte("{name: broken, type: maildir, path: /proc/mailgate-inbox}")},
		config.Record{Kind: "mailboxes", Name: "m", YAML: []byte("{name: m, protocol: imap, host: h.example, username: m@contoso.com, profile: p, sink: broken}")},
		config.Record{Kind: "sinks", Name: "pipe", YAML: []byte("{name: pipe, type: command, command: [/bin/true]}")})
	cfg, broken, err := ed.Config(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(broken) != 3 || len(cfg.Mailboxes) != 0 || len(cfg.Sinks) != 0 || len(cfg.Profiles) != 1 {
		t.Fatalf("broken %+v, config %+v", broken, cfg)
	}
	code, body := do("GET", "/api/v1/status", "")
	for _, want := range []string{`"kind": "sinks"`, `"name": "broken"`, "sinks[broken].path: /proc/mailgate-inbox is in /proc", `"name": "m"`, "mailboxes[m].sink", "sinks[pipe].type: command sinks run any program"} {
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("status lacks %q: %d %s", want, code, body)
		}
	}
	if code, body := do("POST", "/api/v1/sinks", `{"name": "other", "type": "store"}`); code != http.StatusCreated {
		t.Fatalf("save beside a broken record: %d %s", code, body)
	}
	for _, path := range []string{"/api/v1/mailboxes/m", "/api/v1/sinks/broken", "/api/v1/sinks/pipe"} {
		if code, body := do("DELETE", path, ""); code != http.StatusNoContent {
			t.Errorf("DELETE %s: %d %s", path, code, body)
		}
	}
	if _, broken, _ := ed.Config(t.Context()); len(broken) != 0 {
		t.Errorf("still broken: %+v", broken)
	}
}

// TestConsoleRecordsPoll: serve's editor notices records changed outside
// it (`mailgate records delete`, another serve on the same store) and
// reloads once per change, not for its own changes.
func TestConsoleRecordsPoll(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(t.Context(), "sqlite:"+filepath.Join(dir, "db"), &store.Options{Key: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	path := filepath.Join(dir, "mailgate.yaml")
	var shown *config.Config
	serve := &Records{st: st, data: []byte(recordsFile), path: path, getenv: func(string) string { return "" },
		reload: make(chan struct{}, 1), applied: func(cfg *config.Config) { shown = cfg }}
	other := &Records{st: st, data: []byte(recordsFile), path: path, getenv: func(string) string { return "" }, reload: make(chan struct{}, 1)}
	reloads := func() int {
		select {
		case <-serve.reload:
			return 1
		default:
			return 0
		}
	}
	ctx := t.Context()
	serve.remember(ctx)
	serve.poll(ctx)
	if reloads() != 0 {
		t.Fatal("a reload without a change")
	}
	if err := other.Save(ctx, "sinks", "keep", []byte("{name: keep, type: store}")); err != nil {
		t.Fatal(err)
	}
	serve.poll(ctx)
	if reloads() != 1 || shown == nil {
		t.Fatal("a record saved elsewhere was not noticed")
	}
	if _, ok := shown.Sink("keep"); !ok {
		t.Error("the record saved elsewhere is not shown")
	}
	serve.poll(ctx)
	if reloads() != 0 {
		t.Error("the same change reloaded twice")
	}
	if err := serve.Save(ctx, "sinks", "own", []byte("{name: own, type: store}")); err != nil {
		t.Fatal(err)
	}
	reloads()
	serve.poll(ctx)
	if reloads() != 0 {
		t.Error("its own change reloaded again")
	}
	if err := other.Delete(ctx, "sinks", "keep"); err != nil {
		t.Fatal(err)
	}
	serve.poll(ctx)
	if reloads() != 1 {
		t.Error("a deletion elsewhere was not noticed")
	}
	if _, ok := shown.Sink("keep"); ok {
		t.Error("the deleted record is still shown")
	}
}
