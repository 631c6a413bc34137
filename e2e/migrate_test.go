package e2e

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/dovecot"
	"github.com/mailgate/mailgate/internal/emulator"
	"github.com/mailgate/mailgate/internal/pgtest"
	"github.com/mailgate/mailgate/internal/store"
)

// TestStoreMigrateToPostgres: a SQLite store with a ledger (run --once
// delivered from Dovecot, leaving the messages where they are), tokens, a
// console record, an administrator with an API token, and an outbox with
// a sent and a queued message is copied by `store migrate --to` into a
// PostgreSQL started by pgtest. With `store: postgres://…`, run --once
// delivers nothing again, the record and the API token work, and serve
// sends the queued message once and the sent one not again. A second
// migrate into the now full database is refused without --force.
func TestStoreMigrateToPostgres(t *testing.T) {
	const seeded = 10
	srv, dir := emulatorConfig(t, "")
	dv := dovecot.StartT(t, dovecot.Options{CheckURL: srv.HTTPURL(), Relay: true})
	if err := dv.Seed(emulator.DemoSharedMailbox, seeded, 2000); err != nil {
		t.Fatal(err)
	}
	imapHost, imapPort, _ := strings.Cut(dv.Addr("imaps"), ":")
	subHost, subPort, _ := strings.Cut(dv.Addr("submission"), ":")
	appendConfig(t, dir, fmt.Sprintf("listen: 127.0.0.1:0\nmailboxes:\n  - {name: forms, protocol: imap, host: %s, port: %s, security: tls, tls_ca: '%s', sasl: xoauth2, username: %s, profile: emulator-cert, after: keep, sink: out}\n"+
		"sinks:\n  - {name: out, type: maildir, path: ./inbox}\n"+
		"senders:\n  - {name: noreply, protocol: smtp, host: %s, port: %s, security: starttls, tls_ca: '%s', sasl: xoauth2, username: %s, profile: emulator-secret, allowed_from: [%s]}\n",
		imapHost, imapPort, dv.CAFile(), emulator.DemoSharedMailbox,
		subHost, subPort, dv.CAFile(), emulator.DemoSenderMailbox, emulator.DemoSenderMailbox))
	if r := mailgate(t, t.Context(), dir, "run", "--once"); r.code != 0 || !strings.Contains(r.stderr, fmt.Sprintf("forms: %d delivered", seeded)) {
		t.Fatalf("run --once on SQLite: exit %d\n%s", r.code, r.stderr)
	}
	inbox := func() int {
		files, _ := os.ReadDir(filepath.Join(dir, "inbox", "new"))
		return len(files)
	}
	// the console's part: a record, an administrator and an API token
	key, err := base64.StdEncoding.DecodeString(testKey)
	if err != nil {
		t.Fatal(err)
	}
	st, err := openStore(t.Context(), dir, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutRecord(t.Context(), "sinks", "archive", []byte("{name: archive, type: maildir, path: ./archive}")); err != nil {
		t.Fatal(err)
	}
	st.Close()
	adminAdd(t, dir, "a long enough password")
	tr := mailgateStdin(t, dir, "", "admin", "token", "ops")
	tok := strings.TrimSpace(tr.stdout)
	if tr.code != 0 || tok == "" {
		t.Fatalf("admin token: %d %s", tr.code, tr.stderr)
	}
	// the outbox: one message sent by serve on SQLite, one left queued
	sent := countMigrated(t, dv)
	enqueue(t, dir, key, "migrate-sent")
	serve := startServe(t, dir)
	waitMigrated(t, dv, sent, map[string]int{"migrate-sent": 1}, serve.logs)
	stopServe(t, serve)
	enqueue(t, dir, key, "migrate-queued")

	dsn := pgtest.Start(t)
	r := mailgate(t, t.Context(), dir, "store", "migrate", "--to", dsn)
	if r.code != 0 {
		t.Fatalf("store migrate: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"delivery_ledger        10", "outbox                 2", "admins                 1", "api_tokens             1", "config_records         1", "oauth_tokens"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("store migrate's counts lack %q:\n%s", want, r.stdout)
		}
	}
	if r := mailgate(t, t.Context(), dir, "store", "migrate", "--to", dsn); r.code != 1 || !strings.Contains(r.stderr, "not empty") {
		t.Errorf("a second migrate into the full target: exit %d\n%s", r.code, r.stderr)
	}
	cfgPath := filepath.Join(dir, "mailgate.yaml")
	cfg, err := os.ReadFile(cfgPath)
	if err != nil || !strings.Contains(string(cfg), "store: sqlite:./mailgate.db\n") {
		t.Fatalf("the emulator's config has no sqlite store line (%v)", err)
	}
	cfg = []byte(strings.Replace(string(cfg), "store: sqlite:./mailgate.db\n", "store: '"+dsn+"'\n", 1))
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	// from here on the SQLite file must not matter: move it away
	if err := os.Rename(filepath.Join(dir, "mailgate.db"), filepath.Join(dir, "old.db")); err != nil {
		t.Fatal(err)
	}

	if r := mailgate(t, t.Context(), dir, "run", "--once"); r.code != 0 || !strings.Contains(r.stderr, "forms: 0 delivered, 0 already there") || inbox() != seeded {
		t.Fatalf("run --once on PostgreSQL: exit %d, %d files in the sink\n%s", r.code, inbox(), r.stderr)
	}
	if r := mailgate(t, t.Context(), dir, "records", "list"); r.code != 0 || !strings.Contains(r.stdout, "archive") || strings.Contains(r.stdout, "failing") {
		t.Errorf("records list on PostgreSQL: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	serve = startServe(t, dir)
	if code, body := serve.api(t, "GET", "/api/v1/status", tok, ""); code != http.StatusOK || !strings.Contains(body, `"forms"`) {
		t.Errorf("GET /api/v1/status with the migrated API token: %d\n%s", code, body)
	}
	waitMigrated(t, dv, sent, map[string]int{"migrate-sent": 1, "migrate-queued": 1}, serve.logs)
	stopServe(t, serve)
	if got := countMigrated(t, dv); len(got) != len(sent)+2 {
		t.Errorf("after serve on PostgreSQL stopped: %d messages in %s, want %d", len(got), emulator.DemoInvoicesMailbox, len(sent)+2)
	}
	pg, err := store.Open(t.Context(), dsn, &store.Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	if counts, err := pg.OutboxCounts(t.Context()); err != nil || counts["sent"] != 2 || counts["queued"]+counts["sending"]+counts["failed"] != 0 {
		t.Errorf("the PostgreSQL outbox: %v, %v; want 2 sent", counts, err)
	}
	if r := mailgate(t, t.Context(), dir, "run", "--once"); r.code != 0 || !strings.Contains(r.stderr, "forms: 0 delivered, 0 already there") || inbox() != seeded {
		t.Errorf("run --once after serve on PostgreSQL: exit %d, %d files\n%s", r.code, inbox(), r.stderr)
	}
}

// enqueue puts a message with Message-ID <id@mailgate.test> into the
// SQLite store's outbox for the sender noreply, as `mailgate send` does
// while a serve runs.
func enqueue(t *testing.T, dir string, key []byte, id string) {
	t.Helper()
	st, err := openStore(t.Context(), dir, key)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	raw := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@mailgate.test>\r\n\r\nbody\r\n",
		emulator.DemoSenderMailbox, emulator.DemoInvoicesMailbox, id, id)
	if _, err := st.Enqueue(t.Context(), "noreply", emulator.DemoSenderMailbox, []string{emulator.DemoInvoicesMailbox}, []byte(raw)); err != nil {
		t.Fatal(err)
	}
}

// countMigrated returns the Message-IDs of the messages in the
// recipient's mailbox, one entry per message (duplicates included).
func countMigrated(t *testing.T, dv *dovecot.Server) []string {
	t.Helper()
	msgs, err := dv.Messages(emulator.DemoInvoicesMailbox, "")
	if err != nil {
		return nil
	}
	var ids []string
	for _, b := range msgs {
		s := string(b)
		i := strings.Index(s, "Message-ID: <")
		if i < 0 {
			ids = append(ids, "")
			continue
		}
		s = s[i+len("Message-ID: <"):]
		ids = append(ids, s[:strings.Index(s, "@")])
	}
	return ids
}

// waitMigrated waits until the recipient's mailbox holds the messages
// before plus want (Message-ID → count).
func waitMigrated(t *testing.T, dv *dovecot.Server, before []string, want map[string]int, logs interface{ String() string }) {
	t.Helper()
	total := len(before)
	for _, n := range want {
		total += n
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		got := countMigrated(t, dv)
		if len(got) >= total {
			n := map[string]int{}
			for _, id := range got {
				n[id]++
			}
			for id, w := range want {
				if n[id] != w {
					t.Fatalf("%s arrived %d times, want %d\n%s", id, n[id], w, logs.String())
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages arrived: %v\n%s", len(got), total, got, logs.String())
		}
	}
}

// stopServe stops a serve started by startServe (SIGTERM: it finishes
// what it is sending and removes its heartbeat) and waits for it.
func stopServe(t *testing.T, s *runningServe) {
	t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	_ = s.cmd.Wait()
}
