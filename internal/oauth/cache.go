package oauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Store persists tokens between processes. LoadToken/SaveToken hold the
// access-token cache of a profile under a key (the normalised scope set);
// LoadRefreshToken/SaveRefreshToken hold the profile's refresh token. Loads
// return ErrNoToken when nothing is stored. Implementations must keep every
// Token field (Expiry and IssuedAt drive the refresh margin) and must be
// safe for concurrent use. Manager puts a hash of the profile's settings in
// front of the access and refresh tokens it saves (see binding.go): the
// values are opaque to the Store, which should seal them. internal/store
// keeps them over SQL (the composition root adapts it to this interface);
// NewMemoryStore keeps tokens in memory.
type Store interface {
	LoadToken(ctx context.Context, profile, key string) (*Token, error)
	SaveToken(ctx context.Context, profile, key string, tok *Token) error
	LoadRefreshToken(ctx context.Context, profile string) (string, error)
	SaveRefreshToken(ctx context.Context, profile, refreshToken string) error
}

// ManagerOptions tune a Manager; nil means defaults.
type ManagerOptions struct {
	// Logger receives debug lines per token obtained and warnings (the
	// password grant, store failures). nil discards.
	Logger *slog.Logger
	// Now is the clock deciding freshness and backoff; nil is time.Now.
	// Client assertions are always dated by the real clock, since the
	// server checks them against its own.
	Now func() time.Time
	// OnRequest is called after every token-endpoint exchange with the
	// profile name, a Result* label and the AADSTS number (0 when none);
	// for metrics.
	OnRequest func(profile, result string, aadsts int)
	// FetchTimeout bounds one shared fetch (a store lookup plus a token
	// request), whoever waits for it; 0 is two minutes.
	FetchTimeout time.Duration
}

// Backoff applied after a throttling or server error that named no
// Retry-After.
const (
	DefaultThrottleBackoff = time.Minute
	DefaultServerBackoff   = 10 * time.Second
)

// Manager is the token cache (the outer layer of the TokenSource stack):
// memory, then the Store, then one request per (profile, scopes) at a time,
// by refresh token when the grant has one, else by the grant itself. It is
// safe for concurrent use.
type Manager struct {
	store        Store
	log          *slog.Logger
	now          func() time.Time
	onRequest    func(profile, result string, aadsts int)
	fetchTimeout time.Duration

	mu       sync.Mutex
	cache    map[cacheKey]*Token
	flights  map[cacheKey]*flight
	backoff  map[string]*backoffState
	rejected map[cacheKey]string
	warned   map[string]bool
	rtLocks  map[string]*sync.Mutex
}

// cacheKey names one cached token: the profile, the subject a service
// account acts for, its normalised scope set and the binding of the
// settings it was obtained with.
type cacheKey struct{ profile, subject, scopes, binding string }

// stored is the key the Store keeps the token under: the scope set, and
// for a service account's subject "subject=USER " in front of it.
func (k cacheKey) stored() string {
	if k.subject == "" {
		return k.scopes
	}
	return "subject=" + k.subject + " " + k.scopes
}

// flight is a fetch in progress that several callers may wait for.
type flight struct {
	done chan struct{}
	tok  *Token
	err  error
}

// backoffState is a pending wait after a temporary refusal.
type backoffState struct {
	until time.Time
	err   *Error
}

// wait is the error of a call made during the backoff.
func (b *backoffState) wait(p *Profile, now time.Time) error {
	e := *b.err
	e.RetryAfter = b.until.Sub(now)
	return fmt.Errorf("oauth: profile %s: waiting until %s before asking again: %w",
		p.Name, b.until.UTC().Format(time.RFC3339), &e)
}

