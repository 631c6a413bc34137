package app

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/metrics"
	"github.com/mailgate/mailgate/internal/outbox"
	"github.com/mailgate/mailgate/internal/proxy"
	"github.com/mailgate/mailgate/internal/store"
)

const proxyConfig = `profiles:
  - {name: p, provider: microsoft, grant: client_credentials, tenant: t.example, client_id: aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee, client_secret: s1}
listeners:
  - {name: a, protocol: imap, listen: '127.0.0.1:0', upstream: {host: imap.example}}
  - {name: b, protocol: pop3, listen: '127.0.0.1:0', upstream: {host: pop.example}}
accounts:
  - {username: u, password: pw1, profile: p, mailbox: u@t.example, listeners: [a]}
`

// TestProxiesApply: applying a configuration swaps the accounts at once
// (a changed password works at the next login), keeps a listener whose
// settings are unchanged, restarts a changed one and stops a removed one.
func TestProxiesApply(t *testing.T) {
	dir := t.TempDir()
	parts := func(src string) *parts {
		t.Helper()
		cfg, err := config.ParseWith([]byte(src), dir+"/mailgate.yaml", func(string) string { return "" }, nil)
		if err != nil {
			t.Fatal(err)
		}
		rt, err := newParts(nil, cfg, slog.New(slog.DiscardHandler), nil)
		if err != nil {
			t.Fatal(err)
		}
		return rt
	}
	px := newProxies(&metrics.Registry{}, slog.New(slog.DiscardHandler))
	defer px.stop()
	auth := func(listener, pw string) error {
		_, err := proxyAccounts{px}.Authenticate(context.Background(), listener, "u", pw)
		return err
	}
	if err := px.apply(parts(proxyConfig)); err != nil {
		t.Fatal(err)
	}
	a0, b0 := px.running["a"], px.running["b"]
	if auth("a", "pw1") != nil || !errors.Is(auth("b", "pw1"), proxy.ErrBadCredentials) || !errors.Is(auth("a", "pw2"), proxy.ErrBadCredentials) {
		t.Fatal("accounts of the first configuration")
	}
	greeting := func(addr string) string {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return err.Error()
		}
		defer c.Close()
		b := make([]byte, 64)
		n, _ := c.Read(b)
		return string(b[:n])
	}
	if g := greeting(b0.addr); !strings.HasPrefix(g, "+OK") {
		t.Fatalf("b's greeting: %q", g)
	}

	// a session open on b while b restarts: it is closed, apply returns
	held, err := net.Dial("tcp", b0.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if n, _ := held.Read(make([]byte, 64)); n == 0 {
		t.Fatal("no greeting")
	}
	next := strings.NewReplacer("pw1", "pw2", "pop.example", "pop2.example").Replace(proxyConfig)
	applied := make(chan error, 1)
	go func() { applied <- px.apply(parts(next)) }()
	select {
	case err := <-applied:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("apply did not return while a session was open on a restarted listener")
	}
	if _, err := held.Read(make([]byte, 64)); err == nil {
		t.Error("the session on the restarted listener is still open")
	}
	if px.running["a"] != a0 {
		t.Error("listener a restarted though unchanged")
	}
	if px.running["b"] == b0 {
		t.Error("listener b kept though its upstream changed")
	}
	if auth("a", "pw2") != nil || !errors.Is(auth("a", "pw1"), proxy.ErrBadCredentials) {
		t.Error("the changed password is not the one checked")
	}

	// a bcrypt hash in the file is the hash itself
	h, err := proxy.HashPassword("from a hash")
	if err != nil {
		t.Fatal(err)
	}
	if err := px.apply(parts(strings.Replace(next, "password: pw2", "password: '"+h+"'", 1))); err != nil {
		t.Fatal(err)
	}
	if auth("a", "from a hash") != nil || auth("a", h) == nil {
		t.Error("a bcrypt hash as password is not taken as the hash")
	}

	without := strings.Replace(next, "  - {name: b, protocol: pop3, listen: '127.0.0.1:0', upstream: {host: pop2.example}}\n", "", 1)
	b1 := px.running["b"]
	if err := px.apply(parts(without)); err != nil {
		t.Fatal(err)
	}
	if _, ok := px.running["b"]; ok {
		t.Error("listener b still runs after it was removed")
	}
	if g := greeting(b1.addr); strings.HasPrefix(g, "+OK") {
		t.Error("b's port still answers")
	}
}

// TestConsoleAccount: an account made through the API with the real
// record editor is kept as a console record holding only the password's
// hash, and the proxy's account set built from the configuration the
// editor gives checks the password.
func TestConsoleAccount(t *testing.T) {
	ed, _, do := recordsAPI(t, recordsFile)
	if code, body := do("POST", "/api/v1/accounts", `{"username":"printer","password":"printer pw","profile":"p","mailbox":"printer@contoso.com"}`); code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	y, found, err := ed.Load(t.Context(), "accounts", "printer")
	if err != nil || !found || strings.Contains(string(y), "printer pw") {
		t.Fatalf("stored: %s %v %v", y, found, err)
	}
	cfg, broken, err := ed.Config(t.Context())
	if err != nil || len(broken) != 0 {
		t.Fatal(err, broken)
	}
	if a, ok := cfg.Account("printer"); !ok || a.Origin != config.OriginConsole {
		t.Fatalf("account in the configuration: %+v", a)
	}
	_, set := proxyTestParts(t, cfg)
	if _, err := set.Authenticate(t.Context(), "any", "printer", "printer pw"); err != nil {
		t.Errorf("the console account's password: %v", err)
	}
	if _, err := set.Authenticate(t.Context(), "any", "printer", "wrong"); !errors.Is(err, proxy.ErrBadCredentials) {
		t.Errorf("a wrong password: %v", err)
	}
}

