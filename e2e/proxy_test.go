package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailgate/mailgate/internal/dovecot"
	"github.com/mailgate/mailgate/internal/emulator"
	"github.com/mailgate/mailgate/internal/testcert"
)

// proxyConfig appends listeners in front of dv (STARTTLS with the test
// CA's certificate) and accounts: scanner and fetcher read forms and
// invoices, sender sends as noreply.
func proxyConfig(t *testing.T, dir string, dv *dovecot.Server) {
	t.Helper()
	// ca.pem, a test CA, signed legacy.crt (for 127.0.0.1 and localhost)
	c := testcert.Make(t, testcert.Options{CA: true})
	c.WriteFiles(t, dir, "legacy")
	c.WriteRoot(t, filepath.Join(dir, "ca.pem"))
	up := func(proto, security string) string {
		host, port, _ := strings.Cut(dv.Addr(proto), ":")
		return fmt.Sprintf("{host: %s, port: %s, security: %s, tls_ca: '%s'}", host, port, security, dv.CAFile())
	}
	appendConfig(t, dir, fmt.Sprintf(`listeners:
  - {name: legacy-imap, protocol: imap, listen: '127.0.0.1:0', security: starttls, tls_cert: legacy.crt, tls_key: legacy.key, upstream: %s}
  - {name: legacy-pop3, protocol: pop3, listen: '127.0.0.1:0', security: starttls, tls_cert: legacy.crt, tls_key: legacy.key, upstream: %s}
  - {name: legacy-smtp, protocol: smtp, listen: '127.0.0.1:0', security: starttls, tls_cert: legacy.crt, tls_key: legacy.key, upstream: %s}
accounts:
  - {username: scanner, password: 'scan pw', profile: emulator-secret, mailbox: %s, listeners: [legacy-imap, legacy-pop3]}
  - {username: fetcher, password: fetchpw, profile: emulator-secret, mailbox: %s, listeners: [legacy-imap, legacy-pop3]}
  - {username: sender, password: sendpw, profile: emulator-secret, mailbox: %s, listeners: [legacy-smtp], allowed_from: [%s]}
`, up("imaps", "tls"), up("pop3s", "tls"), up("submission", "starttls"),
		emulator.DemoSharedMailbox, emulator.DemoInvoicesMailbox, emulator.DemoSenderMailbox, emulator.DemoSenderMailbox))
}

// listeners waits for serve's "proxy: listening" lines and returns the
// address of each listener.
func listeners(t *testing.T, s *runningServe, n int) map[string]string {
	t.Helper()
	re := regexp.MustCompile(`proxy: listening" listener=(\S+) protocol=\S+ addr=(\S+)`)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		out := map[string]string{}
		for _, m := range re.FindAllStringSubmatch(s.logs.String(), -1) {
			out[m[1]] = m[2]
		}
		if len(out) >= n {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start %d listeners:\n%s", n, s.logs.String())
		}
	}
}

// fetchmail polls addr with protocol as user (STARTTLS, the test CA),
// delivering each message into its own file under out.
func fetchmail(t *testing.T, dir, addr, protocol, user, password, out string) {
	t.Helper()
	requireTool(t, "/usr/bin/fetchmail")
	// the certificate names localhost (fetchmail checks the name)
	_, port, _ := strings.Cut(addr, ":")
	host := "localhost"
	if err := os.MkdirAll(out, 0o700); err != nil {
		t.Fatal(err)
	}
	mda := filepath.Join(dir, "deliver.sh")
	if err := os.WriteFile(mda, []byte("#!/bin/sh\nf=$(mktemp \"$1/m.XXXXXXXX\") && cat > \"$f\"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	rc := filepath.Join(dir, "fetchmailrc-"+protocol)
	text := fmt.Sprintf("set no syslog\nset invisible\npoll %s service %s protocol %s\n  user \"%s\" password \"%s\" is \"local\" here\n  sslproto 'tls1.2+' sslcertck sslcertfile '%s'\n  keep fetchall no rewrite mda \"%s %s\"\n",
		host, port, protocol, user, password, filepath.Join(dir, "ca.pem"), mda, out)
	if err := os.WriteFile(rc, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), "/usr/bin/fetchmail", "-f", rc, "-N", "--nosyslog", "-v", "--pidfile", filepath.Join(dir, "fetchmail-"+protocol+".pid"),
		"--idfile", filepath.Join(dir, "fetchids-"+protocol))
	cmd.Env = []string{"HOME=" + dir, "PATH=/usr/bin:/bin", "FETCHMAILHOME=" + dir}
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("fetchmail %s: %v\n%s", protocol, err, tail(string(b), 3000))
	}
}

