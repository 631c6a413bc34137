package app

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/mailbox"
	"github.com/mailgate/mailgate/internal/oauth"
	"github.com/mailgate/mailgate/internal/redact"
)

// StepFunc reports one step of a Test or a Diagnose; the hint func that
// goes with it adds what to change to the step before it.
type StepFunc func(ok bool, name, format string, a ...any)

// Test is `mailgate test NAME` and the console's Test button: the steps
// of the record named name, of kind (mailboxes, sinks, senders or
// profiles) or, with kind "", of the first kind in that order that has
// one, reported to step and hint. It returns the record's kind in the
// singular, whether every step passed and whether there was such a record.
func (a *App) Test(ctx context.Context, kind, name string, step StepFunc, hint func(string)) (what string, ok, found bool) {
	return testRecord(ctx, a.rt, kind, name, step, hint)
}

// testRecord runs the Test steps of the record named name, of kind
// (mailboxes, sinks, senders or profiles) or, with kind "", of the first
// kind in that order that has one. It returns the record's kind in the
// singular, whether every step passed and whether there was such a record.
func testRecord(ctx context.Context, rt *parts, kind, name string, step StepFunc, hint func(string)) (what string, ok, found bool) {
	is := func(k string) bool { return kind == "" || kind == k }
	if m, ok := rt.cfg.Mailbox(name); ok && is("mailboxes") {
		return "mailbox", testMailbox(ctx, rt, m, step, hint), true
	}
	if k, ok := rt.cfg.Sink(name); ok && is("sinks") {
		return "sink", testSink(ctx, rt, k, step, hint), true
	}
	if snd, ok := rt.cfg.Sender(name); ok && is("senders") {
		return "sender", testSender(ctx, rt, snd, step, hint), true
	}
	if a, ok := rt.cfg.Account(name); ok && is("accounts") {
		return "account", testAccount(ctx, rt, a, step, hint), true
	}
	if p, ok := rt.profiles[name]; ok && is("profiles") {
		_, ok := testProfile(ctx, rt, p, step, hint)
		return "profile", ok, true
	}
	return "", false, false
}

// testProfile is the token step every Test starts with: a token for p
// fetched now from the token endpoint (a cached one proves nothing about
// the credentials), or the refusal with Entra's meaning and what to
// change. A failure leaves the cached token to the agents.
func testProfile(ctx context.Context, rt *parts, p *oauth.Profile, step StepFunc, hint func(string)) (*oauth.Token, bool) {
	t0 := time.Now()
	tok, err := rt.mgr.Fresh(ctx, p, nil)
	if err != nil {
		step(false, "token", "profile %s: %v", p.Name, err)
		for _, l := range TokenAdvice(err, p) {
			hint(l)
		}
		return nil, false
	}
	as := ""
	if p.Subject != "" {
		as = " acting for " + p.Subject
	}
	step(true, "token", "profile %s%s: a new token from the token endpoint, valid until %s (%s)", p.Name, as, tok.Expiry.Local().Format("15:04:05"), time.Since(t0).Round(time.Millisecond))
	return tok, true
}

func testMailbox(ctx context.Context, rt *parts, m *config.Mailbox, step StepFunc, hint func(string)) bool {
	if m.Protocol == "graph" {
		return testGraphMailbox(ctx, rt, m, step, hint)
	}
	if !testReach(ctx, m.Host, m.Port, m.Security, m.TLSCA, "Exchange Online: IMAP 993, POP3 995", step, hint) {
		return false
	}
	p := rt.profiles[m.Profile].ForSubject(mailboxUser(m))
	if _, ok := testProfile(ctx, rt, p, step, hint); !ok {
		return false
	}
	a, err := rt.agentMailbox(m)
	if err != nil {
		step(false, "config", "%v", err)
		return false
	}
	t0 := time.Now()
	c, err := a.Dialer.Dial(ctx)
	if err != nil {
		e, _ := mailbox.AsError(err)
		name := "auth"
		if e != nil && e.Step != "" {
			name = e.Step
		}
		step(false, name, "%v", err)
		for _, l := range diagnose(m, p, err) {
			hint(l)
		}
		return false
	}
	defer c.Close()
	step(true, "auth", "%s as %s (%s)", strings.ToUpper(orDefault(m.SASL, "xoauth2")), m.Username, time.Since(t0).Round(time.Millisecond))
	s, err := c.Scan(ctx, mailbox.Cursor{})
	if err != nil {
		step(false, "select", "%v", err)
		return false
	}
	step(true, "select", "%s: %d messages", orDefault(m.Folder, "INBOX"), len(s.Items))
	return true
}

