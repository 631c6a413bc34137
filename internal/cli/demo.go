package cli

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mailgate/mailgate/internal/agent"
	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/emulator"
	"github.com/mailgate/mailgate/internal/graph"
	"github.com/mailgate/mailgate/internal/mailbox"
	"github.com/mailgate/mailgate/internal/oauth"
	"github.com/mailgate/mailgate/internal/sink"
	"github.com/mailgate/mailgate/internal/store"
)

func init() {
	register(&command{
		name:    "demo",
		summary: "run mailgate's main job against the built-in Entra ID emulator (no tenant needed)",
		run:     runDemo,
	})
}

// runDemo starts the emulator and walks through what mailgate does with a
// tenant: tokens with a secret and a certificate, the cache, a token used
// against Exchange's mailbox rule, and an error explained.
func runDemo(ctx context.Context, env *Env, args []string) int {
	fs := newFlagSet(env, "demo", "")
	dir := fs.String("dir", "", "keep the emulator's files, the store and a ready mailgate.yaml in DIR (default: a temporary directory removed at exit)")
	listen := fs.String("listen", "127.0.0.1:0", "HTTPS listen address of the emulator")
	consoleAddr := fs.String("console", "127.0.0.1:8025", "listen address of the console after the walk-through (a free port if taken)")
	once := fs.Bool("once", false, "exit after the walk-through instead of serving the emulator until Ctrl-C")
	_ = fs.String("config", "", "ignored: the demo needs no config")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintf(env.Err, "mailgate demo: unexpected argument %q\n", pos[0])
		return ExitUsage
	}
	d := *dir
	if d == "" {
		tmp, err := os.MkdirTemp("", "mailgate-demo-")
		if err != nil {
			fmt.Fprintf(env.Err, "mailgate demo: %v\n", err)
			return ExitFailed
		}
		defer os.RemoveAll(tmp)
		d = tmp
	} else if err := os.MkdirAll(d, 0o700); err != nil {
		fmt.Fprintf(env.Err, "mailgate demo: %v\n", err)
		return ExitFailed
	}
	demo := &demoRun{env: env, dir: d, out: env.Err}
	if moved, err := setAsidePreviousRun(d); err != nil {
		fmt.Fprintf(env.Err, "mailgate demo: %v\n", err)
		return ExitFailed
	} else if moved != "" {
		fmt.Fprintf(env.Err, "mailgate demo: the store and inbox of the previous run in %s were moved to %s (they belong to its emulator)\n", d, moved)
	}
	if err := demo.run(ctx, *listen); err != nil {
		fmt.Fprintf(env.Err, "mailgate demo: %v\n", err)
		return ExitFailed
	}
	if demo.failed {
		fmt.Fprintln(env.Err, "mailgate demo: a step did not behave as expected (see above)")
		return ExitFailed
	}
	if *once {
		return ExitOK
	}
	return demo.serve(ctx, *consoleAddr)
}

// previousRun is where setAsidePreviousRun moves an earlier run's state.
const previousRun = "previous-run"

