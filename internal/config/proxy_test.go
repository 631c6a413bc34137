package config

import (
	"strings"
	"testing"
)

// TestProxyProblems: the legacy-client proxy's listeners and accounts are
// validated with problems naming the key.
func TestProxyProblems(t *testing.T) {
	const imap = "listeners:\n  - {name: legacy, protocol: imap, listen: '127.0.0.1:1143', upstream: {host: outlook.office365.com}}\n"
	tests := []struct {
		name, add, key, msg string
	}{
		{"none off loopback", "listeners:\n  - {name: l, protocol: imap, listen: '0.0.0.0:1143', upstream: {host: outlook.office365.com}}\n",
			"listeners[l].security", "loopback"},
		{"starttls without cert", "listeners:\n  - {name: l, protocol: smtp, listen: '0.0.0.0:1587', security: starttls, upstream: {host: smtp.office365.com}}\n",
			"listeners[l].tls_cert", "required for security starttls"},
		{"tls without key", "listeners:\n  - {name: l, protocol: pop3, listen: ':1995', security: tls, tls_cert: mailgate.yaml, upstream: {host: outlook.office365.com}}\n",
			"listeners[l].tls_key", "required for security tls"},
		{"bad protocol", "listeners:\n  - {name: l, protocol: nntp, listen: '127.0.0.1:119', upstream: {host: x.example}}\n",
			"listeners[l].protocol", "not one of imap, pop3, smtp"},
		{"no upstream host", "listeners:\n  - {name: l, protocol: imap, listen: '127.0.0.1:1143'}\n",
			"listeners[l].upstream.host", "required"},
		{"bad listen", "listeners:\n  - {name: l, protocol: imap, listen: 'localhost', upstream: {host: x.example}}\n",
			"listeners[l].listen", "not host:port"},
		{"account unknown profile", imap + "accounts:\n  - {username: s, password: p, profile: nope, mailbox: s@contoso.com}\n",
			"accounts[0].profile", `no profile named "nope"`},
		{"account unknown listener", imap + "accounts:\n  - {username: s, password: p, profile: contoso, mailbox: s@contoso.com, listeners: [legacy, other]}\n",
			"accounts[0].listeners[1]", `no listener named "other"`},
		{"account without password", imap + "accounts:\n  - {username: s, profile: contoso, mailbox: s@contoso.com}\n",
			"accounts[0].password", "required"},
		{"account password too long", imap + "accounts:\n  - {username: s, password: " + strings.Repeat("x", 73) + ", profile: contoso, mailbox: s@contoso.com}\n",
			"accounts[0].password", "72 bytes"},
		{"account bad allowed_from", imap + "accounts:\n  - {username: s, password: p, profile: contoso, mailbox: s@contoso.com, allowed_from: ['not an address']}\n",
			"accounts[0].allowed_from[0]", "not a bare email address"},
		{"duplicate account", imap + "accounts:\n  - {username: s, password: p, profile: contoso, mailbox: s@contoso.com}\n  - {username: s, password: q, profile: contoso, mailbox: s@contoso.com}\n",
			"accounts[1].username", "duplicate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseTest(t, valid+tt.add)
			if err == nil {
				t.Fatal("loaded without problems")
			}
			for _, p := range problemsOf(t, err) {
				if p.Key == tt.key && strings.Contains(p.Msg, tt.msg) {
					return
				}
			}
			t.Errorf("no problem at %s containing %q in %v", tt.key, tt.msg, err)
		})
	}
}

// TestProxyDefaults: a listener's security and its upstream's port,
// security and SASL default by protocol.
func TestProxyDefaults(t *testing.T) {
	cfg, err := parseTest(t, valid+`listeners:
  - {name: i, protocol: imap, listen: '127.0.0.1:1143', upstream: {host: outlook.office365.com}}
  - {name: p, protocol: pop3, listen: '127.0.0.1:1110', upstream: {host: outlook.office365.com}}
  - {name: s, protocol: smtp, listen: '127.0.0.1:1587', upstream: {host: smtp.office365.com}}
accounts:
  - {username: scanner, password: pw, profile: contoso, mailbox: scanner@contoso.com}
`)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Upstream{
		"i": {Host: "outlook.office365.com", Port: 993, Security: "tls", SASL: "xoauth2"},
		"p": {Host: "outlook.office365.com", Port: 995, Security: "tls", SASL: "xoauth2"},
		"s": {Host: "smtp.office365.com", Port: 587, Security: "starttls", SASL: "xoauth2"},
	}
	for _, l := range cfg.Listeners {
		if l.Security != "none" || l.Upstream != want[l.Name] {
			t.Errorf("%s: security %q upstream %+v, want none and %+v", l.Name, l.Security, l.Upstream, want[l.Name])
		}
	}
	if a, ok := cfg.Account("scanner"); !ok || a.Password.Reveal() != "pw" {
		t.Errorf("account: %+v %v", a, ok)
	}
}
