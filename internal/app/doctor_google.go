package app

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mailgate/mailgate/internal/oauth"
)

// googleKeyMaxAge is the key age doctor warns about: Google advises
// rotating service account keys, and 90 days is the usual policy.
const googleKeyMaxAge = 90 * 24 * time.Hour

// checkGoogle is doctor's look at a Google token: the service account
// key's age, the granted scopes against what each mailbox and sender
// needs, and for a service account acting for each mailbox's user, a
// token for every such user (domain-wide delegation is per user and
// scope).
func checkGoogle(ctx context.Context, rt *parts, p *oauth.Profile, tok *oauth.Token, needs []need, step StepFunc, hint func(string)) {
	if p.ServiceAccount != nil {
		checkGoogleKey(ctx, p, step, hint)
	}
	granted := strings.Fields(tok.Scope)
	if len(granted) == 0 {
		granted = p.Scopes
	}
	step(true, "claims", "scopes %s", orNone(strings.Join(granted, " ")))
	for _, n := range needs {
		switch {
		case n.google == "":
		case slices.Contains(granted, n.google):
			step(true, "needs", "%s: the token carries %s", n.what, n.google)
		default:
			step(false, "needs", "%s needs %s; the token has %s", n.what, n.google, orNone(strings.Join(granted, " ")))
			fix := "fix: add " + n.google + " to the profile's scopes"
			if p.ServiceAccount != nil {
				fix += " and to the delegation: " + oauth.DomainWideDelegationPath + " › " + p.ClientID
			} else {
				fix += ", then sign in again: mailgate login " + p.Name
			}
			hint(fix)
		}
	}
	if p.ServiceAccount == nil || p.Subject != "" {
		return
	}
	var users []string
	for _, n := range needs {
		if n.user != "" && !slices.Contains(users, n.user) {
			users = append(users, n.user)
		}
	}
	for _, u := range users {
		pu := p.ForSubject(u)
		if _, err := rt.mgr.Fresh(ctx, pu, nil); err != nil {
			step(false, "delegation", "acting for %s: %v", u, err)
			for _, l := range TokenAdvice(err, pu) {
				hint(l)
			}
			continue
		}
		step(true, "delegation", "acting for %s: a token for it", u)
	}
}

// checkGoogleKey says how old the service account's key is. Google's key
// files carry no date; the key's certificate, which Google publishes at
// the file's client_x509_cert_url, does (its NotBefore is the key's
// creation), so doctor reads it there; when it cannot, the age is unknown
// and said so.
func checkGoogleKey(ctx context.Context, p *oauth.Profile, step StepFunc, hint func(string)) {
	k := p.ServiceAccount
	created, err := oauth.ServiceAccountKeyCreated(ctx, p)
	if err != nil {
		step(true, "key", "key %s of %s: its age is unknown (%v)", k.PrivateKeyID, k.ClientEmail, err)
		return
	}
	age := time.Since(created)
	days := int(age.Hours() / 24)
	if age > googleKeyMaxAge {
		step(true, "key", "key %s of %s was created on %s, %d days ago: older than 90 days", k.PrivateKeyID, k.ClientEmail, created.Format(time.DateOnly), days)
		hint(fmt.Sprintf("fix: rotate it: Google Cloud console › IAM & Admin › Service accounts › %s › Keys › Add key › Create new key › JSON; point service_account_key at the new file, then delete key %s",
			k.ClientEmail, k.PrivateKeyID))
		return
	}
	step(true, "key", "key %s of %s was created on %s, %d days ago", k.PrivateKeyID, k.ClientEmail, created.Format(time.DateOnly), days)
}
