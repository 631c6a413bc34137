package redact

import (
	"net/url"
	"strings"
	"testing"
)

// TestURL: what the views, logs and edit forms show of a URL keeps
// the scheme, host, port and the path's ordinary words, and drops every
// place a credential hides: user name and password, query values, the
// fragment, and path segments that look like tokens (Slack, Teams and
// Discord webhooks, long random segments).
func TestURL(t *testing.T) {
	const r = "%E2%80%A6" // "…", escaped
	tests := []struct{ in, want string }{
		{"https://app.example.com/in", "https://app.example.com/in"},
		{"https://user:s3cret@app.example.com/in?token=abc&x=1", "https://app.example.com/in?token=" + r + "&x=" + r},
		{"http://127.0.0.1:8080/hook", "http://127.0.0.1:8080/hook"},
		{"http://proxyuser:s3cret@proxy.example:3128", "http://proxy.example:3128"},
		{"http://s3cret@proxy.example:3128/", "http://proxy.example:3128/"},
		{"https://app.example.com/in#s3cret", "https://app.example.com/in"},
		{"https://hooks.slack.com/services/T0S3CRET1/B0S3CRET2/s3cretXXXXXXXXXXXXXXXXXX", "https://hooks.slack.com/services/" + r + "/" + r + "/" + r},
		{"https://discord.com/api/webhooks/123456789012345678/s3cret-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789", "https://discord.com/api/webhooks/" + r + "/" + r},
		{"https://contoso.webhook.office.com/webhookb2/1111aaaa-2222-3333-4444-555555555555@66667777-8888-9999-aaaa-bbbbbbbbbbbb/IncomingWebhook/0123456789abcdef0123456789abcdef/cccccccc-dddd-eeee-ffff-000000000000",
			"https://contoso.webhook.office.com/webhookb2/" + r + "/IncomingWebhook/" + r + "/" + r},
		{"https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token", "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"},
		{"https://graph.microsoft.com", "https://graph.microsoft.com"},
		{"proxy.example:3128", "proxy.example:3128"},
		{"user:s3cret@proxy.example:3128", "proxy.example:3128"},
		{"://bad", "(unparsable URL)"},
	}
	for _, tt := range tests {
		got := URL(tt.in)
		if got != tt.want {
			t.Errorf("URL(%q) = %q, want %q", tt.in, got, tt.want)
		}
		for _, secret := range []string{"s3cret", "abc", "user"} {
			if strings.Contains(got, secret) {
				t.Errorf("URL(%q) shows %q: %s", tt.in, secret, got)
			}
		}
		if again := URL(got); got != "(unparsable URL)" && again != got {
			t.Errorf("URL is not idempotent on %q: %q", got, again)
		}
	}
}

// FuzzURL: whatever the input, the shown URL has no user
// information, no fragment and no query value.
func FuzzURL(f *testing.F) {
	for _, s := range []string{"https://u:p@h.example/a/b?c=d#e", "http://[::1]:80/x", "mailto:a@b", "//u@h/p", "https://h/%zz", "https://h/AbCdEfGh12345678?x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := URL(s)
		if got == "(unparsable URL)" {
			return
		}
		u, err := url.Parse(got)
		if err != nil {
			return
		}
		_, pw := u.User.Password()
		if u.User.Username() != "" || pw || u.Fragment != "" {
			t.Fatalf("URL(%q) = %q keeps user information or a fragment", s, got)
		}
		for k, vs := range u.Query() {
			for _, v := range vs {
				if v != "…" {
					t.Fatalf("URL(%q) = %q shows query value %s=%q", s, got, k, v)
				}
			}
		}
	})
}
