// Package demo is `mailgate demo`: a walk-through against the built-in
// Entra ID and Exchange emulator (package emulator) that needs no tenant.
// It starts the emulator, writes a ready mailgate.yaml for it, opens it
// with app.Open like every command, and shows each step: tokens with a
// secret and a certificate, the token cache, an IMAP login under
// Exchange's mailbox rule, an error explained, a mailbox read exactly
// once, a message sent through Graph, and a Google Workspace mailbox (the
// emulator's Gmail IMAP service) read through a service account with
// domain-wide delegation. PrepareServe then readies the
// console for `mailgate serve`.
//
// Use: New, Run, Failed; then PrepareServe and serve the file it returns.
package demo

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mailgate/mailgate/internal/app"
	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/emulator"
	"github.com/mailgate/mailgate/internal/oauth"
	"github.com/mailgate/mailgate/internal/store"
)

// previousRun is where SetAsidePreviousRun moves an earlier run's state.
const previousRun = "previous-run"

// SetAsidePreviousRun moves the store and the inbox of an earlier demo run
// in dir to dir/previous-run (replacing what an even earlier run left
// there) and returns that path, or "" when dir holds no earlier run. They
// belong to the emulator of that run, which is gone: its signing keys made
// the cached tokens (which the profile settings alone cannot tell apart
// when the demo listens on the same port again), and its mailboxes the
// UIDs that the delivery ledger remembers as delivered.
func SetAsidePreviousRun(dir string) (string, error) {
	names := []string{"mailgate.db", "mailgate.db-wal", "mailgate.db-shm", "inbox", "gmail-inbox"}
	var found []string
	for _, n := range names {
		if _, err := os.Lstat(filepath.Join(dir, n)); err == nil {
			found = append(found, n)
		}
	}
	if len(found) == 0 {
		return "", nil
	}
	prev := filepath.Join(dir, previousRun)
	if err := os.RemoveAll(prev); err != nil {
		return "", err
	}
	if err := os.Mkdir(prev, 0o700); err != nil {
		return "", err
	}
	for _, n := range found {
		if err := os.Rename(filepath.Join(dir, n), filepath.Join(prev, n)); err != nil {
			return "", err
		}
	}
	return prev, nil
}

// PrepareServe readies `mailgate serve` on the demo's config, with the
// console on addr (a free port if taken) and a fresh administrator
// password, and delivers new sample mail for the agent to pick up. It
// returns the config file to serve.
func (d *Demo) PrepareServe(ctx context.Context, addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		return "", fmt.Errorf("console: %w", err)
	}
	addr = ln.Addr().String()
	ln.Close()
	cfgPath := filepath.Join(d.dir, "mailgate.yaml")
	f, err := os.OpenFile(cfgPath, os.O_APPEND|os.O_WRONLY, 0o600)
	if err == nil {
		_, err = fmt.Fprintf(f, "\n# the console of `mailgate serve`\nlisten: %s\n", addr)
		f.Close()
	}
	if err != nil {
		return "", err
	}
	key, err := store.LoadKey(filepath.Join(d.dir, "mailgate.key"), d.getenv)
	if err != nil {
		return "", err
	}
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(d.dir, "mailgate.db"), &store.Options{Key: key})
	if err != nil {
		return "", err
	}
	password := rand.Text()
	err = st.SetAdmin(ctx, "admin", password)
	st.Close()
	if err != nil {
		return "", err
	}
	for i, subj := range []string{"Expense form #1041", "Expense form #1042", "Leave request: A. Vance"} {
		raw := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <demo-live-%d-%s@contoso.example>\r\n\r\nSubmitted from the offline forms app.\r\n",
			emulator.DemoUser, emulator.DemoSharedMailbox, subj, i, rand.Text()[:8])
		if _, err := d.srv.IMAPDeliver(emulator.DemoSharedMailbox, []byte(raw)); err != nil {
			return "", err
		}
	}
	for i := range 2 {
		raw := fmt.Sprintf("From: billing@fabrikam.example\r\nTo: %s\r\nSubject: Invoice 2026-%03d\r\nMessage-ID: <demo-invoice-%d-%s@fabrikam.example>\r\n\r\nPlease find invoice 2026-%03d.\r\n",
			emulator.DemoInvoicesMailbox, 200+i, i, rand.Text()[:8], 200+i)
		if _, err := d.srv.GraphDeliver(emulator.DemoInvoicesMailbox, []byte(raw)); err != nil {
			return "", err
		}
	}
	for i, subj := range []string{"Timesheet week 49", "Travel request: Lisbon"} {
		raw := fmt.Sprintf("From: hr@%[1]s\r\nTo: %[2]s\r\nSubject: %[3]s\r\nMessage-ID: <demo-gmail-live-%[4]d-%[5]s@%[1]s>\r\n\r\nSubmitted from Google Forms.\r\n",
			emulator.GoogleDomain, workspaceUser, subj, i, rand.Text()[:8])
		if _, err := d.srv.GmailDeliver(workspaceUser, []byte(raw)); err != nil {
			return "", err
		}
	}
	d.step(9, "The daemon and its console (mailgate serve)")
	_, unseen, _ := d.srv.IMAPStatus(emulator.DemoSharedMailbox, "INBOX")
	d.ok("%d new messages wait in %s (IMAP); the agent delivers them into %s, then waits in IMAP IDLE for more", unseen, emulator.DemoSharedMailbox, filepath.Join(d.dir, "inbox"))
	d.ok("2 invoices wait in %s; the agent keeps them in mailgate's store (the console's Messages page)", emulator.DemoInvoicesMailbox)
	d.ok("2 new messages wait in %s's Gmail; the agent delivers them into %s with the service account's token", workspaceUser, filepath.Join(d.dir, "gmail-inbox"))
	fmt.Fprintf(d.out, "\n   Console: http://%s/\n   Sign in as: admin\n   Password:   %s   (new for every demo run)\n\n", addr, password)
	fmt.Fprintln(d.out, "The emulator and the daemon keep running for you to try the console and the commands above; Ctrl-C stops them.")
	return cfgPath, nil
}

