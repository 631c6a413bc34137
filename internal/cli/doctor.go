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
	cfg, code, ok := loadConfig(env, configPath(env, *cfgFlag))
	if !ok {
		return code
	}
	rt, err := newRuntime(ctx, env, cfg, logger(env.Err, false))
	if err != nil {
		fmt.Fprintf(env.Err, "mailgate: doctor: %v\n", err)
		if isProfileError(err) {
			return ExitUsage
		}
		return ExitFailed
	}
	defer rt.close()
	cfg = rt.cfg
	out := env.Out
	healthy := true
	step := func(okay bool, name, format string, a ...any) {
		mark := "✓"
		if !okay {
			mark, healthy = "✗", false
		}
		fmt.Fprintf(out, "%s %-7s %s\n", mark, name, fmt.Sprintf(format, a...))
	}
	hint := func(s string) { fmt.Fprintf(out, "  %s\n", s) }

	name := pos[0]
	var profile string
	var needs []need
	var then func() bool
	switch {
	case hasMailbox(cfg, name):
		m, _ := cfg.Mailbox(name)
		profile, needs = m.Profile, []need{needOfMailbox(m)}
		then = func() bool { return testMailbox(ctx, rt, m, step, hint) }
		fmt.Fprintf(out, "doctor: mailbox %s (%s, %s), profile %s\n", m.Name, m.Protocol, m.Username, m.Profile)
	case hasSender(cfg, name):
		s, _ := cfg.Sender(name)
		profile, needs = s.Profile, []need{needOfSender(s)}
		then = func() bool { return testSender(ctx, rt, s, step, hint) }
		fmt.Fprintf(out, "doctor: sender %s (%s, %s), profile %s\n", s.Name, orDefault(s.Protocol, "smtp"), s.Username, s.Profile)
	default:
		if _, ok := rt.profiles[name]; !ok {
			fmt.Fprintf(env.Err, "mailgate: doctor: no mailbox, sender or profile %q in %s\n", name, cfg.File)
			return ExitUsage
		}
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
		fmt.Fprintf(out, "doctor: profile %s (%d mailboxes and senders use it)\n", name, len(needs))
	}
	p := rt.profiles[profile]
	pc, _ := cfg.Profile(profile)
	doctorExpiry(pc, p, time.Now(), step, hint)
	t0 := time.Now()
	tok, err := rt.mgr.Token(ctx, p, nil)
	if err != nil {
		step(false, "token", "profile %s: %v", profile, err)
		if ex, ok := oauth.ExplainError(err, p); ok {
			if ex.AADSTS != 0 {
				hint(fmt.Sprintf("AADSTS%d: %s", ex.AADSTS, ex.Meaning))
			}
			hint("fix: " + ex.Fix)
		}
		return ExitFailed
	}
	step(true, "token", "profile %s, valid until %s (%s)", profile, tok.Expiry.Local().Format("15:04:05"), time.Since(t0).Round(time.Millisecond))
	if c, ok := readClaims(tok.AccessToken); ok && p.Provider == "microsoft" {
		who := "app " + orDefault(c.AppID, c.Azp)
		perms := "roles " + orNone(strings.Join(c.Roles, " "))
		if !c.appOnly() {
			who, perms = "user "+orDefault(c.Upn, "?"), "scopes "+orNone(c.Scp)
		}
		step(true, "claims", "for %s, %s, tenant %s, %s", c.Aud, who, c.Tid, perms)
		for _, n := range needs {
			if problem, fix := c.check(n, p); problem != "" {
				step(false, "needs", "%s", problem)
				hint("fix: " + fix)
			} else {
				step(true, "needs", "%s: the token carries what it needs", n.what)
			}
		}
	} else {
		step(true, "claims", "not a Microsoft JWT: the permissions cannot be read from it; the steps below show what the server accepts")
	}
	if then != nil && !then() {
		healthy = false
	}
	if !healthy {
		return ExitFailed
	}
	fmt.Fprintln(out, "no problem found")
	return ExitOK
}

// doctorExpiry reports the client secret's and certificate's expiry, with
// the usual warning from 30 days.
func doctorExpiry(pc *config.Profile, p *oauth.Profile, now time.Time, step func(bool, string, string, ...any), hint func(string)) {
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

func hasMailbox(cfg *config.Config, name string) bool { _, ok := cfg.Mailbox(name); return ok }
func hasSender(cfg *config.Config, name string) bool  { _, ok := cfg.Sender(name); return ok }