// setAsidePreviousRun moves the store and the inbox of an earlier demo run
// in dir to dir/previous-run (replacing what an even earlier run left
// there) and returns that path, or "" when dir holds no earlier run. They
// belong to the emulator of that run, which is gone: its signing keys made
// the cached tokens (which the profile settings alone cannot tell apart
// when the demo listens on the same port again), and its mailboxes the
// UIDs that the delivery ledger remembers as delivered.
func setAsidePreviousRun(dir string) (string, error) {
	names := []string{"mailgate.db", "mailgate.db-wal", "mailgate.db-shm", "inbox"}
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

// serve runs `mailgate serve` on the demo's config, with the console on
// addr and a fresh administrator password, after delivering new sample
// mail for the agent to pick up.
func (d *demoRun) serve(ctx context.Context, addr string) int {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		fmt.Fprintf(d.out, "mailgate demo: console: %v\n", err)
		return ExitFailed
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
		fmt.Fprintf(d.out, "mailgate demo: %v\n", err)
		return ExitFailed
	}
	key, err := store.LoadKey(filepath.Join(d.dir, "mailgate.key"), d.env.Getenv)
	if err != nil {
		fmt.Fprintf(d.out, "mailgate demo: %v\n", err)
		return ExitFailed
	}
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(d.dir, "mailgate.db"), &store.Options{Key: key})
	if err != nil {
		fmt.Fprintf(d.out, "mailgate demo: %v\n", err)
		return ExitFailed
	}
	password := rand.Text()
	err = st.SetAdmin(ctx, "admin", password)
	st.Close()
	if err != nil {
		fmt.Fprintf(d.out, "mailgate demo: %v\n", err)
		return ExitFailed
	}
	for i, subj := range []string{"Expense form #1041", "Expense form #1042", "Leave request: A. Vance"} {
		raw := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <demo-live-%d-%s@contoso.example>\r\n\r\nSubmitted from the offline forms app.\r\n",
			emulator.DemoUser, emulator.DemoSharedMailbox, subj, i, rand.Text()[:8])
		if _, err := d.srv.IMAPDeliver(emulator.DemoSharedMailbox, []byte(raw)); err != nil {
			fmt.Fprintf(d.out, "mailgate demo: %v\n", err)
			return ExitFailed
		}
	}
	for i := range 2 {
		raw := fmt.Sprintf("From: billing@fabrikam.example\r\nTo: %s\r\nSubject: Invoice 2026-%03d\r\nMessage-ID: <demo-invoice-%d-%s@fabrikam.example>\r\n\r\nPlease find invoice 2026-%03d.\r\n",
			emulator.DemoInvoicesMailbox, 200+i, i, rand.Text()[:8], 200+i)
		if _, err := d.srv.GraphDeliver(emulator.DemoInvoicesMailbox, []byte(raw)); err != nil {
			fmt.Fprintf(d.out, "mailgate demo: %v\n", err)
			return ExitFailed
		}
	}
	d.step(8, "The daemon and its console (mailgate serve)")
	_, unseen, _ := d.srv.IMAPStatus(emulator.DemoSharedMailbox, "INBOX")
	d.ok("%d new messages wait in %s (IMAP); the agent delivers them into %s, then waits in IMAP IDLE for more", unseen, emulator.DemoSharedMailbox, filepath.Join(d.dir, "inbox"))
	d.ok("2 invoices wait in %s; the agent keeps them in mailgate's store (the console's Messages page)", emulator.DemoInvoicesMailbox)
	fmt.Fprintf(d.out, "\n   Console: http://%s/\n   Sign in as: admin\n   Password:   %s   (new for every demo run)\n\n", addr, password)
	fmt.Fprintln(d.out, "The emulator and the daemon keep running for you to try the console and the commands above; Ctrl-C stops them.")
	return runServe(ctx, d.env, []string{"--config", cfgPath})
}

type demoRun struct {
	env    *Env
	dir    string
	out    io.Writer
	failed bool
	srv    *emulator.Server
}

func (d *demoRun) step(n int, title string) { fmt.Fprintf(d.out, "\n%d. %s\n", n, title) }
func (d *demoRun) ok(format string, a ...any) {
	fmt.Fprintf(d.out, "   ✓ "+format+"\n", a...)
}
func (d *demoRun) no(format string, a ...any) {
	fmt.Fprintf(d.out, "   ✗ "+format+"\n", a...)
}
func (d *demoRun) unexpected(format string, a ...any) {
	d.failed = true
	fmt.Fprintf(d.out, "   !! unexpected: "+format+"\n", a...)
}