// Demo is one walk-through: its directory, where it tells what happens,
// and the emulator it runs.
type Demo struct {
	dir    string
	out    io.Writer
	getenv func(string) string
	failed bool
	srv    *emulator.Server
}

// New is the walk-through in dir (which exists), told on out; getenv
// resolves the config's ${VAR}s and MAILGATE_KEY.
func New(dir string, out io.Writer, getenv func(string) string) *Demo {
	return &Demo{dir: dir, out: out, getenv: getenv}
}

// Failed says whether a step did not behave as expected (said on out).
func (d *Demo) Failed() bool { return d.failed }

func (d *Demo) step(n int, title string) { fmt.Fprintf(d.out, "\n%d. %s\n", n, title) }
func (d *Demo) ok(format string, a ...any) {
	fmt.Fprintf(d.out, "   ✓ "+format+"\n", a...)
}
func (d *Demo) no(format string, a ...any) {
	fmt.Fprintf(d.out, "   ✗ "+format+"\n", a...)
}
func (d *Demo) unexpected(format string, a ...any) {
	d.failed = true
	fmt.Fprintf(d.out, "   !! unexpected: "+format+"\n", a...)
}

// Run is the walk-through: the emulator started on listen, a ready config
// written, then each step against it. The error stops the walk-through;
// a step that misbehaves is said and marks the demo Failed.
func (d *Demo) Run(ctx context.Context, listen string) error {
	srv, err := emulator.Start(ctx, emulator.Options{Listen: listen, HTTPListen: "-", IMAPListen: "127.0.0.1:0",
		GmailIMAPListen: "127.0.0.1:0", Dir: filepath.Join(d.dir, "emulator")})
	if err != nil {
		return err
	}
	d.srv = srv
	context.AfterFunc(ctx, func() { _ = srv.Close() })
	cfgPath := filepath.Join(d.dir, "mailgate.yaml")
	if err := d.writeConfig(cfgPath); err != nil {
		return err
	}
	a, err := d.open(ctx, cfgPath)
	if err != nil {
		return err
	}
	defer func() {
		a.Close()
		a.Store().Close()
	}()
	mgr := a.Tokens()
	secretP, _ := a.OAuthProfile("emulator-secret")
	certP, _ := a.OAuthProfile("emulator-cert")
	if secretP == nil || certP == nil || certP.Certificate == nil {
		return errors.New("the emulator's config lacks its profiles")
	}
	forms, _ := a.Config().Mailbox("forms")

	fmt.Fprintln(d.out, "mailgate demo — no tenant needed: every step talks to the built-in Entra ID emulator,")
	fmt.Fprintln(d.out, "which answers as Microsoft's token service and Exchange Online do (errors included).")
	d.step(1, "Entra ID emulator")
	d.ok("serving %s, tenant %s (%s)", srv.URL(), emulator.DemoTenantID, emulator.DemoDomain)
	d.ok("app %s registered with a client secret and a certificate", emulator.DemoAppID)

	d.step(2, "Client credentials with a client secret (profile emulator-secret)")
	tok, err := mgr.Token(ctx, secretP, nil)
	if err != nil {
		d.unexpected("%v", err)
	} else {
		d.describe(tok)
		before := srv.TokenRequests()
		if _, err := mgr.Token(ctx, secretP, nil); err != nil {
			d.unexpected("%v", err)
		} else if srv.TokenRequests() == before {
			d.ok("asked again: answered from the encrypted token cache, no new request to Entra ID")
		} else {
			d.unexpected("the second request went to the token endpoint")
		}
	}

	d.step(3, "Client credentials with a certificate (signed JWT client assertion, PS256 + x5t#S256)")
	tp := oauth.Thumbprints(certP.Certificate.Cert)
	d.ok("certificate thumbprint %s (as the Azure portal shows it)", tp.SHA1)
	var certTok *oauth.Token
	if certTok, err = mgr.Token(ctx, certP, nil); err != nil {
		d.unexpected("%v", err)
	} else {
		d.describe(certTok)
	}

	d.login(ctx, a, forms, certP, certTok != nil)
	d.refusal(ctx, mgr, secretP)

	if err := d.mail(ctx, a); err != nil {
		d.unexpected("%v", err)
	}
	if err := d.workspace(ctx, a); err != nil {
		d.unexpected("%v", err)
	}

	fmt.Fprintf(d.out, "\nA ready config for these profiles is in %s. Try, while this runs:\n", cfgPath)
	fmt.Fprintf(d.out, "   mailgate token emulator-secret --config %s\n", cfgPath)
	fmt.Fprintf(d.out, "   mailgate test forms --config %s\n", cfgPath)
	fmt.Fprintf(d.out, "   mailgate doctor emulator-cert --config %s     (what the token carries against what forms needs)\n", cfgPath)
	fmt.Fprintf(d.out, "   mailgate run --once --config %s            (new mail: none yet, the ledger remembers)\n", cfgPath)
	fmt.Fprintf(d.out, "   mailgate send --sender noreply --to %s --config %s < some.eml\n", emulator.DemoSharedMailbox, cfgPath)
	fmt.Fprintf(d.out, "   mailgate login emulator-device --device --config %s   (user %s, password %s)\n",
		cfgPath, emulator.DemoUser, emulator.DemoUserPassword)
	fmt.Fprintf(d.out, "   mailgate token google-workspace --subject bob@%s --config %s   (the service account acting for another user)\n",
		emulator.GoogleDomain, cfgPath)
	return nil
}