// sameMessages checks that the files under out are the n seeded messages
// of mailbox, each once, byte for byte (line ends as the MDA gets them:
// LF).
func sameMessages(t *testing.T, out, mailbox string, n, size int) {
	t.Helper()
	want := map[string]int{}
	for i := 1; i <= n; i++ {
		want[string(bytes.ReplaceAll(dovecot.SeedBody(mailbox, i, size), []byte("\r\n"), []byte("\n")))]++
	}
	files, _ := os.ReadDir(out)
	if len(files) != n {
		t.Fatalf("%d messages fetched, want %d", len(files), n)
	}
	for _, f := range files {
		b, _ := os.ReadFile(filepath.Join(out, f.Name()))
		if want[string(b)] != 1 {
			t.Fatalf("%s is not one of the seeded messages byte for byte (or came twice):\n%q", f.Name(), b[:min(len(b), 400)])
		}
		want[string(b)]--
	}
}

// TestProxyFetchmail: Debian's fetchmail, which knows no OAuth, polls the
// IMAP and then the POP3 listener of `mailgate serve` with a plain
// password over STARTTLS and fetches 300 messages byte for byte from the
// real Dovecot, which saw only XOAUTH2 logins.
func TestProxyFetchmail(t *testing.T) {
	const n, size = 300, 3000
	srv, dir := emulatorConfig(t, "")
	dv := dovecot.StartT(t, dovecot.Options{CheckURL: srv.HTTPURL()})
	for _, mb := range []string{emulator.DemoSharedMailbox, emulator.DemoInvoicesMailbox} {
		if err := dv.Seed(mb, n, size); err != nil {
			t.Fatal(err)
		}
	}
	proxyConfig(t, dir, dv)
	s := startServe(t, dir)
	ls := listeners(t, s, 3)
	fetchmail(t, dir, ls["legacy-imap"], "IMAP", "scanner", "scan pw", filepath.Join(dir, "imap"))
	sameMessages(t, filepath.Join(dir, "imap"), emulator.DemoSharedMailbox, n, size)
	fetchmail(t, dir, ls["legacy-pop3"], "POP3", "fetcher", "fetchpw", filepath.Join(dir, "pop3"))
	sameMessages(t, filepath.Join(dir, "pop3"), emulator.DemoInvoicesMailbox, n, size)
	if strings.Contains(s.logs.String(), "Bearer") {
		t.Error("serve's log shows a token")
	}
}