func (d *demoRun) run(ctx context.Context, listen string) error {
	srv, err := emulator.Start(ctx, emulator.Options{Listen: listen, HTTPListen: "-", IMAPListen: "127.0.0.1:0",
		Dir: filepath.Join(d.dir, "emulator")})
	if err != nil {
		return err
	}
	d.srv = srv
	context.AfterFunc(ctx, func() { _ = srv.Close() })
	imapHost, imapPort, _ := net.SplitHostPort(srv.IMAPAddr())
	cfgPath := filepath.Join(d.dir, "mailgate.yaml")
	cfg := string(srv.ConfigYAML()) + fmt.Sprintf(`
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
sinks:
  - {name: inbox, type: maildir, path: ./inbox}
  - {name: kept, type: store}
senders:
  - name: noreply
    protocol: graph
    endpoint: %[1]s
    username: %[3]s
    profile: emulator-graph
    allowed_from: [%[3]s]
`, srv.URL(), emulator.DemoSharedMailbox, emulator.DemoSenderMailbox, emulator.DemoInvoicesMailbox,
		imapHost, imapPort, srv.CAFile())
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	key, err := store.LoadKey(filepath.Join(d.dir, "mailgate.key"), d.env.Getenv)
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(d.dir, "mailgate.db"), &store.Options{Key: key})
	if err != nil {
		return err
	}
	defer st.Close()
	mgr := oauth.NewManager(st, &oauth.ManagerOptions{Logger: slog.New(slog.DiscardHandler)})
	client, err := oauth.NewHTTPClient(oauth.HTTPOptions{RootCAs: srv.CertPool()})
	if err != nil {
		return err
	}
	base := oauth.Profile{Provider: "microsoft", Grant: "client_credentials", Tenant: emulator.DemoTenantID,
		ClientID: emulator.DemoAppID, Authority: srv.URL(), HTTPClient: client,
		Scopes: []string{"https://outlook.office365.com/.default"}}

	fmt.Fprintln(d.out, "mailgate demo — no tenant needed: every step talks to the built-in Entra ID emulator,")
	fmt.Fprintln(d.out, "which answers as Microsoft's token service and Exchange Online do (errors included).")
	d.step(1, "Entra ID emulator")
	d.ok("serving %s, tenant %s (%s)", srv.URL(), emulator.DemoTenantID, emulator.DemoDomain)
	d.ok("app %s registered with a client secret and a certificate", emulator.DemoAppID)

	secretP := base
	secretP.Name = "emulator-secret"
	secretP.ClientSecret = emulator.DemoAppSecret
	d.step(2, "Client credentials with a client secret (profile emulator-secret)")
	tok, err := mgr.Token(ctx, &secretP, nil)
	if err != nil {
		d.unexpected("%v", err)
	} else {
		d.describe(tok)
		before := srv.TokenRequests()
		if _, err := mgr.Token(ctx, &secretP, nil); err != nil {
			d.unexpected("%v", err)
		} else if srv.TokenRequests() == before {
			d.ok("asked again: answered from the encrypted token cache, no new request to Entra ID")
		} else {
			d.unexpected("the second request went to the token endpoint")
		}
	}

	certPEM, err1 := os.ReadFile(filepath.Join(srv.Dir(), "app-cert.pem"))
	keyPEM, err2 := os.ReadFile(filepath.Join(srv.Dir(), "app-key.pem"))
	if err1 != nil || err2 != nil {
		return fmt.Errorf("demo certificate: %v %v", err1, err2)
	}
	cert, err := oauth.LoadClientCertificate(certPEM, keyPEM, "")
	if err != nil {
		return err
	}
	certP := base
	certP.Name = "emulator-cert"
	certP.Certificate = cert
	d.step(3, "Client credentials with a certificate (signed JWT client assertion, PS256 + x5t#S256)")
	tp := oauth.Thumbprints(cert.Cert)
	d.ok("certificate thumbprint %s (as the Azure portal shows it)", tp.SHA1)
	var certTok *oauth.Token
	if certTok, err = mgr.Token(ctx, &certP, nil); err != nil {
		d.unexpected("%v", err)
	} else {
		d.describe(certTok)
	}

	d.step(4, "Using the token: an IMAP login to Exchange (XOAUTH2, user=MAILBOX), under Exchange Online's mailbox rule")
	if certTok != nil {
		for _, mb := range []string{emulator.DemoSharedMailbox, emulator.DemoRestrictedMailbox} {
			c, err := d.imapDialer(mb, mgr, &certP).Dial(ctx)
			switch {
			case err == nil:
				c.Close()
				if mb == emulator.DemoRestrictedMailbox {
					d.unexpected("%s opened although the app was never granted it", mb)
					continue
				}
				d.ok("%s: AUTHENTICATE XOAUTH2 accepted, INBOX selected", mb)
			case mb == emulator.DemoSharedMailbox:
				d.unexpected("%s refused: %v", mb, err)
			default:
				d.no("%s: Exchange answers only \"NO AUTHENTICATE failed.\"; mailgate says what to check:", mb)
				for _, l := range diagnose(&config.Mailbox{Protocol: "imap", Username: mb}, &certP, err) {
					fmt.Fprintf(d.out, "     %s\n", l)
				}
			}
		}
	}

	d.step(5, "When Entra ID says no: the secret's ID pasted instead of its value")
	wrong := base
	wrong.Name = "pasted-secret-id"
	wrong.ClientSecret = emulator.DemoAppSecretID
	if _, err := mgr.Token(ctx, &wrong, nil); err == nil {
		d.unexpected("the token endpoint accepted a secret ID")
	} else if ex, ok := oauth.ExplainError(err, &wrong); ok {
		d.no("AADSTS%d: %s", ex.AADSTS, ex.Meaning)
		fmt.Fprintf(d.out, "     fix: %s\n", ex.Fix)
	} else {
		d.unexpected("no explanation for %v", err)
	}

	if err := d.mail(ctx, mgr, st, base, &certP); err != nil {
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
	return nil
}