// NewManager returns a Manager over store (nil: a new MemoryStore).
func NewManager(store Store, opts *ManagerOptions) *Manager {
	if opts == nil {
		opts = &ManagerOptions{}
	}
	if store == nil {
		store = NewMemoryStore()
	}
	m := &Manager{
		store:        store,
		log:          opts.Logger,
		now:          opts.Now,
		onRequest:    opts.OnRequest,
		fetchTimeout: opts.FetchTimeout,
		cache:        map[cacheKey]*Token{},
		flights:      map[cacheKey]*flight{},
		backoff:      map[string]*backoffState{},
		rejected:     map[cacheKey]string{},
		warned:       map[string]bool{},
		rtLocks:      map[string]*sync.Mutex{},
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.fetchTimeout <= 0 {
		m.fetchTimeout = 2 * time.Minute
	}
	return m
}

// Bearer returns the Bearer of p's access tokens for scopes (nil: the
// profile's) from this Manager: Token is Manager.Token's access token,
// Invalidate is Manager.Invalidate for the same profile and scopes.
func (m *Manager) Bearer(p *Profile, scopes []string) Bearer {
	return &bearer{m: m, p: p, scopes: scopes}
}

type bearer struct {
	m      *Manager
	p      *Profile
	scopes []string
}

func (b *bearer) Token(ctx context.Context) (string, error) {
	t, err := b.m.Token(ctx, b.p, b.scopes)
	if err != nil {
		return "", err
	}
	return t.AccessToken, nil
}

func (b *bearer) Invalidate() { b.m.invalidate(b.p.Name, b.p.Subject, true, b.scopes) }

// Token returns an access token of p for scopes (nil: the profile's) that
// stays valid for longer than the refresh margin. Concurrent callers for
// the same profile and scope set share one fetch; a caller whose ctx ends
// stops waiting without cancelling the fetch for the others. While a
// Retry-After (or default) backoff is pending it fails at once with the
// server's *Error. A token cached with other profile settings (its
// binding differs) is not used. The returned Token is the caller's copy and
// carries no refresh token.
func (m *Manager) Token(ctx context.Context, p *Profile, scopes []string) (*Token, error) {
	key, scopes, err := m.prepare(p, scopes)
	if err != nil {
		return nil, err
	}
	now := m.now()

	m.mu.Lock()
	m.warnOnce(p)
	cached := m.cache[key]
	if cached != nil && m.fresh(p, cached, now) {
		m.mu.Unlock()
		return cached.clone(), nil
	}
	if b := m.backoff[p.Name]; b != nil && now.Before(b.until) {
		m.mu.Unlock()
		if cached != nil && m.usable(p, cached, now) {
			return cached.clone(), nil
		}
		return nil, b.wait(p, now)
	}
	f := m.flights[key]
	if f == nil {
		f = &flight{done: make(chan struct{})}
		m.flights[key] = f
		pc := *p
		go m.run(context.WithoutCancel(ctx), &pc, key, dedupe(scopes), f)
	}
	m.mu.Unlock()

	return f.wait(ctx)
}

// prepare checks p and returns the cache key and the scopes of a request.
func (m *Manager) prepare(p *Profile, scopes []string) (cacheKey, []string, error) {
	if p == nil {
		return cacheKey{}, nil, errors.New("oauth: nil profile")
	}
	if p.Name == "" {
		return cacheKey{}, nil, errors.New("oauth: a profile used with Manager needs a name")
	}
	if err := p.Validate(); err != nil {
		return cacheKey{}, nil, err
	}
	scopes = scopesOr(p, scopes)
	return cacheKey{profile: p.Name, subject: p.Subject, scopes: normalizeScopes(scopes), binding: p.accessBinding()}, scopes, nil
}

// Fresh returns a token of p for scopes (nil: the profile's) obtained from
// the token endpoint now, whatever is cached: it proves that the profile's
// credentials work (mailgate test, doctor, token --fresh). On success the
// new token replaces the cached one; on failure the cached token, if any,
// stays cached for the other callers and the error is returned. A pending
// backoff fails at once, as for Token. A caller whose ctx ends stops
// waiting; the request itself runs to its end so that a rotated refresh
// token is not lost.
func (m *Manager) Fresh(ctx context.Context, p *Profile, scopes []string) (*Token, error) {
	key, scopes, err := m.prepare(p, scopes)
	if err != nil {
		return nil, err
	}
	now := m.now()
	m.mu.Lock()
	m.warnOnce(p)
	b := m.backoff[p.Name]
	m.mu.Unlock()
	if b != nil && now.Before(b.until) {
		return nil, b.wait(p, now)
	}
	f := &flight{done: make(chan struct{})}
	pc := *p
	go func() {
		defer close(f.done)
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.fetchTimeout)
		defer cancel()
		f.tok, f.err = m.request(ctx, &pc, key, dedupe(scopes))
		if f.err != nil {
			return
		}
		m.mu.Lock()
		m.cache[key] = f.tok
		m.mu.Unlock()
	}()
	return f.wait(ctx)
}

