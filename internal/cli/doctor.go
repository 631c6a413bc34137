package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/oauth"
)

func init() {
	register(&command{
		name:    "doctor",
		summary: "diagnose a profile, mailbox or sender: the token's audience and permissions against what its mailboxes and senders need, expiry dates, then the Test steps, each with what to change",
		run:     runDoctor,
	})
}

// Resource identifiers as they appear in Microsoft access tokens' aud:
// the URI or the application id of the resource.
var (
	exchangeAudiences = []string{"https://outlook.office365.com", "https://outlook.office.com", "https://ps.outlook.com", "00000002-0000-0ff1-ce00-000000000000"}
	graphAudiences    = []string{"https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000"}
)

// need is what one mailbox or sender requires of its profile's token.
type need struct {
	what      string   // "mailbox forms (imap)"
	audiences []string // one of
	api       string   // as the Entra admin center names the API
	app       []string // application permissions, any one of which will do
	delegated []string // delegated permissions, any one of which will do
}

// needOf says what a mailbox or sender needs of a Microsoft token.
func needOfMailbox(m *config.Mailbox) need {
	n := need{what: fmt.Sprintf("mailbox %s (%s)", m.Name, m.Protocol), audiences: exchangeAudiences, api: "Office 365 Exchange Online"}
	switch m.Protocol {
	case "pop3":
		n.app, n.delegated = []string{"POP.AccessAsApp"}, []string{"POP.AccessAsUser.All"}
	case "graph":
		n.audiences, n.api = graphAudiences, "Microsoft Graph"
		n.app, n.delegated = []string{"Mail.ReadWrite"}, []string{"Mail.ReadWrite"}
		if m.After == "keep" {
			n.app, n.delegated = []string{"Mail.Read", "Mail.ReadWrite"}, []string{"Mail.Read", "Mail.ReadWrite"}
		}
	default:
		n.app, n.delegated = []string{"IMAP.AccessAsApp"}, []string{"IMAP.AccessAsUser.All"}
	}
	return n
}

func needOfSender(s *config.Sender) need {
	if s.Protocol == "graph" {
		return need{what: "sender " + s.Name + " (graph)", audiences: graphAudiences, api: "Microsoft Graph",
			app: []string{"Mail.Send"}, delegated: []string{"Mail.Send"}}
	}
	return need{what: "sender " + s.Name + " (smtp)", audiences: exchangeAudiences, api: "Office 365 Exchange Online",
		app: []string{"SMTP.SendAsApp"}, delegated: []string{"SMTP.Send"}}
}

// claims are the parts of a Microsoft access token doctor reads.
type claims struct {
	Aud   string   `json:"aud"`
	Tid   string   `json:"tid"`
	AppID string   `json:"appid"`
	Azp   string   `json:"azp"`
	Idtyp string   `json:"idtyp"`
	Roles []string `json:"roles"`
	Scp   string   `json:"scp"`
	Upn   string   `json:"upn"`
}

// readClaims decodes a JWT's payload without verifying it: it is mailgate's
// own token, read only to explain what it carries.
func readClaims(at string) (*claims, bool) {
	parts := strings.Split(at, ".")
	if len(parts) != 3 {
		return nil, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, false
	}
	var c claims
	if json.Unmarshal(payload, &c) != nil || c.Aud == "" {
		return nil, false
	}
	return &c, true
}

func (c *claims) appOnly() bool { return c.Idtyp == "app" || (c.Scp == "" && len(c.Roles) > 0) }