// proxyTestSet parses src and builds its parts and proxy account set.
func proxyTestSet(t *testing.T, src string) (*config.Config, *parts, *accountSet) {
	t.Helper()
	cfg, err := config.ParseWith([]byte(src), t.TempDir()+"/mailgate.yaml", func(string) string { return "" }, nil)
	if err != nil {
		t.Fatal(err)
	}
	rt, set := proxyTestParts(t, cfg)
	return cfg, rt, set
}

// proxyTestParts builds cfg's parts and proxy account set.
func proxyTestParts(t *testing.T, cfg *config.Config) (*parts, *accountSet) {
	t.Helper()
	rt, err := newParts(nil, cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	set, err := newAccountSet(rt)
	if err != nil {
		t.Fatal(err)
	}
	return rt, set
}

// TestProxyPacer: an account's submissions take turns at the outbox's
// gate of its mailbox at the listener's upstream host — the key an outbox
// sender of that mailbox and host paces with — spaced by the account's
// rate (a turn a minute away is not waited for by a client with 1 s of
// patience); a mailbox at another host has a gate of its own.
func TestProxyPacer(t *testing.T) {
	src := proxyConfig + `  - {username: scan, password: pw, profile: p, mailbox: Scan@t.example, rate: 1}
senders:
  - {name: scan, protocol: smtp, profile: p, host: smtp.office365.com, port: 587, username: scan@t.example}
`
	cfg, rt, set := proxyTestSet(t, src)
	px := newProxies(&metrics.Registry{}, slog.New(slog.DiscardHandler))
	px.accounts.Store(set)
	acct := set.byName["scan"].acct
	pacer := proxyPacer{px}

	snd, err := rt.outboxSender(&cfg.Senders[0])
	if err != nil {
		t.Fatal(err)
	}
	if want := outbox.PaceKey(acct.Mailbox, "smtp.office365.com"); snd.Pace != want {
		t.Fatalf("the sender paces with %q, the proxy with %q", snd.Pace, want)
	}

	done, err := pacer.Turn(t.Context(), acct, "smtp.office365.com:587", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	done(nil)
	_, err = pacer.Turn(t.Context(), acct, "smtp.office365.com:587", time.Second)
	var pe *outbox.PacedError
	if !errors.As(err, &pe) || pe.RetryIn() < 30*time.Second {
		t.Fatalf("second turn at 1 a minute: %v, want paced about a minute", err)
	}
	// the same mailbox at another host is another gate
	done, err = pacer.Turn(t.Context(), acct, "smtp.other.example:587", time.Second)
	if err != nil {
		t.Fatalf("turn at another host: %v", err)
	}
	done(nil)
}

// TestProxyPaceEvery: an account's spacing is its rate, or Exchange
// Online's 30 a minute at smtp.office365.com when it sets none.
func TestProxyPaceEvery(t *testing.T) {
	tests := []struct {
		rate int
		host string
		want time.Duration
	}{
		{0, "smtp.office365.com", 2 * time.Second},
		{0, "SMTP.Office365.com", 2 * time.Second},
		{0, "mail.example.com", 0},
		{6, "smtp.office365.com", 10 * time.Second},
		{120, "mail.example.com", 500 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := paceEvery(tt.rate, tt.host); got != tt.want {
			t.Errorf("paceEvery(%d, %s) = %v, want %v", tt.rate, tt.host, got, tt.want)
		}
	}
}

// TestProxyLastLoginKept: the proxy's last login per account (with the
// advice of a refusal, never the password) is in the store, and a serve
// started later on that store shows it.
func TestProxyLastLoginKept(t *testing.T) {
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "db")
	open := func() *store.Store {
		st, err := store.Open(t.Context(), dsn, &store.Options{Key: make([]byte, 32)})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	_, _, set := proxyTestSet(t, proxyConfig)
	st := open()
	px := newProxies(&metrics.Registry{}, slog.New(slog.DiscardHandler))
	px.accounts.Store(set)
	px.loadLogins(t.Context(), st)
	px.LoginResult(t.Context(), proxy.Login{Listener: "a", Protocol: "imap", Username: "u", Remote: "127.0.0.1:4000", Result: "upstream",
		Err: errors.New("NO AUTHENTICATE failed"), Advice: []string{"fix: grant IMAP.AccessAsApp"}})
	px.LoginResult(t.Context(), proxy.Login{Listener: "a", Username: "nobody", Result: "bad_password"})
	px.stop() // serve's end: the last logins not yet written go to the store
	st.Close()

	st = open()
	defer st.Close()
	next := newProxies(&metrics.Registry{}, slog.New(slog.DiscardHandler))
	next.loadLogins(t.Context(), st)
	got := next.LastLogins()
	l, ok := got["u"]
	if !ok || l.Listener != "a" || l.Remote != "127.0.0.1:4000" || l.Result != "upstream" || l.At.IsZero() ||
		len(l.Advice) != 1 || l.Advice[0] != "fix: grant IMAP.AccessAsApp" {
		t.Fatalf("after a restart: %+v", got)
	}
	if _, ok := got["nobody"]; ok || len(got) != 1 {
		t.Errorf("an unknown user name's login is kept: %+v", got)
	}
}
