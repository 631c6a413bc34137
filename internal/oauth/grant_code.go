package oauth

import (
	"context"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
)

// AuthorizationRequest is one authorization-code sign-in in progress
// (RFC 6749 §4.1 with PKCE S256, RFC 7636): the URL to open, and what is
// needed to check the answer and redeem the code.
type AuthorizationRequest struct {
	// URL is the authorization URL to open in a browser.
	URL string
	// State is the random value the answer must carry back.
	State string
	// Verifier is the PKCE code verifier, sent only with the code.
	Verifier string
	// RedirectURI is where the browser is sent back; the same value goes
	// with the code redemption.
	RedirectURI string
	// Scopes are the scopes asked for.
	Scopes []string
}

// String describes the request without the verifier.
func (a AuthorizationRequest) String() string {
	return fmt.Sprintf("oauth.AuthorizationRequest{url=%s redirect_uri=%s verifier=%s}", a.URL, a.RedirectURI, redacted(a.Verifier))
}

// GoString keeps %#v from printing the verifier.
func (a AuthorizationRequest) GoString() string { return a.String() }

// LogValue implements slog.LogValuer without the verifier.
func (a AuthorizationRequest) LogValue() slog.Value {
	return slog.GroupValue(slog.String("url", a.URL), slog.String("redirect_uri", a.RedirectURI))
}

// StartAuthorization prepares a sign-in: a fresh state and PKCE verifier,
// and the authorization URL for the profile's scopes with redirectURI
// (the profile's when empty). Google gets access_type=offline and
// prompt=consent so that a refresh token comes back; Microsoft v2 gets
// offline_access among the scopes for the same reason.
func StartAuthorization(p *Profile, redirectURI string) (*AuthorizationRequest, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if redirectURI == "" {
		redirectURI = p.RedirectURI
	}
	if redirectURI == "" {
		return nil, fmt.Errorf("oauth: profile %s: no redirect URI", p.Name)
	}
	e, err := p.Endpoints()
	if err != nil {
		return nil, err
	}
	if e.Authorize == "" {
		return nil, fmt.Errorf("oauth: profile %s: no authorization endpoint", p.Name)
	}
	state, err := randomString(24)
	if err != nil {
		return nil, err
	}
	verifier, err := newVerifier()
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(e.Authorize)
	if err != nil {
		return nil, fmt.Errorf("oauth: profile %s: authorization URL: %w", p.Name, err)
	}
	q := u.Query()
	q.Set("client_id", p.ClientID)
	q.Set("response_type", "code")
	q.Set("redirect_uri", redirectURI)
	q.Set("state", state)
	q.Set("code_challenge", challengeS256(verifier))
	q.Set("code_challenge_method", "S256")
	if err := setScope(p, q, p.Scopes); err != nil {
		return nil, err
	}
	switch p.provider() {
	case ProviderMicrosoft:
		q.Set("response_mode", "query")
	case ProviderGoogle:
		googleAuthorizeParams(q)
	}
	if p.Username != "" {
		q.Set("login_hint", p.Username)
	}
	u.RawQuery = q.Encode()
	return &AuthorizationRequest{
		URL:         u.String(),
		State:       state,
		Verifier:    verifier,
		RedirectURI: redirectURI,
		Scopes:      p.requestScopes(p.Scopes),
	}, nil
}

// Code checks the query of the redirect back to RedirectURI and returns the
// authorization code. A wrong state gives ErrStateMismatch; an error
// redirect (access_denied, consent refused, ...) gives an *Error with
// Endpoint "authorize".
func (a *AuthorizationRequest) Code(query url.Values) (string, error) {
	if subtle.ConstantTimeCompare([]byte(query.Get("state")), []byte(a.State)) != 1 {
		return "", ErrStateMismatch
	}
	if code := query.Get("error"); code != "" {
		return "", &Error{
			Endpoint:    "authorize",
			Code:        code,
			Description: query.Get("error_description"),
			ErrorURI:    query.Get("error_uri"),
			SubError:    query.Get("suberror"),
		}
	}
	code := query.Get("code")
	if strings.TrimSpace(code) == "" {
		return "", fmt.Errorf("oauth: authorization response has neither code nor error")
	}
	return code, nil
}

// CompleteAuthorization redeems the code with the PKCE verifier
// (RFC 6749 §4.1.3). The token normally carries a refresh token, which the
// caller stores (Manager.Accept does).
func CompleteAuthorization(ctx context.Context, p *Profile, a *AuthorizationRequest, code string) (*Token, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return direct().completeAuthorization(ctx, p, a, code)
}

func (r requester) completeAuthorization(ctx context.Context, p *Profile, a *AuthorizationRequest, code string) (*Token, error) {
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {a.RedirectURI},
		"code_verifier": {a.Verifier},
	}
	if err := setScope(p, form, p.Scopes); err != nil {
		return nil, err
	}
	return r.tokenRequest(ctx, p, form)
}
