package config

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestParseWithRecords(t *testing.T) {
	file := filepath.Join(t.TempDir(), "mailgate.yaml")
	getenv := env(map[string]string{"SECRET": "s3cret"})
	recs := []Record{
		{Kind: "profiles", Name: "console", YAML: []byte("{name: console, provider: microsoft, grant: client_credentials, tenant: contoso.onmicrosoft.com, client_id: 11111111-2222-3333-4444-555555555555, client_secret: typed-in}")},
		{Kind: "mailboxes", Name: "invoices", YAML: []byte("{name: invoices, protocol: imap, host: outlook.office365.com, username: invoices@contoso.com, profile: console, sink: out}")},
	}
	cfg, err := ParseWith([]byte(valid), file, getenv, recs)
	if err != nil {
		t.Fatal(err)
	}
	p, ok := cfg.Profile("console")
	if !ok || p.Origin != OriginConsole || p.ClientSecret.Reveal() != "typed-in" {
		t.Fatalf("console profile: %+v", p)
	}
	if m, _ := cfg.Mailbox("invoices"); m == nil || m.Origin != OriginConsole || m.Port != 993 {
		t.Errorf("console mailbox: %+v", m)
	}
	if m, _ := cfg.Mailbox("forms"); m.Origin != OriginFile {
		t.Errorf("file mailbox origin %q", m.Origin)
	}
	tests := []struct {
		name string
		rec  Record
		want string
	}{
		{"name taken by the file", Record{"mailboxes", "forms", []byte("{name: forms, protocol: imap, host: h.example, username: u@x, profile: contoso, sink: out}")}, "forms"},
		{"dangling profile", Record{"mailboxes", "x", []byte("{name: x, protocol: imap, host: h.example, username: u@x, profile: nope, sink: out}")}, "mailboxes[x].profile"},
		{"not a mapping", Record{"mailboxes", "y", []byte("- just a list")}, "not a YAML mapping"},
		{"unknown kind", Record{"widgets", "z", []byte("{name: z}")}, "unknown kind"},
	}
	for _, tt := range tests {
		_, err := ParseWith([]byte(valid), file, getenv, []Record{tt.rec})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
	for _, v := range []string{"${HOME}", "x${A}y", "file:/etc/shadow", " file:x"} {
		if SafeValue(v) == nil {
			t.Errorf("SafeValue(%q) accepted", v)
		}
	}
	if SafeValue("plain $ value") != nil {
		t.Error("SafeValue refused a plain value")
	}
}

// TestConsoleSection: the console's limits default to no command sinks and
// maildirs under the config file's directory; a relative maildir_root is
// relative to that directory.
func TestConsoleSection(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "mailgate.yaml")
	cfg, err := Parse([]byte(valid), file, env(map[string]string{"SECRET": "s"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Console.AllowCommandSinks || cfg.Console.MaildirRoot != dir {
		t.Errorf("defaults: %+v, want no command sinks and root %s", cfg.Console, dir)
	}
	cfg, err = Parse([]byte(valid+"console: {allow_command_sinks: true, maildir_root: mail}\n"), file, env(map[string]string{"SECRET": "s"}))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Console.AllowCommandSinks || cfg.Console.MaildirRoot != filepath.Join(dir, "mail") {
		t.Errorf("set: %+v", cfg.Console)
	}
}

// TestURLProblemsRedacted: a problem with a URL does not repeat the
// credentials in it (problems reach the console and its API as a record's
// reason for failing).
func TestURLProblemsRedacted(t *testing.T) {
	file := filepath.Join(t.TempDir(), "mailgate.yaml")
	for _, v := range []string{"proxyuser:proxy-PW@proxy.example:3128", "//proxyuser:proxy-PW@proxy.example:3128/", "http://proxyuser:proxy-PW@[::1%zone"} {
		rec := Record{Kind: "profiles", Name: "x", YAML: []byte("{name: x, provider: generic, grant: client_credentials, client_id: a, client_secret: s, token_url: 'https://idp.example/token', http_proxy: '" + v + "'}")}
		_, err := ParseWith([]byte(valid), file, env(map[string]string{"SECRET": "s"}), []Record{rec})
		if err == nil || !strings.Contains(err.Error(), "profiles[x].http_proxy") {
			t.Errorf("%s: %v, want a problem with http_proxy", v, err)
			continue
		}
		if strings.Contains(err.Error(), "proxy-PW") || strings.Contains(err.Error(), "proxyuser") {
			t.Errorf("the problem shows the proxy's credentials: %v", err)
		}
	}
}
