package app

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/imap"
	"github.com/mailgate/mailgate/internal/mailbox"
	"github.com/mailgate/mailgate/internal/oauth"
)

func jwt(payload string) string {
	return "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".sig"
}

func TestClaimsCheck(t *testing.T) {
	p := &oauth.Profile{Name: "p", ClientID: "app-1"}
	imap := needOfMailbox(&config.Mailbox{Name: "m", Protocol: "imap"})
	pop := needOfMailbox(&config.Mailbox{Name: "m", Protocol: "pop3"})
	graphKeep := needOfMailbox(&config.Mailbox{Name: "m", Protocol: "graph", After: "keep"})
	graphSeen := needOfMailbox(&config.Mailbox{Name: "m", Protocol: "graph", After: "seen"})
	smtp := needOfSender(&config.Sender{Name: "s", Protocol: "smtp"})
	tests := []struct {
		name    string
		payload string
		n       need
		problem string // "" = fits
		fix     string
	}{
		{"app imap ok", `{"aud":"https://outlook.office365.com","idtyp":"app","roles":["IMAP.AccessAsApp"]}`, imap, "", ""},
		{"app imap, aud by app id", `{"aud":"00000002-0000-0ff1-ce00-000000000000","roles":["IMAP.AccessAsApp"]}`, imap, "", ""},
		{"app pop without role", `{"aud":"https://outlook.office365.com","idtyp":"app","roles":["IMAP.AccessAsApp"]}`, pop, "lacks POP.AccessAsApp", "Application permissions › POP.AccessAsApp"},
		{"graph token for imap", `{"aud":"https://graph.microsoft.com","idtyp":"app","roles":["Mail.ReadWrite"]}`, imap, "needs Office 365 Exchange Online", "scopes: [https://outlook.office365.com/.default]"},
		{"user token for imap, wrong api", `{"aud":"https://graph.microsoft.com","scp":"Mail.Read"}`, imap, "needs Office 365 Exchange Online", "https://outlook.office.com/IMAP.AccessAsUser.All offline_access"},
		{"user imap ok", `{"aud":"https://outlook.office.com","scp":"IMAP.AccessAsUser.All SMTP.Send"}`, imap, "", ""},
		{"user smtp missing", `{"aud":"https://outlook.office.com","scp":"IMAP.AccessAsUser.All"}`, smtp, "lacks SMTP.Send", "mailgate login p"},
		{"graph keep with Mail.Read", `{"aud":"https://graph.microsoft.com","idtyp":"app","roles":["Mail.Read"]}`, graphKeep, "", ""},
		{"graph seen needs ReadWrite", `{"aud":"https://graph.microsoft.com","idtyp":"app","roles":["Mail.Read"]}`, graphSeen, "lacks Mail.ReadWrite", "Microsoft Graph › Application permissions › Mail.ReadWrite"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ok := readClaims(jwt(tt.payload))
			if !ok {
				t.Fatal("claims not read")
			}
			problem, fix := c.check(tt.n, p)
			if tt.problem == "" {
				if problem != "" {
					t.Fatalf("problem %q, want none", problem)
				}
				return
			}
			if !strings.Contains(problem, tt.problem) || !strings.Contains(fix, tt.fix) {
				t.Fatalf("problem %q fix %q; want %q and %q", problem, fix, tt.problem, tt.fix)
			}
		})
	}
	for _, opaque := range []string{"", "opaque-token", "a.b", "a.!!!.c", jwt(`{"roles":["x"]}`), jwt(`[1]`)} {
		if _, ok := readClaims(opaque); ok {
			t.Errorf("readClaims(%q) accepted", opaque)
		}
	}
}

func FuzzReadClaims(f *testing.F) {
	f.Add(jwt(`{"aud":"https://outlook.office365.com","idtyp":"app","roles":["IMAP.AccessAsApp"]}`))
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, at string) {
		c, ok := readClaims(at)
		if ok && c.Aud == "" {
			t.Fatalf("accepted a token without aud: %q", at)
		}
		if ok {
			_, _ = c.check(needOfMailbox(&config.Mailbox{Name: "m", Protocol: "imap"}), &oauth.Profile{})
		}
	})
}

func TestTokenUser(t *testing.T) {
	if got := TokenUser("e30.eyJ1cG4iOiJhZGVsZUBjb250b3NvLmV4YW1wbGUifQ.c2ln"); got != "adele@contoso.example" {
		t.Errorf("got %q", got)
	}
	if got := TokenUser("opaque-token"); got != "" {
		t.Errorf("got %q", got)
	}
}

// TestDiagnoseExchangeLogin: Exchange's refusals of a login, at AUTHENTICATE
// or after it ("User is authenticated but not connected."), get what
// Exchange needs for the app or the user, once; other failures the hint
// they carry.
func TestDiagnoseExchangeLogin(t *testing.T) {
	m := &config.Mailbox{Name: "forms", Protocol: "imap", Username: "forms@contoso.example"}
	app := &oauth.Profile{Name: "p", Grant: oauth.GrantClientCredentials, ClientID: "11111111-2222-3333-4444-555555555555"}
	user := &oauth.Profile{Name: "u", Grant: oauth.GrantAuthorizationCode}
	notConnected := &mailbox.Error{Mailbox: "forms", Step: mailbox.StepSelect, AuthFailed: true,
		Err: &imap.Error{Op: "select", Kind: imap.KindNotConnected, Text: "User is authenticated but not connected."}}
	refused := &mailbox.Error{Mailbox: "forms", Step: mailbox.StepAuth, AuthFailed: true, Err: errors.New("AUTHENTICATE failed")}
	tests := []struct {
		name string
		p    *oauth.Profile
		err  error
		want string
	}{
		{"app refused", app, refused, "New-ServicePrincipal -AppId " + app.ClientID},
		{"app not connected", app, notConnected, "New-ServicePrincipal -AppId " + app.ClientID},
		{"user not connected", user, notConnected, "IMAP.AccessAsUser.All"},
		{"tls", app, &mailbox.Error{Step: mailbox.StepTLS, Hint: "add its CA with tls_ca"}, "fix: add its CA with tls_ca"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(diagnose(m, tt.p, tt.err), "\n")
			if !strings.Contains(got, tt.want) {
				t.Errorf("advice %q lacks %q", got, tt.want)
			}
			if all := got + tt.err.Error(); strings.Count(all, "New-ServicePrincipal") > 1 {
				t.Errorf("what Exchange needs is said more than once:\n%s\n%s", tt.err, got)
			}
		})
	}
}