// imapFetchAll logs in to the IMAP listener at addr with a password and
// fetches every message of INBOX.
func imapFetchAll(addr, user, password string) ([][]byte, error) {
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.Login(user, password).Wait(); err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	if _, err := c.Select("INBOX", &goimap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		return nil, fmt.Errorf("select: %w", err)
	}
	var all goimap.UIDSet
	all.AddRange(1, 0)
	bufs, err := c.Fetch(all, &goimap.FetchOptions{BodySection: []*goimap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	var out [][]byte
	for _, b := range bufs {
		for _, s := range b.BodySection {
			out = append(out, s.Bytes)
		}
	}
	_ = c.Logout().Wait()
	return out, nil
}

// TestProxyLegacyClients: Python's imaplib, poplib and smtplib log in
// over STARTTLS with every password mechanism; mail sent arrives byte for
// byte and a From outside allowed_from is refused with 550 and never
// reaches the server; a wrong password is refused without a token
// request; 20 concurrent clients each fetch 100 messages with one token
// request in all; /metrics counts it; `mailgate test ACCOUNT` logs in
// upstream.
func TestProxyLegacyClients(t *testing.T) {
	requireTool(t, "/usr/bin/python3")
	const n, size = 100, 2000
	srv, dir := emulatorConfig(t, "")
	dv := dovecot.StartT(t, dovecot.Options{CheckURL: srv.HTTPURL(), Relay: true})
	if err := dv.Seed(emulator.DemoSharedMailbox, n, size); err != nil {
		t.Fatal(err)
	}
	proxyConfig(t, dir, dv)
	adminAdd(t, dir, "a long enough password")
	tok := mailgate(t, t.Context(), dir, "admin", "token", "ops")
	s := startServe(t, dir)
	ls := listeners(t, s, 3)

	before := srv.TokenRequests()
	if _, err := imapFetchAll(ls["legacy-imap"], "scanner", "wrong"); err == nil || !strings.Contains(err.Error(), "AUTHENTICATIONFAILED") {
		t.Fatalf("wrong password: %v", err)
	}
	if got := srv.TokenRequests(); got != before {
		t.Fatalf("a wrong password asked the token endpoint (%d requests)", got-before)
	}

	// 20 clients at once: one token request serves them all
	want := map[string]bool{}
	for i := 1; i <= n; i++ {
		want[string(dovecot.SeedBody(emulator.DemoSharedMailbox, i, size))] = true
	}
	errs := make(chan error, 20)
	for range 20 {
		go func() {
			msgs, err := imapFetchAll(ls["legacy-imap"], "scanner", "scan pw")
			if err == nil && len(msgs) != n {
				err = fmt.Errorf("%d messages, want %d", len(msgs), n)
			}
			for _, m := range msgs {
				if err == nil && !want[string(m)] {
					err = fmt.Errorf("a message differs from the seeded ones: %q", m[:min(len(m), 200)])
				}
			}
			errs <- err
		}()
	}
	for range 20 {
		if err := <-errs; err != nil {
			t.Fatalf("%v\n%s", err, tail(s.logs.String(), 2000))
		}
	}
	if got := srv.TokenRequests() - before; got != 1 {
		t.Errorf("20 concurrent logins made %d token requests, want 1", got)
	}

	port := func(name string) string { _, p, _ := strings.Cut(ls[name], ":"); return p }
	cmd := exec.CommandContext(t.Context(), "/usr/bin/python3", filepath.Join("testdata", "legacy_clients.py"), filepath.Join(dir, "ca.pem"),
		port("legacy-imap"), port("legacy-pop3"), port("legacy-smtp"), emulator.DemoSenderMailbox, emulator.DemoInvoicesMailbox)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s\n%s", err, out, tail(s.logs.String(), 3000))
	}
	for _, line := range []string{"imap wrong password refused", "imap LOGIN ok", "imap AUTHENTICATE PLAIN ok", "pop3 USER ok", "pop3 AUTH PLAIN ok",
		"smtp PLAIN plain sent", "smtp LOGIN login sent", "smtp PLAIN envelope refused 550 "} {
		if !strings.Contains(string(out), line) {
			t.Errorf("python's output lacks %q:\n%s", line, out)
		}
	}
	// the two sent messages arrive byte for byte (Dovecot's maildir has LF
	// line ends), the refused one never
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		got, _ := dv.Messages(emulator.DemoInvoicesMailbox, "")
		if len(got) >= 2 {
			seen := 0
			for _, b := range got {
				for _, subj := range []string{"plain", "login"} {
					sent := fmt.Sprintf("From: %s\nTo: %s\nSubject: %s\nMessage-ID: <%s@legacy.test>\n\nscanned page %s\n",
						emulator.DemoSenderMailbox, emulator.DemoInvoicesMailbox, subj, subj, subj)
					if bytes.HasSuffix(b, []byte(sent)) {
						seen++
					}
				}
				if bytes.Contains(b, []byte("boss@contoso.example")) {
					t.Error("a message refused for its From arrived")
				}
			}
			if seen != 2 || len(got) != 2 {
				t.Fatalf("%d messages arrived, %d byte for byte", len(got), seen)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d messages arrived", len(got))
		}
	}

	_, metrics := s.api(t, "GET", "/metrics", strings.TrimSpace(tok.stdout), "")
	for _, m := range []string{`mailgate_proxy_logins_total{listener="legacy-imap",result="ok"} 22`,
		`mailgate_proxy_logins_total{listener="legacy-imap",result="bad_password"} 2`, `mailgate_proxy_sessions{listener="legacy-imap"}`} {
		if !strings.Contains(metrics, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	// an account made through the API logs in once serve has reloaded (one
	// attempt after the reload: failures before it would count towards the
	// throttle)
	reloads := strings.Count(s.logs.String(), "mailgate reloaded")
	if code, body := s.api(t, "POST", "/api/v1/accounts", strings.TrimSpace(tok.stdout),
		`{"username":"printer","password":"printer pw","profile":"emulator-secret","mailbox":"`+emulator.DemoSharedMailbox+`","listeners":["legacy-imap"]}`); code != 201 {
		t.Fatalf("POST /api/v1/accounts: %d %s", code, body)
	}
	for deadline := time.Now().Add(30 * time.Second); strings.Count(s.logs.String(), "mailgate reloaded") == reloads; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not reload after the new account:\n%s", tail(s.logs.String(), 2000))
		}
	}
	if msgs, err := imapFetchAll(ls["legacy-imap"], "printer", "printer pw"); err != nil || len(msgs) != n {
		t.Fatalf("the console account: %d messages, %v\n%s", len(msgs), err, tail(s.logs.String(), 2000))
	}
	r := mailgate(t, t.Context(), dir, "test", "scanner")
	if r.code != 0 || !strings.Contains(r.stdout, "listener legacy-imap: XOAUTH2 as "+emulator.DemoSharedMailbox) || !strings.Contains(r.stdout, "listener legacy-pop3") {
		t.Errorf("test scanner: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// doctor ACCOUNT: the token against the listener's needs, the
	// listener's certificate (the test one lasts a day: a warning), the
	// upstream login
	r = mailgate(t, t.Context(), dir, "doctor", "sender")
	for _, want := range []string{"doctor: proxy account sender", "listener legacy-smtp: its certificate expires on", "renew it before then",
		"listener legacy-smtp: XOAUTH2 as " + emulator.DemoSenderMailbox} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("doctor sender lacks %q: exit %d\n%s%s", want, r.code, r.stdout, r.stderr)
		}
	}
	if strings.Contains(s.logs.String(), "scan pw") || strings.Contains(s.logs.String(), "Bearer") {
		t.Error("serve's log shows a password or a token")
	}
}
