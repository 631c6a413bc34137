package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Token is an access token with what came with it from the token endpoint.
//
// Only the AccessToken field gives the bearer value; String, GoString and
// LogValue print a redaction, so a Token passed to a logger or a format verb
// never leaks it.
type Token struct {
	// AccessToken is the bearer value sent to the resource (IMAP XOAUTH2,
	// Graph Authorization header).
	AccessToken string
	// TokenType is the token_type answered, normally "Bearer".
	TokenType string
	// RefreshToken is the refresh token returned with this token, if any.
	// Tokens handed out by Manager never carry it: it lives in the Store.
	RefreshToken string
	// IssuedAt is when the response was received (by the clock of the
	// caller that parsed it). Expiry minus IssuedAt is the lifetime.
	IssuedAt time.Time
	// Expiry is when the access token stops being valid, from expires_in
	// (or expires_on when expires_in is absent).
	Expiry time.Time
	// ExtExpiry is Microsoft's ext_expires_in: how long the resource may
	// still accept the token during an identity-platform outage. Zero when
	// not sent.
	ExtExpiry time.Time
	// RefreshAfter is Microsoft's refresh_in hint: refresh proactively after
	// this instant. Zero when not sent.
	RefreshAfter time.Time
	// Scope is the space-separated list of granted scopes, when the server
	// said (v2 endpoints, Google).
	Scope string
	// Resource is the v1 endpoint's resource field.
	Resource string
	// IDToken is the OpenID Connect id_token, when openid was requested.
	IDToken string
}

// Bearer is the one hook a client of a mail server or API has on tokens:
// Token gives a current access token, Invalidate drops it after the server
// refused it (HTTP 401, IMAP "AccessTokenExpired", an SMTP AUTH refusal) so
// the next Token asks the token endpoint again. Manager.Bearer implements it
// for a profile and scopes. graph, mailbox, agent and outbox take it through
// consumer interfaces of the same methods, so they need not import oauth.
type Bearer interface {
	Token(ctx context.Context) (string, error)
	Invalidate()
}

// Scopes returns the granted scopes as a list.
func (t *Token) Scopes() []string { return strings.Fields(t.Scope) }

// Lifetime is Expiry minus IssuedAt, the lifetime the server granted.
func (t *Token) Lifetime() time.Duration { return t.Expiry.Sub(t.IssuedAt) }

// clone returns a copy that the caller may change without touching t.
func (t *Token) clone() *Token {
	if t == nil {
		return nil
	}
	c := *t
	return &c
}

// String describes the token without its secrets.
func (t Token) String() string {
	var b strings.Builder
	b.WriteString("oauth.Token{type=")
	b.WriteString(t.TokenType)
	b.WriteString(" access_token=")
	b.WriteString(redacted(t.AccessToken))
	if t.RefreshToken != "" {
		b.WriteString(" refresh_token=")
		b.WriteString(redacted(t.RefreshToken))
	}
	if t.IDToken != "" {
		b.WriteString(" id_token=")
		b.WriteString(redacted(t.IDToken))
	}
	fmt.Fprintf(&b, " expiry=%s", t.Expiry.UTC().Format(time.RFC3339))
	if t.Scope != "" {
		fmt.Fprintf(&b, " scope=%q", t.Scope)
	}
	if t.Resource != "" {
		fmt.Fprintf(&b, " resource=%q", t.Resource)
	}
	b.WriteString("}")
	return b.String()
}

// GoString keeps %#v from printing the fields.
func (t Token) GoString() string { return t.String() }

// LogValue implements slog.LogValuer with the secrets redacted.
func (t Token) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("type", t.TokenType),
		slog.String("access_token", redacted(t.AccessToken)),
		slog.Time("expiry", t.Expiry),
	}
	if t.RefreshToken != "" {
		attrs = append(attrs, slog.String("refresh_token", redacted(t.RefreshToken)))
	}
	if t.Scope != "" {
		attrs = append(attrs, slog.String("scope", t.Scope))
	}
	return slog.GroupValue(attrs...)
}

// redacted describes a secret by its presence only.
func redacted(s string) string {
	if s == "" {
		return `""`
	}
	return "***"
}

// tokenJSON is the union of the token-response fields of Microsoft's v2 and
// v1 endpoints, Google and RFC 6749 §5.1 / §5.2 (errors share the object).
type tokenJSON struct {
	AccessToken  string     `json:"access_token"`
	TokenType    string     `json:"token_type"`
	RefreshToken string     `json:"refresh_token"`
	ExpiresIn    flexNumber `json:"expires_in"`
	ExpiresOn    flexTime   `json:"expires_on"`
	ExtExpiresIn flexNumber `json:"ext_expires_in"`
	RefreshIn    flexNumber `json:"refresh_in"`
	Scope        string     `json:"scope"`
	Resource     string     `json:"resource"`
	IDToken      string     `json:"id_token"`

	errorJSON
}

// flexNumber reads a count of seconds sent as a JSON number (v2, Google) or
// a string (v1). Set is false when the field was absent, null or unusable.
type flexNumber struct {
	Value int64
	Set   bool
}

func (n *flexNumber) UnmarshalJSON(b []byte) error {
	*n = flexNumber{}
	s := strings.TrimSpace(string(b))
	if s == "null" || s == "" {
		return nil
	}
	if strings.HasPrefix(s, `"`) {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return nil
		}
		s = strings.TrimSpace(str)
	}
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		*n = flexNumber{Value: v, Set: true}
		return nil
	}
	// 3599.0 and the like.
	if f, err := strconv.ParseFloat(s, 64); err == nil && f > -1e15 && f < 1e15 {
		*n = flexNumber{Value: int64(f), Set: true}
	}
	return nil
}

