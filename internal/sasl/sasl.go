// Package sasl implements the two SASL mechanisms that carry an OAuth 2.0
// bearer token to a mail server: Google's and Microsoft's XOAUTH2 and the
// standard OAUTHBEARER (RFC 7628), as clients for IMAP, POP3 and SMTP, and
// as servers for mailgate's own in-process test and demo servers.
//
// The clients implement github.com/emersion/go-sasl's Client interface, so
// go-imap's Authenticate and go-smtp's Auth accept them, and get the failure
// path right: a server refuses a token by sending an error challenge (a JSON
// document with status, schemes and scope); the client must answer it (an
// empty response for XOAUTH2, a single 0x01 for OAUTHBEARER) so the server
// can finish with its tagged NO/535/-ERR, and keeps the JSON for the caller
// (AuthError), since the protocol libraries only surface the final refusal.
//
// Wire formats:
//
//	XOAUTH2:     "user=" U "\x01auth=Bearer " T "\x01\x01"
//	OAUTHBEARER: "n,a=" U ",\x01host=" H "\x01port=" P "\x01auth=Bearer " T "\x01\x01"
package sasl

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	gosasl "github.com/emersion/go-sasl"
)

// Mechanism names.
const (
	XOAuth2     = "XOAUTH2"
	OAuthBearer = "OAUTHBEARER"
)

// AuthError is the server's refusal of a token, from its error challenge.
type AuthError struct {
	Mechanism           string
	Status              string   // e.g. "401", "invalid_token"
	Schemes             string   // e.g. "bearer"
	Scope               string   // the scope the server wants
	OpenIDConfiguration string   // discovery URL the server names
	Raw                 string   // the challenge as sent (JSON)
	Extra               []string // fields we do not know, "key=value"
}

func (e *AuthError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sasl: %s refused the token", e.Mechanism)
	if e.Status != "" {
		b.WriteString(": status " + e.Status)
	}
	if e.Scope != "" {
		b.WriteString(", scope " + e.Scope)
	}
	if x := e.Explain(); x != "" {
		b.WriteString(" (" + x + ")")
	}
	return b.String()
}

// GoogleMailScope is the scope Gmail's IMAP, POP3 and SMTP accept, and
// the one its error challenge names.
const GoogleMailScope = "https://mail.google.com/"

// Explain says what the challenge means for the administrator, or ""
// when it names nothing known. Gmail sends the same challenge for any
// refused token, naming the scope it needs.
func (e *AuthError) Explain() string {
	if e.Scope == GoogleMailScope || strings.Contains(e.Scope, "mail.google.com") {
		return "the token's scopes lack " + GoogleMailScope + " or the token is not valid for this mailbox: " +
			"Gmail needs the full scope for IMAP, POP3 and SMTP (the Gmail API's gmail.modify, gmail.readonly or gmail.send are not enough); " +
			"put " + GoogleMailScope + " in the profile's scopes (and, for a service account, in its domain-wide delegation)"
	}
	return ""
}

// ParseChallenge reads a server's error challenge. A challenge that is
// not a JSON object still yields an AuthError with Raw set.
func ParseChallenge(mech string, challenge []byte) *AuthError {
	e := &AuthError{Mechanism: mech, Raw: string(challenge)}
	var m map[string]any
	if json.Unmarshal(challenge, &m) != nil {
		return e
	}
	for k, v := range m {
		var s string
		switch x := v.(type) {
		case string:
			s = x
		case float64:
			s = strconv.FormatFloat(x, 'f', -1, 64)
		default:
			b, _ := json.Marshal(x)
			s = string(b)
		}
		switch k {
		case "status":
			e.Status = s
		case "schemes":
			e.Schemes = s
		case "scope":
			e.Scope = s
		case "openid-configuration":
			e.OpenIDConfiguration = s
		default:
			e.Extra = append(e.Extra, k+"="+s)
		}
	}
	return e
}

// Client is a token-carrying SASL client that remembers a refusal.
type Client interface {
	gosasl.Client
	// AuthError is the server's error challenge, when it sent one.
	AuthError() error
}

