package oauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxResponseBody bounds what is read from a token endpoint.
const maxResponseBody = 1 << 20

// requester performs token-endpoint requests. now stamps the tokens it
// parses (Manager passes its clock so cache arithmetic is consistent); wall
// dates client assertions, which the server checks against its own clock.
type requester struct {
	now  func() time.Time
	wall func() time.Time
	// observe, when set, is told the outcome of every HTTP exchange.
	observe func(result string, aadsts int)
}

// direct is the requester of the package-level grant functions.
func direct() requester { return requester{now: time.Now, wall: time.Now} }

// Outcomes reported to ManagerOptions.OnRequest.
const (
	ResultOK        = "ok"        // a token came back
	ResultRefused   = "refused"   // an OAuth error that asking again will not fix
	ResultThrottled = "throttled" // 429, 5xx or temporarily_unavailable
	ResultFailed    = "failed"    // network, TLS or malformed answer
)

// classify maps a request outcome to a Result* label and an AADSTS number.
func classify(err error) (string, int) {
	if err == nil {
		return ResultOK, 0
	}
	var oe *Error
	if errors.As(err, &oe) {
		if oe.Temporary() {
			return ResultThrottled, oe.AADSTS()
		}
		return ResultRefused, oe.AADSTS()
	}
	return ResultFailed, 0
}

// authenticate adds the client's credential to a token request: a fresh
// client assertion whose aud is endpoint, or the secret in the body or as
// HTTP Basic (never both), or just client_id for a public client.
func (r requester) authenticate(p *Profile, req *http.Request, form url.Values, endpoint string) error {
	switch {
	case p.serviceAccount():
		// The assertion in the form is the credential.
	case p.Certificate != nil:
		a, err := clientAssertion(p.Certificate, p.ClientID, endpoint, r.wall())
		if err != nil {
			return err
		}
		form.Set("client_id", p.ClientID)
		form.Set("client_assertion_type", ClientAssertionType)
		form.Set("client_assertion", a)
	case p.ClientSecret != "" && p.authStyle() == AuthStyleBasic:
		setBasicAuth(req, p.ClientID, p.ClientSecret)
	case p.ClientSecret != "":
		form.Set("client_id", p.ClientID)
		form.Set("client_secret", p.ClientSecret)
	default:
		form.Set("client_id", p.ClientID)
	}
	return nil
}

// postForm sends one form POST and returns the status, headers and body.
// It never sets an Origin header: Entra refuses client credentials in its
// presence.
func (r requester) postForm(ctx context.Context, p *Profile, endpoint string, form url.Values, authenticate bool) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, nil)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("oauth: token request to %s: %w", endpoint, err)
	}
	if authenticate {
		if err := r.authenticate(p, req, form, endpoint); err != nil {
			return 0, nil, nil, err
		}
	} else {
		form.Set("client_id", p.ClientID)
	}
	body := form.Encode()
	req.Body = io.NopCloser(strings.NewReader(body))
	req.ContentLength = int64(len(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if p.provider() == ProviderMicrosoft {
		if id, err := newUUID(); err == nil {
			req.Header.Set("client-request-id", id)
			req.Header.Set("return-client-request-id", "true")
		}
	}
	resp, err := p.httpClient().Do(req)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("oauth: POST %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody+1))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("oauth: read answer of %s: %w", endpoint, err)
	}
	if len(data) > maxResponseBody {
		return 0, nil, nil, fmt.Errorf("oauth: answer of %s is larger than %d bytes", endpoint, maxResponseBody)
	}
	return resp.StatusCode, resp.Header, data, nil
}

// tokenRequest POSTs a grant to the token endpoint and parses the answer.
func (r requester) tokenRequest(ctx context.Context, p *Profile, form url.Values) (*Token, error) {
	e, err := p.Endpoints()
	if err != nil {
		return nil, err
	}
	status, header, body, err := r.postForm(ctx, p, e.Token, form, true)
	var tok *Token
	if err == nil {
		tok, err = parseTokenResponse(status, header, body, r.now())
	}
	if r.observe != nil {
		res, code := classify(err)
		r.observe(res, code)
	}
	if err != nil {
		return nil, err
	}
	return tok, nil
}

// scopesOr returns scopes, or the profile's when none are given.
func scopesOr(p *Profile, scopes []string) []string {
	if len(scopes) == 0 {
		return p.Scopes
	}
	return scopes
}

// ClientCredentials gets an app-only token (RFC 6749 §4.4) with the
// profile's secret or certificate. scopes nil means the profile's.
func ClientCredentials(ctx context.Context, p *Profile, scopes []string) (*Token, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return direct().clientCredentials(ctx, p, scopes)
}

func (r requester) clientCredentials(ctx context.Context, p *Profile, scopes []string) (*Token, error) {
	if !p.confidential() {
		return nil, fmt.Errorf("oauth: profile %s: client_credentials needs a client secret or certificate", p.Name)
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	if err := setScope(p, form, scopesOr(p, scopes)); err != nil {
		return nil, err
	}
	return r.tokenRequest(ctx, p, form)
}

// Password runs the resource-owner password grant (RFC 6749 §4.3) with the
// profile's username and password. Microsoft deprecates it and MFA blocks
// it (Profile.Warnings says so); it is here for mailboxes that have no
// other way yet.
func Password(ctx context.Context, p *Profile, scopes []string) (*Token, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return direct().password(ctx, p, scopes)
}

func (r requester) password(ctx context.Context, p *Profile, scopes []string) (*Token, error) {
	if p.Username == "" || p.Password == "" {
		return nil, fmt.Errorf("oauth: profile %s: the password grant needs a username and a password", p.Name)
	}
	form := url.Values{
		"grant_type": {"password"},
		"username":   {p.Username},
		"password":   {p.Password},
	}
	if err := setScope(p, form, scopesOr(p, scopes)); err != nil {
		return nil, err
	}
	return r.tokenRequest(ctx, p, form)
}

// Refresh redeems a refresh token (RFC 6749 §6). When the answer carries no
// refresh token (Google never rotates), the returned Token keeps the one
// given, so RefreshToken != refreshToken means it was rotated and the new
// one must be stored.
func Refresh(ctx context.Context, p *Profile, refreshToken string, scopes []string) (*Token, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return direct().refresh(ctx, p, refreshToken, scopes)
}

func (r requester) refresh(ctx context.Context, p *Profile, refreshToken string, scopes []string) (*Token, error) {
	if refreshToken == "" {
		return nil, fmt.Errorf("oauth: profile %s: no refresh token: %w", p.Name, ErrLoginRequired)
	}
	form := url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {refreshToken},
	}
	if err := setScope(p, form, scopesOr(p, scopes)); err != nil {
		return nil, err
	}
	tok, err := r.tokenRequest(ctx, p, form)
	if err != nil {
		return nil, err
	}
	if tok.RefreshToken == "" {
		tok.RefreshToken = refreshToken
	}
	return tok, nil
}