// wait returns the flight's token once it is done, or ctx's error if ctx
// ends first (the request itself goes on for the other waiters).
func (f *flight) wait(ctx context.Context) (*Token, error) {
	select {
	case <-f.done:
		if f.err != nil {
			return nil, f.err
		}
		return f.tok.clone(), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// run performs one shared fetch and publishes its outcome.
func (m *Manager) run(ctx context.Context, p *Profile, key cacheKey, scopes []string, f *flight) {
	ctx, cancel := context.WithTimeout(ctx, m.fetchTimeout)
	defer cancel()
	tok, err := m.fetch(ctx, p, key, scopes)

	m.mu.Lock()
	delete(m.flights, key)
	if err == nil {
		m.cache[key] = tok
	} else if old := m.cache[key]; old != nil && m.usable(p, old, m.now()) && !errors.As(err, new(*persistError)) {
		// Early refresh (refresh_in) failed but the token we have is still
		// good for longer than the margin: keep using it.
		m.log.Warn("oauth: early token refresh failed, keeping the current token",
			"profile", p.Name, "err", err)
		tok, err = old, nil
	}
	f.tok, f.err = tok, err
	m.mu.Unlock()
	close(f.done)
}

// fetch looks in the Store, then asks the authorization server.
func (m *Manager) fetch(ctx context.Context, p *Profile, key cacheKey, scopes []string) (*Token, error) {
	stored, err := m.store.LoadToken(ctx, p.Name, key.stored())
	switch {
	case err == nil && stored != nil:
		var binding string
		binding, stored.AccessToken = unbind(stored.AccessToken)
		if binding != key.binding {
			m.log.Debug("oauth: cached token obtained with other profile settings, not used", "profile", p.Name, "scopes", key.scopes)
			break
		}
		if m.fresh(p, stored, m.now()) && !m.isRejected(key, stored) {
			m.log.Debug("oauth: token from store", "profile", p.Name, "scopes", key.scopes, "expiry", stored.Expiry)
			return stored.clone(), nil
		}
	case err != nil && !errors.Is(err, ErrNoToken):
		m.log.Warn("oauth: load cached token", "profile", p.Name, "err", err)
	}
	return m.request(ctx, p, key, scopes)
}

// request asks the authorization server and stores the new token.
func (m *Manager) request(ctx context.Context, p *Profile, key cacheKey, scopes []string) (*Token, error) {
	tok, err := m.acquire(ctx, p, scopes)
	if err != nil {
		m.noteFailure(p, err)
		return nil, err
	}
	tok.RefreshToken = ""
	m.saveToken(ctx, p, key, tok)
	m.log.Debug("oauth: token obtained", "profile", p.Name, "scopes", key.scopes, "expiry", tok.Expiry)
	return tok.clone(), nil
}

// saveToken stores tok, with its binding, as the cached token of key; a
// failure is logged (the token is still good to use).
func (m *Manager) saveToken(ctx context.Context, p *Profile, key cacheKey, tok *Token) {
	t := tok.clone()
	t.AccessToken = bind(key.binding, tok.AccessToken)
	if err := m.store.SaveToken(ctx, p.Name, key.stored(), t); err != nil {
		m.log.Warn("oauth: save token to store", "profile", p.Name, "err", err)
	}
}

// requester returns the requester Manager uses for p: its clock for
// parsing, the real clock for assertions, OnRequest for metrics.
func (m *Manager) requester(p *Profile) requester {
	r := requester{now: m.now, wall: time.Now}
	if m.onRequest != nil {
		name := p.Name
		r.observe = func(res string, code int) { m.onRequest(name, res, code) }
	}
	return r
}

// acquire runs the profile's non-interactive path.
func (m *Manager) acquire(ctx context.Context, p *Profile, scopes []string) (*Token, error) {
	r := m.requester(p)
	switch p.grant() {
	case GrantClientCredentials:
		return r.clientCredentials(ctx, p, scopes)
	case GrantServiceAccount:
		return r.serviceAccount(ctx, p, scopes)
	}
	// One refresh-token exchange per profile at a time: two scope sets
	// refreshing together would otherwise race on rotation.
	lock := m.rtLock(p.Name)
	lock.Lock()
	defer lock.Unlock()

	stored, err := m.store.LoadRefreshToken(ctx, p.Name)
	if err != nil && !errors.Is(err, ErrNoToken) {
		return nil, fmt.Errorf("oauth: profile %s: load refresh token: %w", p.Name, err)
	}
	binding, signedIn, rt := unbindRefresh(stored)
	if binding != "" && binding != p.refreshBinding() {
		// Issued to another client, tenant or authority: not sent.
		m.log.Info("oauth: the stored refresh token was issued for other profile settings (client, tenant or authority), not used", "profile", p.Name)
		rt = ""
	}
	if rt != "" {
		tok, err := r.refresh(ctx, p, rt, scopes)
		if err == nil {
			if err := m.saveRotated(ctx, p, rt, tok, signedIn); err != nil {
				return nil, err
			}
			return tok, nil
		}
		if !loginRequired(err) {
			return nil, err
		}
		if p.grant() != GrantPassword {
			return nil, &LoginRequiredError{Profile: p.Name, Err: err, SignedIn: signedIn, Refused: m.now()}
		}
		m.log.Info("oauth: refresh token refused, using the password grant again", "profile", p.Name, "err", err)
	}
	if p.grant() != GrantPassword {
		return nil, &LoginRequiredError{Profile: p.Name}
	}
	tok, err := r.password(ctx, p, scopes)
	if err != nil {
		return nil, err
	}
	if err := m.saveRotated(ctx, p, rt, tok, m.now()); err != nil {
		return nil, err
	}
	return tok, nil
}

// saveRotated stores tok's refresh token when it differs from old, with
// the time its user signed in. It runs before the access token is cached
// or returned: a rotated refresh token that is not persisted would be
// lost, and with it the sign-in.
func (m *Manager) saveRotated(ctx context.Context, p *Profile, old string, tok *Token, signedIn time.Time) error {
	if tok.RefreshToken == "" || tok.RefreshToken == old {
		return nil
	}
	if err := m.store.SaveRefreshToken(ctx, p.Name, bindRefresh(p.refreshBinding(), signedIn, tok.RefreshToken)); err != nil {
		return &persistError{profile: p.Name, err: err}
	}
	m.log.Debug("oauth: refresh token stored", "profile", p.Name, "rotated", old != "")
	return nil
}

// persistError is a failure to store a new refresh token.
type persistError struct {
	profile string
	err     error
}

func (e *persistError) Error() string {
	return fmt.Sprintf("oauth: profile %s: store the new refresh token: %v", e.profile, e.err)
}

func (e *persistError) Unwrap() error { return e.err }

// LoginRequiredError says a delegated profile must be signed in again: no
// refresh token is stored, or the server refused it (expired, revoked).
// It matches ErrLoginRequired with errors.Is, and the server's *Error, if
// any, with errors.As.
type LoginRequiredError struct {
	Profile string
	Err     error // the refusal, nil when no refresh token was stored
	// SignedIn is when the refused refresh token's user signed in (zero:
	// not known, stored by an older version or imported); Refused is when
	// the server refused it.
	SignedIn, Refused time.Time
}

// TestingExpiry reports Google's refusal of a refresh token that died
// young ("Token has been expired or revoked." at most eight days after
// the sign-in): what apps in Google's Testing publishing status get, whose
// refresh tokens expire after 7 days.
func (e *LoginRequiredError) TestingExpiry() bool {
	var oe *Error
	if e.SignedIn.IsZero() || !errors.As(e.Err, &oe) || GoogleReasonOf(oe) != GoogleExpiredOrRevoke {
		return false
	}
	return e.Refused.Sub(e.SignedIn) <= 8*24*time.Hour
}

func (e *LoginRequiredError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("oauth: profile %s has no refresh token: sign in with `mailgate login %s`", e.Profile, e.Profile)
	}
	return fmt.Sprintf("oauth: profile %s must sign in again (`mailgate login %s`): %v", e.Profile, e.Profile, e.Err)
}

func (e *LoginRequiredError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrLoginRequired}
	}
	return []error{ErrLoginRequired, e.Err}
}