// check compares the token with what n needs; it returns the problem and
// the fix, or "" when the token fits.
func (c *claims) check(n need, p *oauth.Profile) (problem, fix string) {
	if !slices.Contains(n.audiences, strings.TrimRight(c.Aud, "/")) {
		scope := "https://outlook.office365.com/.default"
		if n.api == "Microsoft Graph" {
			scope = "https://graph.microsoft.com/.default"
		}
		if !c.appOnly() {
			scope = map[string]string{"IMAP.AccessAsUser.All": "https://outlook.office.com/IMAP.AccessAsUser.All",
				"POP.AccessAsUser.All": "https://outlook.office.com/POP.AccessAsUser.All", "SMTP.Send": "https://outlook.office.com/SMTP.Send",
				"Mail.ReadWrite": "https://graph.microsoft.com/Mail.ReadWrite", "Mail.Send": "https://graph.microsoft.com/Mail.Send"}[n.delegated[0]] + " offline_access"
		}
		return fmt.Sprintf("the token is for %s, but %s needs %s", c.Aud, n.what, n.api),
			fmt.Sprintf("give %s its own profile (a token is for one API) with scopes: [%s]", n.what, scope)
	}
	if c.appOnly() {
		for _, r := range n.app {
			if slices.Contains(c.Roles, r) {
				return "", ""
			}
		}
		return fmt.Sprintf("the app-only token lacks %s for %s (roles: %s)", strings.Join(n.app, " or "), n.what, orNone(strings.Join(c.Roles, " "))),
			fmt.Sprintf("Entra admin center › App registrations › %s › API permissions › Add a permission › APIs my organization uses › %s › Application permissions › %s, then Grant admin consent",
				p.ClientID, n.api, n.app[len(n.app)-1])
	}
	scopes := strings.Fields(c.Scp)
	for _, s := range n.delegated {
		if slices.Contains(scopes, s) {
			return "", ""
		}
	}
	return fmt.Sprintf("the user's token lacks %s for %s (scopes: %s)", strings.Join(n.delegated, " or "), n.what, orNone(c.Scp)),
		fmt.Sprintf("Entra admin center › App registrations › %s › API permissions › %s › Delegated permissions › %s (with consent), and request it in the profile's scopes; then sign in again (mailgate login %s)",
			p.ClientID, n.api, n.delegated[len(n.delegated)-1], p.Name)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// runDoctor diagnoses NAME: for a profile, its token and every mailbox and
// sender that uses it; for a mailbox or a sender, its profile's token
// against what it needs, then the Test steps.
func runDoctor(ctx context.Context, env *Env, args []string) int {
	fs := newFlagSet(env, "doctor", "NAME")
	cfgFlag := fs.String("config", "", "config file (default $MAILGATE_CONFIG, then ./mailgate.yaml)")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintln(env.Err, "usage: mailgate doctor NAME (a profile, mailbox or sender) [--config FILE]")
		return ExitUsage
	}
	rt, code, ok := loadRuntime(ctx, env, "doctor", configPath(env, *cfgFlag), logger(env.Err, false))
	if !ok {
		return code
	}
	defer rt.close()
	cfg := rt.cfg
	out := &stepPrinter{out: env.Out, width: 7}

	name := pos[0]
	var profile string
	var needs []need
	var then func() bool // the Test steps, after the token's
	if m, ok := cfg.Mailbox(name); ok {
		profile, needs = m.Profile, []need{needOfMailbox(m)}
		then = func() bool { return testMailbox(ctx, rt, m, out.step, out.hint) }
		fmt.Fprintf(env.Out, "doctor: mailbox %s (%s, %s), profile %s\n", m.Name, m.Protocol, m.Username, m.Profile)
	} else if s, ok := cfg.Sender(name); ok {
		profile, needs = s.Profile, []need{needOfSender(s)}
		then = func() bool { return testSender(ctx, rt, s, out.step, out.hint) }
		fmt.Fprintf(env.Out, "doctor: sender %s (%s, %s), profile %s\n", s.Name, orDefault(s.Protocol, "smtp"), s.Username, s.Profile)
	} else if _, ok := rt.profiles[name]; ok {
		profile = name
		for i := range cfg.Mailboxes {
			if m := &cfg.Mailboxes[i]; m.Profile == name {
				needs = append(needs, needOfMailbox(m))
			}
		}
		for i := range cfg.Senders {
			if s := &cfg.Senders[i]; s.Profile == name {
				needs = append(needs, needOfSender(s))
			}
		}
		fmt.Fprintf(env.Out, "doctor: profile %s (%d mailboxes and senders use it)\n", name, len(needs))
	} else {
		fmt.Fprintf(env.Err, "mailgate: doctor: no mailbox, sender or profile %q in %s\n", name, cfg.File)
		return ExitUsage
	}
	p := rt.profiles[profile]
	pc, _ := cfg.Profile(profile)
	doctorExpiry(pc, p, time.Now(), out.step, out.hint)
	tok, ok := testProfile(ctx, rt, p, out.step, out.hint)
	if !ok {
		return ExitFailed
	}
	if c, ok := readClaims(tok.AccessToken); ok && p.Provider == "microsoft" {
		who := "app " + orDefault(c.AppID, c.Azp)
		perms := "roles " + orNone(strings.Join(c.Roles, " "))
		if !c.appOnly() {
			who, perms = "user "+orDefault(c.Upn, "?"), "scopes "+orNone(c.Scp)
		}
		out.step(true, "claims", "for %s, %s, tenant %s, %s", c.Aud, who, c.Tid, perms)
		for _, n := range needs {
			if problem, fix := c.check(n, p); problem != "" {
				out.step(false, "needs", "%s", problem)
				out.hint("fix: " + fix)
			} else {
				out.step(true, "needs", "%s: the token carries what it needs", n.what)
			}
		}
	} else {
		out.hint("not a Microsoft JWT: its permissions cannot be read; the steps below show what the server accepts")
	}
	if then != nil {
		then() // its failures mark out as failed
	}
	if out.failed {
		return ExitFailed
	}
	fmt.Fprintln(env.Out, "no problem found")
	return ExitOK
}

// doctorExpiry reports the client secret's and certificate's expiry, with
// the usual warning from 30 days.
func doctorExpiry(pc *config.Profile, p *oauth.Profile, now time.Time, step stepFunc, hint func(string)) {
	check := func(what string, at time.Time) {
		days := int(at.Sub(now).Hours() / 24)
		switch {
		case !at.After(now):
			step(false, "expiry", "the %s expired on %s", what, at.Format("2006-01-02"))
			hint("fix: Entra admin center › App registrations › " + p.ClientID + " › Certificates & secrets: add a new one, put it in the profile, then delete the old one")
		case days <= 30:
			step(true, "expiry", "the %s expires on %s, in %d days: renew it before then", what, at.Format("2006-01-02"), days)
		default:
			step(true, "expiry", "the %s expires on %s", what, at.Format("2006-01-02"))
		}
	}
	if pc != nil && !pc.SecretExpires.Time.IsZero() {
		check("client secret", pc.SecretExpires.Time)
	}
	if p.Certificate != nil && p.Certificate.Cert != nil {
		check("certificate", p.Certificate.Cert.NotAfter)
	}
}