type xoauth2 struct {
	user, token string
	noIR        bool
	sent        bool
	err         *AuthError
}

// NewXOAuth2Client returns an XOAUTH2 client for user with token.
func NewXOAuth2Client(user, token string) Client { return &xoauth2{user: user, token: token} }

// NewXOAuth2ClientNoIR is NewXOAuth2Client without an initial response:
// the token goes in a continuation line, for servers that limit the
// command line (Dovecot's submission service refuses AUTH lines over about
// 1 KB; RFC 5034 limits POP3's to 255 octets).
func NewXOAuth2ClientNoIR(user, token string) Client {
	return &xoauth2{user: user, token: token, noIR: true}
}

func (c *xoauth2) response() []byte {
	return []byte("user=" + c.user + "\x01auth=Bearer " + c.token + "\x01\x01")
}

func (c *xoauth2) Start() (string, []byte, error) {
	if c.noIR {
		return XOAuth2, nil, nil
	}
	c.sent = true
	return XOAuth2, c.response(), nil
}

func (c *xoauth2) Next(challenge []byte) ([]byte, error) {
	if !c.sent && len(challenge) == 0 {
		c.sent = true
		return c.response(), nil
	}
	// Any challenge after the response is the error JSON: keep it and answer
	// with an empty response so the server finishes the exchange.
	c.err = ParseChallenge(XOAuth2, challenge)
	return []byte{}, nil
}

func (c *xoauth2) AuthError() error {
	if c.err == nil {
		return nil
	}
	return c.err
}

type oauthBearer struct {
	user, host, token string
	port              int
	noIR, sent        bool
	err               *AuthError
}

// NewOAuthBearerClient returns an OAUTHBEARER (RFC 7628) client. host and
// port are sent as the spec suggests when set; user is the authorization
// identity (a=), which Dovecot requires.
func NewOAuthBearerClient(user, token, host string, port int) Client {
	return &oauthBearer{user: user, token: token, host: host, port: port}
}

// NewOAuthBearerClientNoIR is NewOAuthBearerClient without an initial
// response.
func NewOAuthBearerClientNoIR(user, token, host string, port int) Client {
	return &oauthBearer{user: user, token: token, host: host, port: port, noIR: true}
}

// gs2Escape escapes an authzid for the GS2 header (RFC 5801 §4).
func gs2Escape(s string) string {
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s)
}

func (c *oauthBearer) response() []byte {
	var b strings.Builder
	b.WriteString("n,")
	if c.user != "" {
		b.WriteString("a=" + gs2Escape(c.user))
	}
	b.WriteString(",\x01")
	if c.host != "" {
		b.WriteString("host=" + c.host + "\x01")
	}
	if c.port != 0 {
		b.WriteString("port=" + strconv.Itoa(c.port) + "\x01")
	}
	b.WriteString("auth=Bearer " + c.token + "\x01\x01")
	return []byte(b.String())
}

func (c *oauthBearer) Start() (string, []byte, error) {
	if c.noIR {
		return OAuthBearer, nil, nil
	}
	c.sent = true
	return OAuthBearer, c.response(), nil
}

func (c *oauthBearer) Next(challenge []byte) ([]byte, error) {
	if !c.sent && len(challenge) == 0 {
		c.sent = true
		return c.response(), nil
	}
	c.err = ParseChallenge(OAuthBearer, challenge)
	return []byte{0x01}, nil // RFC 7628 §3.2.3: the dummy response
}

func (c *oauthBearer) AuthError() error {
	if c.err == nil {
		return nil
	}
	return c.err
}

// New returns the client for mechanism ("xoauth2" or "oauthbearer", any
// case).
func New(mechanism, user, token, host string, port int) (Client, error) {
	switch strings.ToUpper(mechanism) {
	case XOAuth2, "":
		return NewXOAuth2Client(user, token), nil
	case OAuthBearer:
		return NewOAuthBearerClient(user, token, host, port), nil
	}
	return nil, fmt.Errorf("sasl: unknown mechanism %q (want xoauth2 or oauthbearer)", mechanism)
}

// ErrRefused is returned by the servers for a token their check refused.
var ErrRefused = errors.New("sasl: token refused")