// loginRequired reports whether a refresh-token refusal means the grant is
// gone (as opposed to throttling or a network problem).
func loginRequired(err error) bool {
	var oe *Error
	if !errors.As(err, &oe) || oe.Temporary() {
		return false
	}
	return oe.Code == "invalid_grant" || oe.Code == "interaction_required"
}

// noteFailure starts a backoff after a temporary refusal.
func (m *Manager) noteFailure(p *Profile, err error) {
	var oe *Error
	if !errors.As(err, &oe) || !oe.Temporary() {
		return
	}
	wait := oe.RetryAfter
	if wait <= 0 {
		wait = DefaultServerBackoff
		if oe.Status == 429 {
			wait = DefaultThrottleBackoff
		}
	}
	until := m.now().Add(wait)
	m.mu.Lock()
	m.backoff[p.Name] = &backoffState{until: until, err: oe}
	m.mu.Unlock()
	m.log.Warn("oauth: token endpoint asked to wait", "profile", p.Name, "until", until, "err", err)
}

// Invalidate forgets p's cached access token for scopes (nil: all of the
// profile's), for a caller whose server refused it (HTTP 401, IMAP
// "AccessTokenExpired"): the next Token call fetches a new one and does not
// take the same token back from the Store.
func (m *Manager) Invalidate(profile string, scopes []string) {
	m.invalidate(profile, "", false, scopes)
}

