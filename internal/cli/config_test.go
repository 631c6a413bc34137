package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailgate/mailgate/internal/config"
)

const goodConfig = `profiles:
  - name: contoso
    provider: microsoft
    grant: client_credentials
    tenant: contoso.onmicrosoft.com
    client_id: aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee
    client_secret: file:secret.txt
    secret_expires: 2001-01-01
mailboxes:
  - name: forms
    protocol: imap
    host: outlook.office365.com
    username: forms@contoso.com
    profile: contoso
    sink: out
sinks:
  - {name: out, type: maildir, path: ./inbox}
`

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "secret.txt"), []byte("s3cret-value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "mailgate.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigCheck(t *testing.T) {
	good := writeConfig(t, goodConfig)
	bad := writeConfig(t, strings.Replace(strings.Replace(goodConfig, "provider: microsoft", "provider: microsft", 1),
		"sink: out", "sink: nowhere", 1)+"listn: x\n")
	tests := []struct {
		name     string
		args     []string
		code     int
		stderr   []string // lines expected, in order
		noStderr string
	}{
		{"ok", []string{"config", "check", "--config", good}, ExitOK, []string{
			good + `:8: profiles[contoso].secret_expires: the credential expired on 2001-01-01; create a new one and update the config (warning)`,
		}, "s3cret-value"},
		{"problems", []string{"config", "check", "--config", bad}, ExitUsage, []string{
			bad + `:3: profiles[contoso].provider: "microsft" is not one of microsoft, google, generic (did you mean "microsoft"?)`,
			bad + `:15: mailboxes[forms].sink: no sink named "nowhere"`,
			bad + `:18: listn: unknown key "listn" (did you mean "listen"?)`,
		}, "config OK"},
		{"missing file", []string{"config", "check", "--config", filepath.Join(t.TempDir(), "nope.yaml")}, ExitUsage, nil, ""},
		{"no subcommand", []string{"config"}, ExitUsage, nil, ""},
		{"unknown subcommand", []string{"config", "lint"}, ExitUsage, nil, ""},
		{"stray argument", []string{"config", "check", "extra"}, ExitUsage, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runCLI(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tc.code, errs)
			}
			wantOut := ""
			if code == ExitOK {
				wantOut = "config OK: " + good + ": 1 profile, 1 mailbox (1 enabled), 1 sink, 0 senders\n"
			}
			if out != wantOut {
				t.Errorf("stdout %q, want %q", out, wantOut)
			}
			if tc.stderr != nil {
				got := strings.Split(strings.TrimSuffix(errs, "\n"), "\n")
				if strings.Join(got, "\n") != strings.Join(tc.stderr, "\n") {
					t.Errorf("stderr:\n%s\nwant:\n%s", errs, strings.Join(tc.stderr, "\n"))
				}
			}
			if tc.noStderr != "" && strings.Contains(errs, tc.noStderr) {
				t.Errorf("stderr contains %q:\n%s", tc.noStderr, errs)
			}
		})
	}
}

func TestConfigExample(t *testing.T) {
	for _, tc := range []struct {
		sub  string
		want []byte
	}{{"example", config.Example()}, {"reference", config.Reference()}} {
		code, out, errs := runCLI(t, "config", tc.sub)
		if code != ExitOK {
			t.Fatalf("%s: exit %d: %s", tc.sub, code, errs)
		}
		if out != string(tc.want) {
			t.Errorf("config %s does not print what config generates", tc.sub)
		}
	}
}

func TestConfigPath(t *testing.T) {
	tests := []struct{ flag, envVar, want string }{
		{"a.yaml", "b.yaml", "a.yaml"},
		{"", "b.yaml", "b.yaml"},
		{"", "", DefaultConfigFile},
	}
	for _, tc := range tests {
		env := &Env{Getenv: func(k string) string {
			if k == "MAILGATE_CONFIG" {
				return tc.envVar
			}
			return ""
		}}
		if got := configPath(env, tc.flag); got != tc.want {
			t.Errorf("configPath(%q) with MAILGATE_CONFIG=%q = %q, want %q", tc.flag, tc.envVar, got, tc.want)
		}
	}
}

// TestConfigCheckProfileWarnings: config check says what token says about
// a profile (oauth.Profile.Warnings, the one source): the password grant,
// and a client-credentials scope without /.default.
func TestConfigCheckProfileWarnings(t *testing.T) {
	path := writeConfig(t, `profiles:
  - name: app
    provider: microsoft
    grant: client_credentials
    tenant: contoso.onmicrosoft.com
    client_id: aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee
    client_secret: file:secret.txt
    scopes: [https://outlook.office365.com/IMAP.AccessAsApp]
  - name: user
    provider: microsoft
    grant: password
    tenant: contoso.onmicrosoft.com
    client_id: aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee
    username: u@contoso.com
    password: pw
`)
	code, _, errs := runCLI(t, "config", "check", "--config", path)
	if code != ExitOK {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	for _, want := range []string{
		path + `:2: profiles[app]: scope "https://outlook.office365.com/IMAP.AccessAsApp": client_credentials needs a {resource}/.default scope`,
		path + `:9: profiles[user]: the password grant (ROPC) is deprecated by Microsoft and cannot satisfy MFA`,
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("config check lacks\n%s\nin\n%s", want, errs)
		}
	}
	if strings.Count(errs, "(warning)") != 2 {
		t.Errorf("want two warnings:\n%s", errs)
	}
}
