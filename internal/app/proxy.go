package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/metrics"
	"github.com/mailgate/mailgate/internal/oauth"
	"github.com/mailgate/mailgate/internal/outbox"
	"github.com/mailgate/mailgate/internal/proxy"
	"github.com/mailgate/mailgate/internal/smtp"
	"github.com/mailgate/mailgate/internal/store"
	"github.com/mailgate/mailgate/internal/web"
)

// proxies are serve's legacy-client listeners. They outlive generations:
// a reload restarts a listener only when its settings changed; accounts
// are looked up at each login in the set of the current generation.
type proxies struct {
	log      *slog.Logger
	trace    bool
	throttle *proxy.Throttle
	accounts atomic.Pointer[accountSet]
	sessions *metrics.GaugeVec
	logins   *metrics.CounterVec

	// mu guards running; apply and stop hold it while a listener's
	// sessions end, so the sessions' callbacks take statMu, never mu
	mu      sync.Mutex
	running map[string]*runningListener
	// gates pace SMTP submissions per mailbox and host, shared with the
	// outbox's senders (generation sets its worker's Gates to it)
	gates *outbox.Gates
	// st, when set, keeps each account's last login across restarts,
	// written by writeLogins off the login path: kick wakes it for what
	// unwritten holds (an account's latest only), done says it finished
	st     *store.Store
	statMu sync.Mutex
	counts map[string]int // sessions per listener
	last   map[string]LoginStatus
	// unwritten, kick and stopped are guarded by statMu
	unwritten map[string]LoginStatus
	kick      chan struct{}
	stopped   bool
	done      chan struct{}
}

// LoginStatus is an account's last login through the proxy.
type LoginStatus struct {
	Account, Listener, Remote, Result string
	At                                time.Time
	Advice                            []string
}

type runningListener struct {
	same   config.Listener
	addr   string
	cancel context.CancelFunc
	done   chan struct{}
}

func newProxies(reg *metrics.Registry, log *slog.Logger) *proxies {
	return &proxies{
		log:      log,
		trace:    log.Enabled(context.Background(), slog.LevelDebug),
		throttle: proxy.NewThrottle(0, 0),
		sessions: reg.Gauge("mailgate_proxy_sessions", "Sessions open on a legacy-client proxy listener.", "listener"),
		logins:   reg.Counter("mailgate_proxy_logins_total", "Logins on a legacy-client proxy listener by result (ok, bad_password, throttled, busy, token, upstream).", "listener", "result"),
		running:  map[string]*runningListener{},
		gates:    &outbox.Gates{},
		counts:   map[string]int{},
		last:     map[string]LoginStatus{},

		unwritten: map[string]LoginStatus{},
		kick:      make(chan struct{}, 1),
	}
}

// accountSet is the proxy's Accounts of one configuration.
type accountSet struct {
	byName map[string]*proxyAccount
}

type proxyAccount struct {
	acct      *proxy.Account
	hash      string
	listeners []string
	rate      int
}

// newAccountSet hashes every account's password (bcrypt: a few ms each;
// a password that is a bcrypt hash already is kept) and binds it to its
// profile's token in rt (a service account's acting for the account's
// mailbox, as for a mailbox or sender).
func newAccountSet(rt *parts) (*accountSet, error) {
	s := &accountSet{byName: map[string]*proxyAccount{}}
	for i := range rt.cfg.Accounts {
		a := &rt.cfg.Accounts[i]
		p, ok := rt.profiles[a.Profile]
		if !ok {
			return nil, fmt.Errorf("accounts[%s]: profile %q is not defined", a.Username, a.Profile)
		}
		h := a.Password.Reveal()
		if !proxy.IsHash(h) {
			var err error
			if h, err = proxy.HashPassword(h); err != nil {
				return nil, fmt.Errorf("accounts[%s]: %w", a.Username, err)
			}
		}
		s.byName[a.Username] = &proxyAccount{hash: h, listeners: a.Listeners, rate: a.Rate, acct: &proxy.Account{
			Username: a.Username, Mailbox: a.Mailbox, Profile: a.Profile, AllowedFrom: a.AllowedFrom,
			Bearer: rt.mgr.Bearer(p.ForSubject(a.Mailbox), nil)}}
	}
	return s, nil
}