// invalidate is Invalidate for one subject of a service account when
// bySubject is set, else for every subject.
func (m *Manager) invalidate(profile, subject string, bySubject bool, scopes []string) {
	norm := normalizeScopes(scopes)
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, t := range m.cache {
		if k.profile != profile || (scopes != nil && k.scopes != norm) || (bySubject && k.subject != subject) {
			continue
		}
		m.rejected[k] = t.AccessToken
		delete(m.cache, k)
	}
}

func (m *Manager) isRejected(key cacheKey, t *Token) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rejected[key] != "" && m.rejected[key] == t.AccessToken
}

// Accept stores a token obtained interactively (Login, DeviceLogin,
// CompleteAuthorization): first its refresh token, then the access token
// for scopes (nil: the profile's). If the refresh token cannot be stored
// the error is returned and nothing is cached.
func (m *Manager) Accept(ctx context.Context, p *Profile, scopes []string, tok *Token) error {
	if p.Name == "" {
		return errors.New("oauth: a profile used with Manager needs a name")
	}
	if tok == nil || tok.AccessToken == "" {
		return errors.New("oauth: accept: no access token")
	}
	lock := m.rtLock(p.Name)
	lock.Lock()
	err := m.saveRotated(ctx, p, "", tok, m.now())
	lock.Unlock()
	if err != nil {
		return err
	}
	key := cacheKey{profile: p.Name, subject: p.Subject, scopes: normalizeScopes(scopesOr(p, scopes)), binding: p.accessBinding()}
	t := tok.clone()
	t.RefreshToken = ""
	m.saveToken(ctx, p, key, t)
	m.mu.Lock()
	m.cache[key] = t
	delete(m.backoff, p.Name)
	m.mu.Unlock()
	return nil
}

