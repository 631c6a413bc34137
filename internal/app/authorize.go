package app

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailgate/mailgate/internal/oauth"
)

// consoleAuth runs authorization-code sign-ins started from the console:
// the request (state, PKCE verifier) waits here, keyed by its state, for
// the browser to come back; the state is single-use and expires after 10
// minutes.
type consoleAuth struct {
	current *atomic.Pointer[generation]
	mu      sync.Mutex
	pending map[string]*pendingAuth
}

type pendingAuth struct {
	profile string
	req     *oauth.AuthorizationRequest
	expires time.Time
}

func (a *consoleAuth) profile(name string) (*oauth.Profile, *parts, error) {
	g := a.current.Load()
	if g == nil {
		return nil, nil, errors.New("mailgate is starting")
	}
	p, ok := g.rt.profiles[name]
	if !ok {
		return nil, nil, fmt.Errorf("no profile %q", name)
	}
	if p.Grant != oauth.GrantAuthorizationCode {
		return nil, nil, fmt.Errorf("profile %s uses %s, not authorization_code: nobody signs in for it", name, p.Grant)
	}
	return p, g.rt, nil
}

// Start prepares a sign-in for a profile and returns the URL to send the
// browser to. redirectURI "" is a sign-in finished by pasting the address
// back: the profile's redirect_uri, else http://localhost.
func (a *consoleAuth) Start(_ context.Context, name, redirectURI string) (string, error) {
	p, _, err := a.profile(name)
	if err != nil {
		return "", err
	}
	if redirectURI == "" && p.RedirectURI == "" {
		redirectURI = "http://localhost" // a paste-back sign-in: any loopback address
	}
	req, err := oauth.StartAuthorization(p, redirectURI)
	if err != nil {
		return "", err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	for st, pa := range a.pending {
		if now.After(pa.expires) {
			delete(a.pending, st)
		}
	}
	a.pending[req.State] = &pendingAuth{profile: name, req: req, expires: now.Add(10 * time.Minute)}
	return req.URL, nil
}

// Finish checks the redirect's state, redeems the code with the PKCE
// verifier and keeps the tokens (the refresh token sealed in the store).
func (a *consoleAuth) Finish(ctx context.Context, query url.Values) (string, error) {
	a.mu.Lock()
	pa, ok := a.pending[query.Get("state")]
	delete(a.pending, query.Get("state"))
	a.mu.Unlock()
	if !ok || time.Now().After(pa.expires) {
		return "", errors.New("this sign-in is unknown or expired: start it again with Authorize")
	}
	code, err := pa.req.Code(query)
	if err != nil {
		return "", err
	}
	p, rt, err := a.profile(pa.profile)
	if err != nil {
		return "", err
	}
	tok, err := oauth.CompleteAuthorization(ctx, p, pa.req, code)
	if err != nil {
		if ex, ok := oauth.ExplainError(err, p); ok && ex.Fix != "" {
			return "", fmt.Errorf("%w — fix: %s", err, ex.Fix)
		}
		return "", err
	}
	if err := rt.mgr.Accept(ctx, p, nil, tok); err != nil {
		return "", err
	}
	return pa.profile, nil
}