// flexTime reads expires_on: unix seconds as a number or a string, or (as
// ADFS sends) a date string.
type flexTime struct {
	Time time.Time
}

var expiresOnLayouts = []string{
	time.RFC3339,
	"1/2/2006 3:04:05 PM -07:00",
	"1/2/2006 3:04:05 PM",
	"2006-01-02 15:04:05Z",
}

func (t *flexTime) UnmarshalJSON(b []byte) error {
	*t = flexTime{}
	var n flexNumber
	_ = n.UnmarshalJSON(b)
	if n.Set {
		if n.Value > 0 && n.Value < 1e11 {
			t.Time = time.Unix(n.Value, 0)
		}
		return nil
	}
	var s string
	if json.Unmarshal(b, &s) != nil {
		return nil
	}
	for _, layout := range expiresOnLayouts {
		if v, err := time.Parse(layout, strings.TrimSpace(s)); err == nil {
			t.Time = v
			return nil
		}
	}
	return nil
}

// maxLifetime bounds expires_in so absurd values cannot overflow time
// arithmetic; ten years is far beyond any real token.
const maxLifetime = 10 * 365 * 24 * time.Hour

// parseTokenResponse turns a token-endpoint answer into a Token or an error.
// A non-2xx status or an "error" member gives *Error; a 2xx answer without
// access_token or without any expiry is a malformed response.
func parseTokenResponse(status int, header http.Header, body []byte, now time.Time) (*Token, error) {
	var tj tokenJSON
	jsonOK := decodeTokenBody(header, body, &tj)
	if status < 200 || status > 299 || tj.Error != "" {
		return nil, newError(status, header, body, jsonOK, &tj.errorJSON, now)
	}
	if !jsonOK {
		return nil, fmt.Errorf("oauth: malformed token response (HTTP %d, %s): %w", status, describeBody(header, body), ErrMalformedResponse)
	}
	if tj.AccessToken == "" {
		return nil, fmt.Errorf("oauth: token response has no access_token: %w", ErrMalformedResponse)
	}
	t := &Token{
		AccessToken:  tj.AccessToken,
		TokenType:    tj.TokenType,
		RefreshToken: tj.RefreshToken,
		IssuedAt:     now,
		Scope:        tj.Scope,
		Resource:     tj.Resource,
		IDToken:      tj.IDToken,
	}
	if t.TokenType == "" {
		t.TokenType = "Bearer"
	}
	switch {
	case tj.ExpiresIn.Set && tj.ExpiresIn.Value > 0:
		t.Expiry = now.Add(seconds(tj.ExpiresIn.Value))
	case !tj.ExpiresOn.Time.IsZero():
		t.Expiry = tj.ExpiresOn.Time
	default:
		return nil, fmt.Errorf("oauth: token response has neither a positive expires_in nor expires_on: %w", ErrMalformedResponse)
	}
	if !t.Expiry.After(now) {
		return nil, fmt.Errorf("oauth: token response expires at %s, not after now (%s): %w",
			t.Expiry.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), ErrMalformedResponse)
	}
	if tj.ExtExpiresIn.Set && tj.ExtExpiresIn.Value > 0 {
		t.ExtExpiry = now.Add(seconds(tj.ExtExpiresIn.Value))
	}
	if tj.RefreshIn.Set && tj.RefreshIn.Value > 0 {
		t.RefreshAfter = now.Add(seconds(tj.RefreshIn.Value))
	}
	return t, nil
}

// seconds converts a server-sent count, bounded by maxLifetime.
func seconds(v int64) time.Duration {
	if v > int64(maxLifetime/time.Second) {
		return maxLifetime
	}
	return time.Duration(v) * time.Second
}

// decodeTokenBody fills tj from a JSON body or, for servers that answer
// application/x-www-form-urlencoded (RFC 6749 predecessors, some generic
// providers), from a form body. It reports whether the body was understood.
func decodeTokenBody(header http.Header, body []byte, tj *tokenJSON) bool {
	trimmed := strings.TrimSpace(string(body))
	if strings.HasPrefix(trimmed, "{") {
		err := json.Unmarshal(body, tj)
		if err == nil {
			return true
		}
		// A member of an unexpected type (error_codes as strings, say) is
		// skipped by encoding/json, which fills the rest: keep that.
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return true
		}
		*tj = tokenJSON{}
		return false
	}
	mt, _, _ := mime.ParseMediaType(header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" {
		return false
	}
	v, err := url.ParseQuery(trimmed)
	if err != nil {
		return false
	}
	tj.AccessToken = v.Get("access_token")
	tj.TokenType = v.Get("token_type")
	tj.RefreshToken = v.Get("refresh_token")
	tj.Scope = v.Get("scope")
	tj.IDToken = v.Get("id_token")
	_ = tj.ExpiresIn.UnmarshalJSON([]byte(strconv.Quote(v.Get("expires_in"))))
	tj.Error = v.Get("error")
	tj.ErrorDescription = v.Get("error_description")
	tj.ErrorURI = v.Get("error_uri")
	return tj.AccessToken != "" || tj.Error != ""
}

// describeBody names a body that could not be parsed, without echoing much of
// it (it might be an HTML page or a proxy's login form).
func describeBody(header http.Header, body []byte) string {
	ct := header.Get("Content-Type")
	if ct == "" {
		ct = "no content type"
	}
	return fmt.Sprintf("%s, %d bytes", ct, len(body))
}