// Authenticate is proxy.Accounts: the password is compared with the hash
// (an unknown name costs as long), then the account's listeners.
func (s *accountSet) Authenticate(_ context.Context, listener, username, password string) (*proxy.Account, error) {
	a := s.byName[username]
	hash := ""
	if a != nil {
		hash = a.hash
	}
	if !proxy.CheckPassword(hash, password) || a == nil {
		return nil, proxy.ErrBadCredentials
	}
	if len(a.listeners) > 0 && !slices.Contains(a.listeners, listener) {
		return nil, proxy.ErrBadCredentials
	}
	return a.acct, nil
}

// proxyAccounts is what Authenticate asks: the current set.
type proxyAccounts struct{ px *proxies }

func (p proxyAccounts) Authenticate(ctx context.Context, listener, username, password string) (*proxy.Account, error) {
	s := p.px.accounts.Load()
	if s == nil {
		return nil, proxy.ErrBadCredentials
	}
	return s.Authenticate(ctx, listener, username, password)
}

// LoginResult is proxy.Recorder: metrics and the last login per account,
// kept in the store too (never the password: Login holds none).
func (px *proxies) LoginResult(ctx context.Context, l proxy.Login) {
	px.logins.Add(1, l.Listener, l.Result)
	s := px.accounts.Load()
	if s == nil || s.byName[l.Username] == nil {
		return
	}
	ls := LoginStatus{Account: l.Username, Listener: l.Listener, Remote: l.Remote, Result: l.Result, At: time.Now(), Advice: l.Advice}
	px.statMu.Lock()
	defer px.statMu.Unlock()
	px.last[l.Username] = ls
	if px.done == nil || px.stopped {
		return // no store, or stopped
	}
	// the store write waits for writeLogins, not the client's login
	px.unwritten[l.Username] = ls
	select {
	case px.kick <- struct{}{}:
	default: // a write is due already; it takes this one too
	}
}

// writeLogins keeps the last logins in the store as they come, until
// stopLogins; a burst of logins costs one write per account.
func (px *proxies) writeLogins() {
	defer close(px.done)
	for range px.kick {
		px.statMu.Lock()
		batch := px.unwritten
		px.unwritten = map[string]LoginStatus{}
		px.statMu.Unlock()
		for _, ls := range batch {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := px.st.RecordProxyLogin(ctx, store.ProxyLogin(ls)); err != nil {
				px.log.Warn("proxy: the last login is not kept in the store", "account", ls.Account, "err", err)
			}
			cancel()
		}
	}
}

// stopLogins writes what logins are left to the store and ends
// writeLogins; later logins are only kept in memory.
func (px *proxies) stopLogins() {
	px.statMu.Lock()
	done := px.done
	if done == nil || px.stopped {
		px.statMu.Unlock()
		return
	}
	px.stopped = true
	select {
	case px.kick <- struct{}{}: // what is unwritten goes before the end
	default:
	}
	close(px.kick)
	px.statMu.Unlock()
	<-done
}

// loadLogins reads the accounts' last logins kept in st (before a
// restart, or by another serve instance) and keeps st for the next ones.
func (px *proxies) loadLogins(ctx context.Context, st *store.Store) {
	px.st = st
	if st == nil {
		return
	}
	ls, err := st.ProxyLogins(ctx)
	if err != nil {
		px.log.Warn("proxy: the last logins before this start are unknown", "err", err)
		return
	}
	px.statMu.Lock()
	defer px.statMu.Unlock()
	for _, l := range ls {
		if cur, ok := px.last[l.Account]; !ok || l.At.After(cur.At) {
			px.last[l.Account] = LoginStatus(l)
		}
	}
	px.done = make(chan struct{})
	go px.writeLogins()
}

// LastLogins are the accounts' last logins through the proxy, those
// before serve started included (from the store).
func (px *proxies) LastLogins() map[string]LoginStatus {
	px.statMu.Lock()
	defer px.statMu.Unlock()
	out := make(map[string]LoginStatus, len(px.last))
	for k, v := range px.last {
		out[k] = v
	}
	return out
}

func (px *proxies) onSessions(listener string) func(int) {
	return func(d int) {
		px.statMu.Lock()
		px.counts[listener] += d
		n := px.counts[listener]
		px.statMu.Unlock()
		px.sessions.Set(float64(n), listener)
	}
}

