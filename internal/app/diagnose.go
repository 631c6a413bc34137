package app

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/graph"
	"github.com/mailgate/mailgate/internal/imap"
	"github.com/mailgate/mailgate/internal/mailbox"
	"github.com/mailgate/mailgate/internal/oauth"
	"github.com/mailgate/mailgate/internal/sasl"
	"github.com/mailgate/mailgate/internal/smtp"
)

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
	user      string   // the mailbox's or sender's username (a service account's subject)
	google    string   // the scope a Google token needs for it ("": none known)
}

// needOf says what a mailbox or sender needs of a Microsoft token.
func needOfMailbox(m *config.Mailbox) need {
	n := need{what: fmt.Sprintf("mailbox %s (%s)", m.Name, m.Protocol), audiences: exchangeAudiences, api: "Office 365 Exchange Online",
		user: mailboxUser(m), google: sasl.GoogleMailScope}
	switch m.Protocol {
	case "pop3":
		n.app, n.delegated = []string{"POP.AccessAsApp"}, []string{"POP.AccessAsUser.All"}
	case "graph":
		n.audiences, n.api, n.google = graphAudiences, "Microsoft Graph", ""
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
			app: []string{"Mail.Send"}, delegated: []string{"Mail.Send"}, user: s.Username}
	}
	return need{what: "sender " + s.Name + " (smtp)", audiences: exchangeAudiences, api: "Office 365 Exchange Online",
		app: []string{"SMTP.SendAsApp"}, delegated: []string{"SMTP.Send"}, user: s.Username, google: sasl.GoogleMailScope}
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

