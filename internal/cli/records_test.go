package cli

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

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
	c := &consoleRecords{st: st, data: file, path: filepath.Join(dir, "mailgate.yaml"), getenv: func(string) string { return "" },
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
	if cfg, err := c.config(ctx); err != nil || len(cfg.Mailboxes) != 0 || len(cfg.Profiles) != 1 {
		t.Fatalf("config after deleting everything: %v", err)
	}
}