// describe prints what the resource will see in a token, never the token.
func (d *Demo) describe(tok *oauth.Token) {
	c, err := d.srv.VerifyAccessToken(tok.AccessToken)
	if err != nil {
		d.unexpected("the token does not verify: %v", err)
		return
	}
	what := "app-only, roles " + strings.Join(c.Roles, " ")
	if c.Idtyp != "app" {
		what = "user " + c.Upn + ", scopes " + c.Scp
	}
	d.ok("access token for %s, %s, valid for %d min (the token itself is never printed here)",
		c.Aud, what, int(time.Until(tok.Expiry).Minutes()+0.5))
}

// writeConfig writes the demo's config at cfgPath: the emulator's
// profiles, then the demo's mailboxes, sinks and sender.
func (d *Demo) writeConfig(cfgPath string) error {
	imapHost, imapPort, _ := net.SplitHostPort(d.srv.IMAPAddr())
	cfg := string(d.srv.ProfilesYAML()) + fmt.Sprintf(`
# The demo's mailboxes and sender: forms over the emulator's Exchange IMAP
# service (XOAUTH2, app-only token from the certificate), invoices and the
# sender over its Graph mail API.
mailboxes:
  - name: forms
    protocol: imap
    host: %[5]s
    port: %[6]s
    security: tls
    tls_ca: %[7]s
    sasl: xoauth2
    username: %[2]s
    profile: emulator-cert
    mode: idle
    after: seen
    sink: inbox
  # invoices are kept in mailgate's own store: the console lists them and
  # serves each as .eml
  - name: invoices
    protocol: graph
    endpoint: %[1]s
    username: %[4]s
    profile: emulator-graph
    after: seen
    sink: kept
  # workspace: alice's Gmail (Google Workspace) over the emulator's Gmail
  # IMAP service, with a token the google-workspace service account gets
  # for her (domain-wide delegation: no password, no sign-in)
%[8]s    mode: idle
sinks:
  - {name: inbox, type: maildir, path: ./inbox}
  - {name: kept, type: store}
  - {name: gmail-inbox, type: maildir, path: ./gmail-inbox}
senders:
  - name: noreply
    protocol: graph
    endpoint: %[1]s
    username: %[3]s
    profile: emulator-graph
    allowed_from: [%[3]s]
`, d.srv.URL(), emulator.DemoSharedMailbox, emulator.DemoSenderMailbox, emulator.DemoInvoicesMailbox,
		imapHost, imapPort, d.srv.CAFile(), d.srv.GmailMailboxYAML("workspace", workspaceUser, "gmail-inbox"))
	return os.WriteFile(cfgPath, []byte(cfg), 0o600)
}