// doctorExpiry reports the client secret's and certificate's expiry, with
// the usual warning from 30 days.
func doctorExpiry(pc *config.Profile, p *oauth.Profile, now time.Time, step StepFunc, hint func(string)) {
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

// diagnose says what to change when a mailbox failed: the token's AADSTS
// explanation, or for a login Exchange refused, what Exchange Online needs
// for this app and this mailbox, IDs filled in.
func diagnose(m *config.Mailbox, p *oauth.Profile, err error) []string {
	// a token refused by Entra ID, whichever step asked for it (Graph asks
	// on its first call)
	if ex, ok := oauth.ExplainError(err, p); ok {
		return []string{"fix: " + ex.String()}
	}
	e, ok := mailbox.AsError(err)
	if !ok {
		return nil
	}
	// Gmail's error challenge names the scope it wants: that is the advice,
	// not Exchange's
	var ae *sasl.AuthError
	if errors.As(err, &ae) && ae.Explain() != "" {
		return []string{"fix: Gmail refused the token for " + m.Username + " (challenge status " + ae.Status + ", scope " + ae.Scope + "): " + ae.Explain()}
	}
	// Exchange refused the login, or took the token and then could not
	// open the mailbox ("User is authenticated but not connected.")
	var ie *imap.Error
	refused := e.AuthFailed && (e.Step == mailbox.StepAuth || errors.As(err, &ie) && ie.Kind == imap.KindNotConnected)
	switch {
	case refused:
		return refusedAdvice(p, m.Username, m.Protocol)
	case e.Hint != "":
		return []string{"fix: " + e.Hint}
	}
	return nil
}

// refusedAdvice says what Exchange Online needs when it refused a token
// for mailbox over protocol (imap or pop3), for an app-only or a user's
// token of profile p.
func refusedAdvice(p *oauth.Profile, mailbox, protocol string) []string {
	if p != nil && (p.Grant == "" || p.Grant == oauth.GrantClientCredentials) {
		role := map[string]string{"imap": "IMAP.AccessAsApp", "pop3": "POP.AccessAsApp"}[protocol]
		return []string{
			"the server refused the app-only token for " + mailbox + ". Exchange Online needs, for app " + p.ClientID + ":",
			"  1. Entra admin center › App registrations › " + p.ClientID + " › API permissions: Office 365 Exchange Online › Application permissions › " + role + ", then Grant admin consent",
			"  2. Exchange Online PowerShell: New-ServicePrincipal -AppId " + p.ClientID + " -ObjectId <object id of the enterprise application (not of the app registration)>",
			"  3. Add-MailboxPermission -Identity " + mailbox + " -User <that service principal's id> -AccessRights FullAccess",
			"  and the profile must request scope https://outlook.office365.com/.default",
		}
	}
	return []string{"the server refused the user's token for " + mailbox + ": the signed-in user needs the mailbox's delegated permission (" +
		map[string]string{"imap": "IMAP.AccessAsUser.All", "pop3": "POP.AccessAsUser.All"}[protocol] +
		") and, for a shared mailbox, FullAccess on it: Add-MailboxPermission -Identity " + mailbox + " -User <user> -AccessRights FullAccess"}
}

// TokenAdvice says what a token endpoint's refusal means and what to
// change: Entra ID's AADSTS code and meaning (or the provider's meaning),
// then "fix: …". Nil when there is nothing to say.
func TokenAdvice(err error, p *oauth.Profile) []string {
	ex, ok := oauth.ExplainError(err, p)
	if !ok {
		return nil
	}
	var out []string
	if ex.AADSTS != 0 {
		out = append(out, fmt.Sprintf("AADSTS%d: %s", ex.AADSTS, ex.Meaning))
	} else if ex.Meaning != "" {
		out = append(out, ex.Meaning)
	}
	if ex.Fix != "" {
		out = append(out, "fix: "+ex.Fix)
	}
	return out
}

// MailboxAdvice is diagnose's advice for a failure of mailbox m, read with
// oauth profile p (nil: unknown): what to change, a line each.
func MailboxAdvice(m *config.Mailbox, p *oauth.Profile, err error) []string {
	return diagnose(m, p, err)
}

// Diagnose is `mailgate doctor NAME`: for a profile, its token against
// what every mailbox and sender using it needs; for a mailbox or a
// sender, its profile's token against what it needs, then its Test steps;
// for a proxy account, its profile's token against what each listener it
// may use needs, the listeners' certificates, then its upstream logins.
// note hears what is looked at, step and hint each step and what to
// change. ok is false when a step failed, found when there is such a name.
func (a *App) Diagnose(ctx context.Context, name string, note func(string), step StepFunc, hint func(string)) (ok, found bool) {
	rt, cfg := a.rt, a.rt.cfg
	failed := false
	step = func(next StepFunc) StepFunc {
		return func(ok bool, name, format string, args ...any) {
			failed = failed || !ok
			next(ok, name, format, args...)
		}
	}(step)
	var profile, subject string
	var needs []need
	var then func(*oauth.Token) bool // the Test steps, after the token's
	if m, ok := cfg.Mailbox(name); ok {
		profile, subject, needs = m.Profile, mailboxUser(m), []need{needOfMailbox(m)}
		then = func(*oauth.Token) bool { return testMailbox(ctx, rt, m, step, hint) }
		note(fmt.Sprintf("doctor: mailbox %s (%s, %s), profile %s", m.Name, m.Protocol, m.Username, m.Profile))
	} else if s, ok := cfg.Sender(name); ok {
		profile, subject, needs = s.Profile, s.Username, []need{needOfSender(s)}
		then = func(*oauth.Token) bool { return testSender(ctx, rt, s, step, hint) }
		note(fmt.Sprintf("doctor: sender %s (%s, %s), profile %s", s.Name, orDefault(s.Protocol, "smtp"), s.Username, s.Profile))
	} else if acc, ok := cfg.Account(name); ok {
		// the proxy logs in with the profile's token as it is (no subject)
		profile, needs = acc.Profile, accountNeeds(cfg, acc)
		then = func(tok *oauth.Token) bool { return doctorAccount(ctx, rt, acc, tok, time.Now(), step, hint) }
		note(fmt.Sprintf("doctor: proxy account %s (mailbox %s), profile %s", acc.Username, acc.Mailbox, acc.Profile))
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
		note(fmt.Sprintf("doctor: profile %s (%d mailboxes and senders use it)", name, len(needs)))
	} else {
		return false, false
	}
	p := rt.profiles[profile].ForSubject(subject)
	pc, _ := cfg.Profile(profile)
	doctorExpiry(pc, p, time.Now(), step, hint)
	tok, ok := testProfile(ctx, rt, p, step, hint)
	if !ok {
		return false, true
	}
	if p.Provider == oauth.ProviderGoogle {
		checkGoogle(ctx, rt, p, tok, needs, step, hint)
	} else {
		checkClaims(tok.AccessToken, p, needs, step, hint)
	}
	if then != nil {
		then(tok) // its failures mark the diagnosis failed
	}
	return !failed, true
}

// checkClaims reports what a Microsoft access token carries against what
// each of needs requires.
func checkClaims(at string, p *oauth.Profile, needs []need, step StepFunc, hint func(string)) {
	c, ok := readClaims(at)
	if !ok || p.Provider != "microsoft" {
		hint("not a Microsoft JWT: its permissions cannot be read; the steps below show what the server accepts")
		return
	}
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
}

// TokenUser reads the user name out of a JWT access token for display
// (Microsoft's upn / preferred_username); "" for opaque tokens. The token
// is not verified: this is only a greeting.
func TokenUser(at string) string {
	parts := strings.Split(at, ".")
	if len(parts) != 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		Upn               string `json:"upn"`
		PreferredUsername string `json:"preferred_username"`
		Email             string `json:"email"`
	}
	if json.Unmarshal(payload, &c) != nil {
		return ""
	}
	for _, v := range []string{c.Upn, c.PreferredUsername, c.Email} {
		if v != "" {
			return v
		}
	}
	return ""
}

// SenderAdvice says what to change after a sender failed: the SMTP reply's
// meaning, then "fix: …"; or Graph's "fix: …". Nil when nothing is known.
func SenderAdvice(err error) []string {
	var se *smtp.Error
	if errors.As(err, &se) {
		if meaning, fix := se.Explain(); meaning != "" {
			return []string{meaning, "fix: " + fix}
		}
	}
	var ge *graph.Error
	if errors.As(err, &ge) && ge.Hint() != "" {
		return []string{"fix: " + ge.Hint()}
	}
	return nil
}
