package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailgate/mailgate/internal/emulator"
)

func TestDemoOnce(t *testing.T) {
	dir := t.TempDir()
	code, out, errs := runCLI(t, "demo", "--once", "--dir", dir)
	if code != ExitOK {
		t.Fatalf("exit %d:\n%s", code, errs)
	}
	if out != "" {
		t.Errorf("the demo is for people: stdout should be empty, got %q", out)
	}
	for _, want := range []string{
		"asked again: answered from the encrypted token cache",
		"roles IMAP.AccessAsApp",
		emulator.DemoSharedMailbox + ": AUTHENTICATE XOAUTH2 accepted, INBOX selected",
		emulator.DemoRestrictedMailbox + `: Exchange answers only "NO AUTHENTICATE failed."`,
		"Add-MailboxPermission -Identity " + emulator.DemoRestrictedMailbox,
		"AADSTS7000215",
		"fix: Entra admin center",
		"5 messages from " + emulator.DemoSharedMailbox + " delivered to " + filepath.Join(dir, "inbox", "new") + `, then flagged \Seen on the server`,
		"a second run delivers nothing",
		"sent; a copy is in Sent Items (1)",
		"3 messages from alice@" + emulator.GoogleDomain + " delivered to " + filepath.Join(dir, "gmail-inbox", "new") + ", exactly once",
		"1 token request for alice@" + emulator.GoogleDomain,
		emulator.GoogleOutsideUser + " is outside the delegation",
		"Admin console › Security › Access and data control › API controls › Domain-wide delegation",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if strings.Contains(errs, "!! unexpected") {
		t.Errorf("a demo step misbehaved:\n%s", errs)
	}
	if strings.Contains(errs, emulator.DemoAppSecret) || strings.Contains(errs, "eyJ") {
		t.Error("the demo printed a secret or a token")
	}
	files, _ := filepath.Glob(filepath.Join(dir, "mailgate.db*")) // with -wal and -shm
	if len(files) == 0 {
		t.Fatal("no store written")
	}
	for _, f := range files {
		db, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(db), "eyJ") || strings.Contains(string(db), emulator.DemoAppSecret) {
			t.Errorf("%s holds a token or the secret in clear", f)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "mailgate.yaml")); err != nil {
		t.Error(err)
	}
	if es, _ := os.ReadDir(filepath.Join(dir, "inbox", "new")); len(es) != 5 {
		t.Errorf("%d messages in the demo maildir", len(es))
	}
	if es, _ := os.ReadDir(filepath.Join(dir, "gmail-inbox", "new")); len(es) != 3 {
		t.Errorf("%d messages in the demo's Workspace maildir, want 3", len(es))
	}
	// the written config is valid and names the demo's mailbox and sender
	code, _, errs = runCLI(t, "config", "check", "--config", filepath.Join(dir, "mailgate.yaml"))
	if code != ExitOK {
		t.Errorf("the demo's config does not check: %s", errs)
	}
}