// testReach checks DNS, TCP and, for implicit TLS, the handshake and the
// certificate, as the first steps of a mailbox's or a sender's Test.
func testReach(ctx context.Context, host string, port int, security, caFile, ports string, step StepFunc, hint func(string)) bool {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	ips, err := net.DefaultResolver.LookupHost(ctx, host)
	if err != nil {
		step(false, "dns", "%s: %v", host, err)
		hint("check host: " + host)
		return false
	}
	step(true, "dns", "%s → %s", host, strings.Join(ips, ", "))
	t0 := time.Now()
	d := net.Dialer{Timeout: 10 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		step(false, "tcp", "%s: %v", addr, err)
		hint("check port and firewall (" + ports + ")")
		return false
	}
	defer conn.Close()
	step(true, "tcp", "%s (%s)", addr, time.Since(t0).Round(time.Millisecond))
	tc, err := tlsConfig(host, caFile)
	if err != nil {
		step(false, "tls", "%v", err)
		return false
	}
	switch security {
	case "none":
		step(true, "tls", "none: a plain connection (allowed to loopback only)")
		return true
	case "starttls":
		step(true, "tls", "starttls (negotiated inside the protocol)")
		return true
	}
	tconn := tls.Client(conn, tc)
	if err := tconn.HandshakeContext(ctx); err != nil {
		step(false, "tls", "%v", err)
		hint("the certificate is not trusted for " + host + ": add its CA with tls_ca, or use the host name it was issued for")
		return false
	}
	st := tconn.ConnectionState()
	step(true, "tls", "%s, certificate for %s, expires %s", tls.VersionName(st.Version), st.PeerCertificates[0].Subject.CommonName,
		st.PeerCertificates[0].NotAfter.Format("2006-01-02"))
	return true
}

// testSender exercises a sender without sending: SMTP up to a successful
// AUTH (then QUIT), or for Graph a token and its Mail.Send permission.
func testSender(ctx context.Context, rt *parts, snd *config.Sender, step StepFunc, hint func(string)) bool {
	p := rt.profiles[snd.Profile].ForSubject(snd.Username)
	if snd.Protocol != "graph" {
		security := orDefault(snd.Security, "starttls")
		if !testReach(ctx, snd.Host, snd.Port, security, snd.TLSCA, "Exchange Online: submission 587", step, hint) {
			return false
		}
	}
	tok, ok := testProfile(ctx, rt, p, step, hint)
	if !ok {
		return false
	}
	if snd.Protocol == "graph" {
		c, ok := readClaims(tok.AccessToken)
		switch {
		case !ok:
			hint("the token is opaque: its permissions cannot be read; only a send shows whether " + snd.Username + " may send")
		case slices.Contains(c.Roles, "Mail.Send") || slices.Contains(strings.Fields(c.Scp), "Mail.Send"):
			step(true, "graph", "the token carries Mail.Send (an application access policy can still exclude %s; a send shows it)", snd.Username)
		default:
			step(false, "graph", "the token carries no Mail.Send permission (roles %v, scopes %q)", c.Roles, c.Scp)
			hint("fix: Entra admin center › App registrations › " + p.ClientID + " › API permissions › Microsoft Graph › Application permissions › Mail.Send, then Grant admin consent")
			return false
		}
		return true
	}
	s, err := rt.outboxSender(snd)
	if err != nil {
		step(false, "config", "%v", err)
		return false
	}
	t0 := time.Now()
	c, err := s.Dial(ctx)
	if err != nil {
		step(false, "auth", "%v", err)
		if advice := SenderAdvice(err); len(advice) > 0 {
			hint(strings.Join(advice, "; "))
		}
		return false
	}
	_ = c.Quit()
	c.Close()
	step(true, "auth", "%s as %s (%s); nothing was sent", strings.ToUpper(orDefault(snd.SASL, "xoauth2")), snd.Username, time.Since(t0).Round(time.Millisecond))
	return true
}