// apply makes the listeners of rt's configuration run: the accounts are
// replaced at once, a listener whose settings are unchanged keeps running
// (its sessions too), a changed one restarts, a removed one stops. The
// error names the listeners that could not start (the others run).
func (px *proxies) apply(rt *parts) error {
	set, err := newAccountSet(rt)
	if err != nil {
		return err
	}
	px.accounts.Store(set)
	explain := proxyExplainer(rt)
	px.mu.Lock()
	defer px.mu.Unlock()
	want := map[string]bool{}
	var errs []error
	for i := range rt.cfg.Listeners {
		l := rt.cfg.Listeners[i]
		want[l.Name] = true
		if r, ok := px.running[l.Name]; ok {
			if reflect.DeepEqual(r.same, l) {
				continue
			}
			px.stopLocked(l.Name)
		}
		if err := px.startLocked(&l, explain); err != nil {
			errs = append(errs, fmt.Errorf("listeners[%s]: %w", l.Name, err))
		}
	}
	for name := range px.running {
		if !want[name] {
			px.stopLocked(name)
		}
	}
	return errors.Join(errs...)
}

func (px *proxies) startLocked(l *config.Listener, explain func(*proxy.Account, error) []string) error {
	var tc *tls.Config
	if l.Security != "none" {
		cert, err := tls.LoadX509KeyPair(l.TLSCert, l.TLSKey)
		if err != nil {
			return fmt.Errorf("tls_cert/tls_key: %w", err)
		}
		tc = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	up, err := listenerUpstream(l)
	if err != nil {
		return fmt.Errorf("upstream: %w", err)
	}
	srv, err := proxy.New(proxy.Options{Name: l.Name, Protocol: l.Protocol, Security: l.Security, TLSConfig: tc,
		Upstream: up,
		Accounts: proxyAccounts{px}, Recorder: px, Explain: explain, Throttle: px.throttle, Pacer: proxyPacer{px},
		OnSessions: px.onSessions(l.Name), Log: px.log, Trace: px.trace})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", l.Listen)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningListener{same: *l, addr: ln.Addr().String(), cancel: cancel, done: make(chan struct{})}
	px.running[l.Name] = r
	go func() {
		defer close(r.done)
		if err := srv.Serve(ctx, ln); err != nil {
			px.log.Error("proxy: listener stopped", "listener", l.Name, "err", err)
		}
	}()
	px.log.Info("proxy: listening", "listener", l.Name, "protocol", l.Protocol, "addr", r.addr, "security", l.Security,
		"upstream", up.Addr)
	return nil
}

// listenerUpstream is where l's sessions log in: its upstream's address,
// security and TLS settings (the listener's and `mailgate test`'s).
func listenerUpstream(l *config.Listener) (proxy.Upstream, error) {
	tc, err := tlsConfig(l.Upstream.Host, l.Upstream.TLSCA)
	if err != nil {
		return proxy.Upstream{}, err
	}
	return proxy.Upstream{Addr: net.JoinHostPort(l.Upstream.Host, strconv.Itoa(l.Upstream.Port)), Security: l.Upstream.Security, TLSConfig: tc}, nil
}

func (px *proxies) stopLocked(name string) {
	r := px.running[name]
	delete(px.running, name)
	r.cancel()
	<-r.done
}

// stop ends every listener and its sessions, then writes the last logins
// left to the store.
func (px *proxies) stop() {
	px.mu.Lock()
	for name := range px.running {
		px.stopLocked(name)
	}
	px.mu.Unlock()
	px.stopLogins()
}

// proxyPacer is proxy.Pacer: an account's submissions take turns at the
// outbox's gate of its mailbox at the listener's upstream host, shared
// with an outbox sender of that mailbox and host (the slower rate of the
// two spaces them; a throttling answer to either pauses both).
type proxyPacer struct{ px *proxies }

// proxyBackoff is the first pause after a throttling answer that named
// no wait (the outbox's default Backoff), doubled per answer in a row.
const proxyBackoff = 30 * time.Second

func (p proxyPacer) Turn(ctx context.Context, a *proxy.Account, upstream string, patience time.Duration) (func(error), error) {
	host, _, err := net.SplitHostPort(upstream)
	if err != nil {
		host = upstream
	}
	rate := 0
	if s := p.px.accounts.Load(); s != nil && s.byName[a.Username] != nil {
		rate = s.byName[a.Username].rate
	}
	return p.px.gates.Turn(ctx, outbox.PaceKey(a.Mailbox, host), paceEvery(rate, host), patience, proxyBackoff)
}

// paceEvery is the spacing of an account's submissions to host: its
// rate, or config.DefaultSMTPRate (Exchange Online's limit) when it sets
// none; 0 does not pace (beyond a sender's rate on the same gate).
func paceEvery(rate int, host string) time.Duration {
	if rate == 0 {
		rate = config.DefaultSMTPRate(host)
	}
	if rate <= 0 {
		return 0
	}
	return time.Minute / time.Duration(rate)
}

// proxyExplainer is Diagnose's advice for an account's failed upstream
// login: the token endpoint's refusal (AADSTS), Exchange's refusal of the
// token for the mailbox, or an SMTP refusal's meaning.
func proxyExplainer(rt *parts) func(*proxy.Account, error) []string {
	return func(a *proxy.Account, err error) []string {
		p := rt.profiles[a.Profile].ForSubject(a.Mailbox)
		if ex, ok := oauth.ExplainError(err, p); ok {
			return []string{"fix: " + ex.String()}
		}
		if advice := SenderAdvice(err); len(advice) > 0 {
			return advice
		}
		var ue *proxy.UpstreamError
		if errors.As(err, &ue) && ue.Step == "auth" {
			return refusedAdvice(p, a.Mailbox, ue.Protocol)
		}
		return nil
	}
}

// testAccount is `mailgate test ACCOUNT`: the account's token, then a
// login upstream as the account would on each listener it may use.
func testAccount(ctx context.Context, rt *parts, a *config.Account, step StepFunc, hint func(string)) bool {
	p := rt.profiles[a.Profile].ForSubject(a.Mailbox)
	tok, ok := testProfile(ctx, rt, p, step, hint)
	if !ok {
		return false
	}
	return testAccountLogins(ctx, rt, a, tok.AccessToken, step, hint)
}

// accountListeners are the listeners a may use.
func accountListeners(cfg *config.Config, a *config.Account) []*config.Listener {
	var out []*config.Listener
	for i := range cfg.Listeners {
		if l := &cfg.Listeners[i]; len(a.Listeners) == 0 || slices.Contains(a.Listeners, l.Name) {
			out = append(out, l)
		}
	}
	return out
}

// testAccountLogins logs in upstream with token as a would, on each
// listener it may use.
func testAccountLogins(ctx context.Context, rt *parts, a *config.Account, token string, step StepFunc, hint func(string)) bool {
	ok := true
	for _, l := range accountListeners(rt.cfg, a) {
		up, err := listenerUpstream(l)
		if err != nil {
			step(false, "config", "listeners[%s]: %v", l.Name, err)
			ok = false
			continue
		}
		t0 := time.Now()
		switch l.Protocol {
		case proxy.IMAP:
			err = proxy.IMAPLogin(ctx, up, a.Mailbox, token)
		case proxy.POP3:
			err = proxy.POP3Login(ctx, up, a.Mailbox, token)
		case proxy.SMTP:
			var c *smtp.Client
			if c, err = proxy.SMTPLogin(ctx, up, a.Mailbox, token); err == nil {
				_ = c.Quit()
				c.Close()
			}
		}
		if err != nil {
			ok = false
			step(false, "auth", "listener %s: %s as %s at %s: %v", l.Name, l.Protocol, a.Mailbox, up.Addr, err)
			for _, line := range proxyExplainer(rt)(&proxy.Account{Username: a.Username, Mailbox: a.Mailbox, Profile: a.Profile}, err) {
				hint(line)
			}
			continue
		}
		step(true, "auth", "listener %s: XOAUTH2 as %s at %s (%s)", l.Name, a.Mailbox, up.Addr, time.Since(t0).Round(time.Millisecond))
	}
	return ok
}

// ProxyLogins is web.ProxyRuntime: the proxy accounts' last logins.
func (s *server) ProxyLogins() map[string]web.ProxyLogin {
	out := map[string]web.ProxyLogin{}
	for name, l := range s.px.LastLogins() {
		out[name] = web.ProxyLogin{At: l.At, Listener: l.Listener, Remote: l.Remote, Result: l.Result, Advice: l.Advice}
	}
	return out
}

var _ web.ProxyRuntime = (*server)(nil)