// Login runs Login (the browser sign-in) for p and stores the result with
// Accept. The returned token carries no refresh token.
func (m *Manager) Login(ctx context.Context, p *Profile, opts LoginOptions) (*Token, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	tok, err := m.requester(p).login(ctx, p, opts)
	if err != nil {
		return nil, err
	}
	return m.accepted(ctx, p, tok)
}

// DeviceLogin runs DeviceLogin for p and stores the result with Accept.
func (m *Manager) DeviceLogin(ctx context.Context, p *Profile, prompt func(DeviceAuth)) (*Token, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	tok, err := m.requester(p).deviceLogin(ctx, p, prompt, sleepCtx)
	if err != nil {
		return nil, err
	}
	return m.accepted(ctx, p, tok)
}

func (m *Manager) accepted(ctx context.Context, p *Profile, tok *Token) (*Token, error) {
	if err := m.Accept(ctx, p, nil, tok); err != nil {
		return nil, err
	}
	t := tok.clone()
	t.RefreshToken = ""
	return t, nil
}

// margin is the refresh margin for t: the profile's (default 5 min), or a
// fifth of the lifetime when the token lives less than twice the margin, so
// that short-lived tokens are still used for most of their life.
func (m *Manager) margin(p *Profile, t *Token) time.Duration {
	mg := p.margin()
	if life := t.Lifetime(); life > 0 && life < 2*mg {
		mg = life / 5
	}
	return mg
}

// usable reports whether t is valid for longer than the margin.
func (m *Manager) usable(p *Profile, t *Token, now time.Time) bool {
	return t.AccessToken != "" && t.Expiry.Sub(now) > m.margin(p, t)
}

// fresh reports whether t needs no refresh yet: usable, and not past the
// server's refresh_in hint.
func (m *Manager) fresh(p *Profile, t *Token, now time.Time) bool {
	if !m.usable(p, t, now) {
		return false
	}
	return t.RefreshAfter.IsZero() || now.Before(t.RefreshAfter)
}

// warnOnce logs the profile's warnings the first time it is used. m.mu is
// held.
func (m *Manager) warnOnce(p *Profile) {
	if m.warned[p.Name] {
		return
	}
	m.warned[p.Name] = true
	for _, w := range p.Warnings() {
		m.log.Warn("oauth: profile warning", "profile", p.Name, "warning", w)
	}
}

func (m *Manager) rtLock(profile string) *sync.Mutex {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.rtLocks[profile]
	if l == nil {
		l = &sync.Mutex{}
		m.rtLocks[profile] = l
	}
	return l
}

// MemoryStore is a Store in memory, for tests and for callers without a
// database (tokens then live as long as the process).
type MemoryStore struct {
	mu      sync.Mutex
	tokens  map[cacheKey]*Token
	refresh map[string]string
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{tokens: map[cacheKey]*Token{}, refresh: map[string]string{}}
}

// LoadToken implements Store.
func (s *MemoryStore) LoadToken(_ context.Context, profile, key string) (*Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tokens[cacheKey{profile: profile, scopes: key}]
	if t == nil {
		return nil, ErrNoToken
	}
	return t.clone(), nil
}

// SaveToken implements Store.
func (s *MemoryStore) SaveToken(_ context.Context, profile, key string, tok *Token) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[cacheKey{profile: profile, scopes: key}] = tok.clone()
	return nil
}

// LoadRefreshToken implements Store.
func (s *MemoryStore) LoadRefreshToken(_ context.Context, profile string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refresh[profile]
	if !ok || rt == "" {
		return "", ErrNoToken
	}
	return rt, nil
}

// SaveRefreshToken implements Store.
func (s *MemoryStore) SaveRefreshToken(_ context.Context, profile, refreshToken string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refresh[profile] = refreshToken
	return nil
}