// describe prints what the resource will see in a token, never the token.
func (d *demoRun) describe(tok *oauth.Token) {
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

// imapDialer opens the demo tenant's mailbox mb on the emulator's Exchange
// IMAP service with p's token.
func (d *demoRun) imapDialer(mb string, mgr *oauth.Manager, p *oauth.Profile) mailbox.Dialer {
	return mailbox.NewIMAP(mailbox.IMAPOptions{Name: "forms", Addr: d.srv.IMAPAddr(), Security: "tls",
		TLSConfig: &tls.Config{RootCAs: d.srv.CertPool(), MinVersion: tls.VersionTLS12}, Username: mb, Mechanism: "xoauth2",
		Bearer: mgr.Bearer(p, nil)})
}

// mail shows the agent at work on the emulator's Exchange IMAP service:
// sample mail delivered to a maildir exactly once and marked \Seen, then a
// reply sent through Graph.
func (d *demoRun) mail(ctx context.Context, mgr *oauth.Manager, st *store.Store, base oauth.Profile, certP *oauth.Profile) error {
	d.step(6, "Reading a mailbox: IMAP (XOAUTH2, the certificate's token) → maildir, exactly once, then \\Seen")
	for i, subj := range []string{"Order 1001", "Invoice 2026-117", "Form: leave request", "Delivery note", "Form: expense claim"} {
		raw := fmt.Sprintf("From: customer%d@fabrikam.example\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <demo-%d@fabrikam.example>\r\nDate: Mon, 23 Nov 2026 09:%02d:00 +0000\r\n\r\nSample message %d for the mailgate demo.\r\n",
			i, emulator.DemoSharedMailbox, subj, i, i, i)
		if _, err := d.srv.IMAPDeliver(emulator.DemoSharedMailbox, []byte(raw)); err != nil {
			return err
		}
	}
	inbox := filepath.Join(d.dir, "inbox")
	md, err := sink.NewMaildir(sink.MaildirOptions{Path: inbox})
	if err != nil {
		return err
	}
	defer md.Close()
	after, _ := mailbox.ParseAfter("seen")
	mb := &agent.Mailbox{Name: "forms", Sink: md, After: after, Dialer: d.imapDialer(emulator.DemoSharedMailbox, mgr, certP)}
	s, err := agent.RunOnce(ctx, mb, st, nil, nil)
	if err != nil {
		return err
	}
	if n, unseen, err := d.srv.IMAPStatus(emulator.DemoSharedMailbox, "INBOX"); err != nil || unseen != 0 {
		d.unexpected("after the run the server has %d of %d messages unread (%v)", unseen, n, err)
	}
	d.ok("%d messages from %s delivered to %s, then flagged \\Seen on the server", s.Delivered, emulator.DemoSharedMailbox, filepath.Join(inbox, "new"))
	s, err = agent.RunOnce(ctx, mb, st, nil, nil)
	if err != nil {
		return err
	}
	if s.Delivered != 0 {
		d.unexpected("a second run delivered %d again", s.Delivered)
	} else {
		d.ok("a second run delivers nothing: the delivery ledger knows every message")
	}
	gp := base
	gp.Name = "emulator-graph"
	gp.ClientSecret = emulator.DemoAppSecret
	gp.Scopes = []string{"https://graph.microsoft.com/.default"}
	gc := graph.New(graph.Options{Endpoint: d.srv.URL(), HTTPClient: gp.HTTPClient, Bearer: mgr.Bearer(&gp, nil)})
	d.step(7, "Sending: the original MIME through Graph sendMail as "+emulator.DemoSenderMailbox)
	reply := "From: " + emulator.DemoSenderMailbox + "\r\nTo: " + emulator.DemoSharedMailbox + "\r\nSubject: Re: Order 1001\r\n\r\nReceived, thank you.\r\n"
	if err := gc.SendMIME(ctx, emulator.DemoSenderMailbox, []byte(reply)); err != nil {
		return err
	}
	d.ok("sent; a copy is in Sent Items (%d) and it arrived in %s", len(d.srv.GraphMessages(emulator.DemoSenderMailbox, "sentitems")), emulator.DemoSharedMailbox)
	return nil
}