// testSink checks that a sink can take a message without delivering one:
// a maildir is writable, a webhook's server answers TLS, a command's
// program is executable, the store answers.
func testSink(ctx context.Context, rt *parts, k *config.Sink, step StepFunc, hint func(string)) bool {
	switch k.Type {
	case "maildir":
		tmp := filepath.Join(k.Path, "tmp")
		for _, sub := range []string{"tmp", "new", "cur"} {
			if err := os.MkdirAll(filepath.Join(k.Path, sub), 0o700); err != nil {
				step(false, "maildir", "%v", err)
				hint("mailgate needs to create and write " + k.Path + " (check its owner and mode)")
				return false
			}
		}
		f, err := os.CreateTemp(tmp, ".mailgate-test-*")
		if err == nil {
			_, err = f.WriteString("test\n")
			err = errors.Join(err, f.Sync(), f.Close(), os.Remove(f.Name()))
		}
		if err != nil {
			step(false, "maildir", "%v", err)
			hint("mailgate needs to create and write files in " + tmp + " (check its owner and mode)")
			return false
		}
		step(true, "maildir", "%s: writable (a test file was written in tmp/ and removed)", k.Path)
	case "webhook":
		u, err := url.Parse(k.URL)
		if err != nil {
			step(false, "url", "%v", err)
			return false
		}
		port, security := 443, "tls"
		if u.Scheme == "http" {
			port, security = 80, "none"
		}
		if p := u.Port(); p != "" {
			port, _ = strconv.Atoi(p)
		}
		if !testReach(ctx, u.Hostname(), port, security, "", "the webhook's port", step, hint) {
			return false
		}
		step(true, "webhook", "%s reachable; nothing was posted (a POST delivers a message)", redact.URL(k.URL))
	case "command":
		if len(k.Command) == 0 {
			step(false, "command", "no command")
			return false
		}
		path, err := exec.LookPath(k.Command[0])
		if err != nil {
			step(false, "command", "%v", err)
			hint("install " + k.Command[0] + " or give its absolute path")
			return false
		}
		step(true, "command", "%s is executable; it was not run (a run delivers a message)", path)
	case "store":
		if err := rt.store.Ping(ctx); err != nil {
			step(false, "store", "%v", err)
			return false
		}
		step(true, "store", "messages are kept in mailgate's store (the console's Messages page)")
	default:
		step(false, "sink", "unknown type %q", k.Type)
		return false
	}
	return true
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// testGraphMailbox: token, then a delta query of the folder.
func testGraphMailbox(ctx context.Context, rt *parts, m *config.Mailbox, step StepFunc, hint func(string)) bool {
	if _, ok := testProfile(ctx, rt, rt.profiles[m.Profile], step, hint); !ok {
		return false
	}
	a, err := rt.agentMailbox(m)
	if err != nil {
		step(false, "config", "%v", err)
		return false
	}
	c, err := a.Dialer.Dial(ctx)
	if err != nil {
		step(false, "graph", "%v", err)
		return false
	}
	defer c.Close()
	t0 := time.Now()
	s, err := c.Scan(ctx, mailbox.Cursor{})
	if err != nil {
		step(false, "graph", "%v", err)
		if e, ok := mailbox.AsError(err); ok && e.Hint != "" {
			hint("fix: " + e.Hint)
		}
		return false
	}
	step(true, "graph", "%s of %s: %d messages (%s)", orDefault(m.Folder, "inbox"), m.Username, len(s.Items), time.Since(t0).Round(time.Millisecond))
	return true
}
