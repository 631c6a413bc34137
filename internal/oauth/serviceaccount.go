package oauth

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// JWTBearerGrantType is the grant_type of an RFC 7523 §2.1 authorization
// grant: a signed JWT exchanged for an access token (Google's service
// accounts).
const JWTBearerGrantType = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// serviceAccountLifetime is exp − iat of a service-account assertion;
// Google refuses more than an hour.
const serviceAccountLifetime = time.Hour

// ServiceAccountKey is a Google service account's JSON key file, the one
// the Cloud console's Keys › Add key › JSON hands out. Its private key
// signs the assertions of the service_account grant; ClientID (numeric) is
// what a Workspace admin enters for domain-wide delegation. String and
// LogValue leave the private key out.
type ServiceAccountKey struct {
	Type         string `json:"type"`
	ProjectID    string `json:"project_id"`
	PrivateKeyID string `json:"private_key_id"`
	PrivateKey   string `json:"private_key"`
	ClientEmail  string `json:"client_email"`
	ClientID     string `json:"client_id"`
	TokenURI     string `json:"token_uri"`
	// ClientX509CertURL is where Google publishes the account's key
	// certificates (ServiceAccountKeyCreated reads the key's date there).
	ClientX509CertURL string `json:"client_x509_cert_url"`

	key *rsa.PrivateKey
}

// ParseServiceAccountKey reads a service account's JSON key: type
// service_account, a PKCS#8 (or PKCS#1) PEM RSA private_key, client_email
// and token_uri are required.
func ParseServiceAccountKey(data []byte) (*ServiceAccountKey, error) {
	var k ServiceAccountKey
	if err := json.Unmarshal(data, &k); err != nil {
		return nil, fmt.Errorf("oauth: service account key: not JSON: %w", err)
	}
	var probs []string
	if k.Type != "service_account" {
		probs = append(probs, fmt.Sprintf("type is %q, not service_account (an OAuth client's JSON is not a service account key)", k.Type))
	}
	if k.ClientEmail == "" {
		probs = append(probs, "client_email is missing")
	}
	if k.TokenURI == "" {
		probs = append(probs, "token_uri is missing")
	} else if err := checkEndpointURL(k.TokenURI); err != nil {
		probs = append(probs, "token_uri: "+err.Error())
	}
	key, err := firstRSAKey([]byte(k.PrivateKey))
	if err != nil {
		probs = append(probs, "private_key: "+strings.TrimPrefix(err.Error(), "oauth: "))
	}
	if len(probs) > 0 {
		return nil, fmt.Errorf("oauth: service account key: %s", strings.Join(probs, "; "))
	}
	k.key = key
	return &k, nil
}

// String names the service account without its private key.
func (k ServiceAccountKey) String() string {
	return fmt.Sprintf("oauth.ServiceAccountKey{client_email=%s client_id=%s private_key_id=%s}", k.ClientEmail, k.ClientID, k.PrivateKeyID)
}

// GoString keeps %#v from printing the private key.
func (k ServiceAccountKey) GoString() string { return k.String() }

// LogValue implements slog.LogValuer without the private key.
func (k ServiceAccountKey) LogValue() slog.Value {
	return slog.GroupValue(slog.String("client_email", k.ClientEmail), slog.String("client_id", k.ClientID),
		slog.String("private_key_id", k.PrivateKeyID))
}

// serviceAccountAssertion signs the RFC 7523 assertion Google's token
// endpoint takes: RS256 with kid = private_key_id; iss = client_email, sub
// = the user impersonated (omitted when empty: the service account itself),
// scope space-separated inside the claims, aud = the token URL, iat = now
// and exp = iat + 1 hour.
func serviceAccountAssertion(k *ServiceAccountKey, subject, audience string, scopes []string, now time.Time) (string, error) {
	claims := jwt.MapClaims{
		"iss":   k.ClientEmail,
		"scope": strings.Join(scopes, " "),
		"aud":   audience,
		"iat":   now.Unix(),
		"exp":   now.Add(serviceAccountLifetime).Unix(),
	}
	if subject != "" {
		claims["sub"] = subject
	}
	tok := jwt.NewWithClaims(signerMethod{alg: AlgRS256}, claims)
	tok.Header["typ"] = "JWT"
	if k.PrivateKeyID != "" {
		tok.Header["kid"] = k.PrivateKeyID
	}
	signed, err := tok.SignedString(k.key)
	if err != nil {
		return "", fmt.Errorf("oauth: sign service account assertion: %w", err)
	}
	return signed, nil
}

