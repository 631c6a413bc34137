package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/dovecot"
	"github.com/mailgate/mailgate/internal/emulator"
	"github.com/mailgate/mailgate/internal/oauth"
	"github.com/mailgate/mailgate/internal/testcert"
)

// testAccounts is an Accounts of hashed passwords.
type testAccounts map[string]struct {
	hash string
	acct *Account
}

func (ta testAccounts) Authenticate(_ context.Context, _, username, password string) (*Account, error) {
	e, ok := ta[username]
	if !CheckPassword(e.hash, password) || !ok {
		return nil, ErrBadCredentials
	}
	return e.acct, nil
}

// recorder keeps the logins.
type recorder struct {
	mu     sync.Mutex
	logins []Login
}

func (r *recorder) LoginResult(_ context.Context, l Login) {
	r.mu.Lock()
	r.logins = append(r.logins, l)
	r.mu.Unlock()
}

func (r *recorder) results() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, l := range r.logins {
		out = append(out, l.Username+":"+l.Result)
	}
	return out
}

// Passwords of the fixture's accounts: one needs quoting (a space, a
// quote and a backslash), one is an atom.
const (
	scannerPassword = `p@ss w"rd\x`
	faxPassword     = "faxpass1"
)

// fixture is the emulator, a real Dovecot and the accounts: scanner and
// fax for the shared mailbox (granted), ceo for a mailbox the app was not
// granted, sender for the mailbox allowed to send.
type fixture struct {
	emu      *emulator.Server
	dv       *dovecot.Server
	accounts testAccounts
	rec      *recorder
	cert     *tls.Config // the listener's certificate
	roots    *x509.CertPool
}

func requireDovecot(t *testing.T) {
	t.Helper()
	if err := dovecot.Available(); err != nil {
		if os.Getenv("MAILGATE_REQUIRE_INTEGRATION") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

func newFixture(t *testing.T, relay bool) *fixture {
	t.Helper()
	requireDovecot(t)
	emu, err := emulator.Start(t.Context(), emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = emu.Close() })
	dv := dovecot.StartT(t, dovecot.Options{CheckURL: emu.HTTPURL(), Relay: relay})
	client, err := oauth.NewHTTPClient(oauth.HTTPOptions{CAFile: emu.CAFile()})
	if err != nil {
		t.Fatal(err)
	}
	p := &oauth.Profile{Name: "exo", Provider: "microsoft", Grant: "client_credentials", Tenant: emulator.DemoTenantID,
		ClientID: emulator.DemoAppID, ClientSecret: emulator.DemoAppSecret, Authority: emu.URL(), HTTPClient: client,
		Scopes: []string{"https://outlook.office365.com/.default"}}
	mgr := oauth.NewManager(oauth.NewMemoryStore(), nil)
	f := &fixture{emu: emu, dv: dv, accounts: testAccounts{}, rec: &recorder{}}
	add := func(user, pass, mailbox string, from ...string) {
		h, err := HashPassword(pass)
		if err != nil {
			t.Fatal(err)
		}
		f.accounts[user] = struct {
			hash string
			acct *Account
		}{h, &Account{Username: user, Mailbox: mailbox, Profile: "exo", Bearer: mgr.Bearer(p, nil), AllowedFrom: from}}
	}
	add("scanner", scannerPassword, emulator.DemoSharedMailbox)
	add("fax", faxPassword, emulator.DemoSharedMailbox)
	add("ceo", "ceopass", emulator.DemoRestrictedMailbox)
	add("sender", "sendpass", emulator.DemoSenderMailbox, emulator.DemoSenderMailbox, "@reports.contoso.example")
	c := testcert.Make(t, testcert.Options{CA: true}) // the listener's, from a test CA
	f.cert, f.roots = c.ServerConfig(), c.Pool()
	return f
}

// listen starts a listener of protocol with security in front of the
// Dovecot service upstream (imaps, pop3s, submission …).
func (f *fixture) listen(t *testing.T, protocol, security, upstream string, opts ...func(*Options)) string {
	t.Helper()
	upSec := "tls"
	if upstream == "submission" || upstream == "imap" || upstream == "pop3" {
		upSec = "starttls"
	}
	o := Options{Name: "test-" + protocol, Protocol: protocol, Security: security, Accounts: f.accounts, Recorder: f.rec,
		Upstream: Upstream{Addr: f.dv.Addr(upstream), Security: upSec, TLSConfig: f.dv.TLSConfig()},
		Explain: func(a *Account, err error) []string {
			return []string{"fix: grant the app " + a.Mailbox + " (explained)"}
		}}
	if security != "none" {
		o.TLSConfig = f.cert
	}
	for _, fn := range opts {
		fn(&o)
	}
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ctx, ln); err != nil {
			t.Error(err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

// conv is a scripted conversation with a listener.
type conv struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, addr string) *conv {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	return &conv{t: t, c: c, r: bufio.NewReader(c)}
}

func (cv *conv) send(s string) {
	cv.t.Helper()
	if _, err := cv.c.Write([]byte(s + "\r\n")); err != nil {
		cv.t.Fatal(err)
	}
}

func (cv *conv) line() string {
	cv.t.Helper()
	l, err := cv.r.ReadString('\n')
	if err != nil {
		cv.t.Fatalf("read: %v (so far %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

// until reads lines up to the one starting with prefix and returns them
// all, that one last.
func (cv *conv) until(prefix string) []string {
	cv.t.Helper()
	var out []string
	for {
		l := cv.line()
		out = append(out, l)
		if strings.HasPrefix(l, prefix) {
			return out
		}
	}
}

// starttls upgrades the conversation, trusting roots.
func (cv *conv) starttls(roots *x509.CertPool) {
	cv.t.Helper()
	tc := tls.Client(cv.c, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
	if err := tc.Handshake(); err != nil {
		cv.t.Fatal(err)
	}
	cv.c, cv.r = tc, bufio.NewReader(tc)
}

func plain(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
}

func last(lines []string) string { return lines[len(lines)-1] }

// certClient trusts the listener's certificate.
func (f *fixture) certClient() *tls.Config {
	return &tls.Config{RootCAs: f.roots, ServerName: "127.0.0.1"}
}
