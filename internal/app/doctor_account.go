package app

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"

	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/oauth"
)

// needOfAccount says what a proxy account needs of its profile's token on
// listener l: what a mailbox (imap, pop3) or a sender (smtp) of that
// protocol needs for its mailbox.
func needOfAccount(a *config.Account, l *config.Listener) need {
	what := fmt.Sprintf("account %s on listener %s (%s)", a.Username, l.Name, l.Protocol)
	if l.Protocol == "smtp" {
		n := needOfSender(&config.Sender{Name: a.Username, Protocol: "smtp", Username: a.Mailbox})
		n.what = what
		return n
	}
	n := needOfMailbox(&config.Mailbox{Name: a.Username, Protocol: l.Protocol, Username: a.Mailbox})
	n.what = what
	return n
}

// accountNeeds are an account's needs on every listener it may use.
func accountNeeds(cfg *config.Config, a *config.Account) []need {
	var out []need
	for _, l := range accountListeners(cfg, a) {
		out = append(out, needOfAccount(a, l))
	}
	return out
}

// doctorAccount is `mailgate doctor ACCOUNT` after the token's steps: the
// certificate of each listener with TLS the account may use (its expiry,
// warned of from 30 days), then the account's upstream logins.
func doctorAccount(ctx context.Context, rt *parts, a *config.Account, tok *oauth.Token, now time.Time, step StepFunc, hint func(string)) bool {
	ok := true
	for _, l := range accountListeners(rt.cfg, a) {
		if l.Security == "none" {
			continue
		}
		if !listenerCertificate(l, now, step, hint) {
			ok = false
		}
	}
	return testAccountLogins(ctx, rt, a, tok.AccessToken, step, hint) && ok
}

// listenerCertificate reports the expiry of l's certificate (tls_cert).
func listenerCertificate(l *config.Listener, now time.Time, step StepFunc, hint func(string)) bool {
	cert, err := tls.LoadX509KeyPair(l.TLSCert, l.TLSKey)
	if err == nil && cert.Leaf == nil {
		err = fmt.Errorf("%s holds no certificate", l.TLSCert)
	}
	if err != nil {
		step(false, "cert", "listener %s: tls_cert/tls_key: %v", l.Name, err)
		hint("fix: point tls_cert and tls_key at the listener's PEM certificate and key")
		return false
	}
	at := cert.Leaf.NotAfter
	days := int(at.Sub(now).Hours() / 24)
	switch {
	case !at.After(now):
		step(false, "cert", "listener %s: its certificate (%s) expired on %s", l.Name, l.TLSCert, at.Format("2006-01-02"))
		hint("fix: renew " + l.TLSCert + " (clients refuse an expired certificate), then send serve SIGHUP")
		return false
	case days <= 30:
		step(true, "cert", "listener %s: its certificate expires on %s, in %d days: renew it before then", l.Name, at.Format("2006-01-02"), days)
	default:
		step(true, "cert", "listener %s: its certificate expires on %s", l.Name, at.Format("2006-01-02"))
	}
	return true
}