// ServiceAccountToken gets a token for p's service account acting as p's
// Subject (RFC 7523 JWT bearer grant, Google's domain-wide delegation).
// scopes nil means the profile's.
func ServiceAccountToken(ctx context.Context, p *Profile, scopes []string) (*Token, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return direct().serviceAccount(ctx, p, scopes)
}

func (r requester) serviceAccount(ctx context.Context, p *Profile, scopes []string) (*Token, error) {
	e, err := p.Endpoints()
	if err != nil {
		return nil, err
	}
	a, err := serviceAccountAssertion(p.ServiceAccount, p.Subject, e.Token, dedupe(scopesOr(p, scopes)), r.wall())
	if err != nil {
		return nil, err
	}
	form := url.Values{"grant_type": {JWTBearerGrantType}, "assertion": {a}}
	return r.tokenRequest(ctx, p, form)
}

// ForSubject returns the profile a mailbox or sender of user uses: for a
// service_account profile without a fixed Subject, a copy acting for user
// (Manager caches its tokens apart from other users'); else p itself.
func (p *Profile) ForSubject(user string) *Profile {
	if !p.serviceAccount() || p.Subject != "" || user == "" {
		return p
	}
	c := *p
	c.Subject = user
	return &c
}

// WithSubject returns a copy of a service_account profile acting for user
// (mailgate token --subject); other grants have no subject to set.
func (p *Profile) WithSubject(user string) (*Profile, error) {
	if !p.serviceAccount() {
		return nil, fmt.Errorf("oauth: profile %s: a subject applies to grant service_account only, not %s", p.Name, p.grant())
	}
	c := *p
	c.Subject = user
	return &c, nil
}

// ServiceAccountKeyCreated returns when p's service account key was
// created: Google's key file carries no date, but the key's certificate,
// published at the file's client_x509_cert_url as a JSON object of PEM
// certificates by private_key_id, starts on that day.
func ServiceAccountKeyCreated(ctx context.Context, p *Profile) (time.Time, error) {
	k := p.ServiceAccount
	if k == nil || k.ClientX509CertURL == "" {
		return time.Time{}, errors.New("oauth: the key file has no client_x509_cert_url")
	}
	if err := checkEndpointURL(k.ClientX509CertURL); err != nil {
		return time.Time{}, fmt.Errorf("oauth: client_x509_cert_url: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.ClientX509CertURL, nil)
	if err != nil {
		return time.Time{}, fmt.Errorf("oauth: key certificates: %w", err)
	}
	resp, err := p.httpClient().Do(req)
	if err != nil {
		return time.Time{}, fmt.Errorf("oauth: key certificates: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return time.Time{}, fmt.Errorf("oauth: key certificates: GET %s: HTTP %d", k.ClientX509CertURL, resp.StatusCode)
	}
	var certs map[string]string
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponseBody)).Decode(&certs); err != nil {
		return time.Time{}, fmt.Errorf("oauth: key certificates: %w", err)
	}
	block, _ := pem.Decode([]byte(certs[k.PrivateKeyID]))
	if block == nil {
		return time.Time{}, fmt.Errorf("oauth: Google lists no certificate for key %s: it was deleted", k.PrivateKeyID)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return time.Time{}, fmt.Errorf("oauth: certificate of key %s: %w", k.PrivateKeyID, err)
	}
	return cert.NotBefore, nil
}