// open opens the demo's store and the App of its config, as serve will.
func (d *Demo) open(ctx context.Context, cfgPath string) (*app.App, error) {
	cfg, err := config.Load(cfgPath, d.getenv)
	if err != nil {
		return nil, err
	}
	key, err := store.LoadKey(filepath.Join(d.dir, "mailgate.key"), d.getenv)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(d.dir, "mailgate.db"), &store.Options{Key: key})
	if err != nil {
		return nil, err
	}
	a, err := app.Open(ctx, cfg, st, &app.Options{Getenv: d.getenv})
	if err != nil {
		st.Close()
		return nil, err
	}
	return a, nil
}

// login is step 4: the certificate's token against Exchange's mailbox
// rule, an IMAP login (as mailbox forms, but to each mailbox) that works
// for the mailbox the app was granted and is refused, with the advice, for
// one it was not. Without a token (step 3 failed) there is nothing to try.
func (d *Demo) login(ctx context.Context, a *app.App, forms *config.Mailbox, certP *oauth.Profile, haveToken bool) {
	d.step(4, "Using the token: an IMAP login to Exchange (XOAUTH2, user=MAILBOX), under Exchange Online's mailbox rule")
	if haveToken {
		for _, mb := range []string{emulator.DemoSharedMailbox, emulator.DemoRestrictedMailbox} {
			login := *forms
			login.Username = mb
			err := a.Login(ctx, &login)
			switch {
			case err == nil:
				if mb == emulator.DemoRestrictedMailbox {
					d.unexpected("%s opened although the app was never granted it", mb)
					continue
				}
				d.ok("%s: AUTHENTICATE XOAUTH2 accepted, INBOX selected", mb)
			case mb == emulator.DemoSharedMailbox:
				d.unexpected("%s refused: %v", mb, err)
			default:
				d.no("%s: Exchange answers only \"NO AUTHENTICATE failed.\"; mailgate says what to check:", mb)
				for _, l := range app.MailboxAdvice(&config.Mailbox{Protocol: "imap", Username: mb}, certP, err) {
					fmt.Fprintf(d.out, "     %s\n", l)
				}
			}
		}
	}
}

// refusal is step 5: Entra ID refuses a secret's ID pasted as its value,
// and mailgate says what it means and what to change.
func (d *Demo) refusal(ctx context.Context, mgr *oauth.Manager, secretP *oauth.Profile) {
	d.step(5, "When Entra ID says no: the secret's ID pasted instead of its value")
	wrong := *secretP
	wrong.Name = "pasted-secret-id"
	wrong.ClientSecret = emulator.DemoAppSecretID
	if _, err := mgr.Token(ctx, &wrong, nil); err == nil {
		d.unexpected("the token endpoint accepted a secret ID")
	} else if advice := app.TokenAdvice(err, &wrong); len(advice) > 0 {
		d.no("%s", advice[0])
		for _, l := range advice[1:] {
			fmt.Fprintf(d.out, "     %s\n", l)
		}
	} else {
		d.unexpected("no explanation for %v", err)
	}
}

