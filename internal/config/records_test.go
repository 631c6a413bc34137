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

func TestDisplayURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://app.example.com/in":                           "https://app.example.com/in",
		"https://user:s3cret@app.example.com/in?token=abc&x=1": "https://user@app.example.com/in?token=%E2%80%A6&x=%E2%80%A6",
		"http://127.0.0.1:8080/hook":                           "http://127.0.0.1:8080/hook",
		"://bad":                                               "(unparsable URL)",
	} {
		if got := DisplayURL(in); got != want {
			t.Errorf("DisplayURL(%q) = %q, want %q", in, got, want)
		}
		if strings.Contains(DisplayURL(in), "s3cret") || strings.Contains(DisplayURL(in), "abc") {
			t.Errorf("DisplayURL(%q) shows a secret", in)
		}
	}
}