// mail shows the agent at work on the emulator's Exchange IMAP service:
// sample mail delivered to a maildir exactly once and marked \Seen, then a
// reply sent through Graph.
func (d *Demo) mail(ctx context.Context, a *app.App) error {
	d.step(6, "Reading a mailbox: IMAP (XOAUTH2, the certificate's token) → maildir, exactly once, then \\Seen")
	for i, subj := range []string{"Order 1001", "Invoice 2026-117", "Form: leave request", "Delivery note", "Form: expense claim"} {
		raw := fmt.Sprintf("From: customer%d@fabrikam.example\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <demo-%d@fabrikam.example>\r\nDate: Mon, 23 Nov 2026 09:%02d:00 +0000\r\n\r\nSample message %d for the mailgate demo.\r\n",
			i, emulator.DemoSharedMailbox, subj, i, i, i)
		if _, err := d.srv.IMAPDeliver(emulator.DemoSharedMailbox, []byte(raw)); err != nil {
			return err
		}
	}
	inbox := filepath.Join(d.dir, "inbox")
	run := func() (app.Result, error) {
		rs, err := a.RunOnce(ctx, "forms", nil)
		if err != nil {
			return app.Result{}, err
		}
		return rs[0], rs[0].Err
	}
	s, err := run()
	if err != nil {
		return err
	}
	if n, unseen, err := d.srv.IMAPStatus(emulator.DemoSharedMailbox, "INBOX"); err != nil || unseen != 0 {
		d.unexpected("after the run the server has %d of %d messages unread (%v)", unseen, n, err)
	}
	d.ok("%d messages from %s delivered to %s, then flagged \\Seen on the server", s.Delivered, emulator.DemoSharedMailbox, filepath.Join(inbox, "new"))
	s, err = run()
	if err != nil {
		return err
	}
	if s.Delivered != 0 {
		d.unexpected("a second run delivered %d again", s.Delivered)
	} else {
		d.ok("a second run delivers nothing: the delivery ledger knows every message")
	}
	snd, _ := a.Config().Sender("noreply")
	gs, err := a.GraphSender(snd)
	if err != nil {
		return err
	}
	gc := gs.Client
	d.step(7, "Sending: the original MIME through Graph sendMail as "+emulator.DemoSenderMailbox)
	reply := "From: " + emulator.DemoSenderMailbox + "\r\nTo: " + emulator.DemoSharedMailbox + "\r\nSubject: Re: Order 1001\r\n\r\nReceived, thank you.\r\n"
	if err := gc.SendMIME(ctx, emulator.DemoSenderMailbox, []byte(reply)); err != nil {
		return err
	}
	d.ok("sent; a copy is in Sent Items (%d) and it arrived in %s", len(d.srv.GraphMessages(emulator.DemoSenderMailbox, "sentitems")), emulator.DemoSharedMailbox)
	return nil
}

// workspaceUser is the Google Workspace user whose Gmail the demo reads.
const workspaceUser = "alice@" + emulator.GoogleDomain

// workspace is step 8: alice's Gmail read through the google-workspace
// service account (one token for her, from the key, no sign-in), exactly
// once; then a user outside the delegation refused, with the Admin
// console's fix.
func (d *Demo) workspace(ctx context.Context, a *app.App) error {
	d.step(8, "Google Workspace: a service account reads "+workspaceUser+"'s Gmail (JWT bearer, domain-wide delegation, XOAUTH2)")
	for i, subj := range []string{"Quarterly report", "Supplier contract", "Team offsite"} {
		raw := fmt.Sprintf("From: colleague%[1]d@%[2]s\r\nTo: %[3]s\r\nSubject: %[4]s\r\nMessage-ID: <demo-gmail-%[1]d@%[2]s>\r\n\r\nSample Gmail message %[1]d for the mailgate demo.\r\n",
			i, emulator.GoogleDomain, workspaceUser, subj)
		if _, err := d.srv.GmailDeliver(workspaceUser, []byte(raw)); err != nil {
			return err
		}
	}
	rs, err := a.RunOnce(ctx, "workspace", nil)
	if err != nil {
		return err
	}
	if rs[0].Err != nil {
		return rs[0].Err
	}
	if again, err := a.RunOnce(ctx, "workspace", nil); err != nil || again[0].Err != nil || again[0].Delivered != 0 {
		d.unexpected("a second run of workspace: %+v %v", again, err)
	}
	d.ok("%d messages from %s delivered to %s, exactly once, with a token the service account %s got for her from its key (no password, no sign-in, no refresh token)",
		rs[0].Delivered, workspaceUser, filepath.Join(d.dir, "gmail-inbox", "new"), emulator.GoogleServiceAccountEmail)
	d.ok("%d token request for %s: the token is cached per user, and the same key serves every user of %s",
		d.srv.GoogleTokenRequests(workspaceUser), workspaceUser, emulator.GoogleDomain)
	p, _ := a.OAuthProfile("google-workspace")
	if p == nil {
		return errors.New("the emulator's config lacks the google-workspace profile")
	}
	outside := p.ForSubject(emulator.GoogleOutsideUser)
	if _, err := a.Tokens().Token(ctx, outside, nil); err == nil {
		d.unexpected("a token for %s, who is outside the delegation", emulator.GoogleOutsideUser)
	} else if advice := app.TokenAdvice(err, outside); len(advice) > 0 {
		d.no("%s is outside the delegation; Google says unauthorized_client, mailgate says where to grant it:", emulator.GoogleOutsideUser)
		for _, l := range advice {
			fmt.Fprintf(d.out, "     %s\n", l)
		}
	} else {
		d.unexpected("no explanation for %v", err)
	}
	return nil
}
