package emulator

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Google's side of the emulator: a Workspace domain with users, a service
// account with a JSON key and domain-wide delegation, and an OAuth client
// for the authorization-code grant, served at /google/token and
// /google/authorize (google_token.go). Access tokens are "ya29." followed
// by a JWT the emulator signs; VerifyGoogleToken checks them for the
// emulated Gmail services.
const (
	// GoogleDomain is the emulated Workspace domain.
	GoogleDomain = "workspace.example"
	// GoogleServiceAccountEmail is the demo service account.
	GoogleServiceAccountEmail = "mailgate-reader@mailgate-demo.iam.gserviceaccount.com"
	// GoogleServiceAccountClientID is its numeric client ID, the one an admin
	// enters under Domain-wide delegation.
	GoogleServiceAccountClientID = "104857600000000000001"
	// GoogleClientID is the demo OAuth client (a "Desktop app" client) of
	// the authorization-code grant; its secret is in google-client-secret.txt.
	GoogleClientID = "1234567890-mailgate.apps.googleusercontent.com"
	// GoogleMailScope is Gmail's scope for IMAP, POP and SMTP.
	GoogleMailScope = "https://mail.google.com/"
	// GoogleOutsideUser is a user of the domain for whom the demo
	// delegation does not apply (an organizational unit it is not granted
	// for).
	GoogleOutsideUser = "carol@" + GoogleDomain
	// googleIssuer is the iss of the emulator's Google access tokens.
	googleIssuer = "https://accounts.google.com"
	// googleTestingRTLife is how long refresh tokens of an app in Testing
	// status live.
	googleTestingRTLife = 7 * 24 * time.Hour
)

// Google's error texts, as its token endpoint sends them.
const (
	gNotDelegated = "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested."
	gNoSuchUser   = "Invalid email or User ID"
	gBadSignature = "Invalid JWT Signature."
	gClock        = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim."
	gBadScope     = "Invalid OAuth scope or ID token audience provided."
	gExpired      = "Token has been expired or revoked."
)

// googleScopes are the scopes the emulated Google knows.
var googleScopes = []string{GoogleMailScope, "https://www.googleapis.com/auth/gmail.readonly",
	"https://www.googleapis.com/auth/gmail.modify", "https://www.googleapis.com/auth/gmail.send",
	"https://www.googleapis.com/auth/gmail.imap_admin", "openid", "email", "profile"}

// googleAccount is a service account and its keys.
type googleAccount struct {
	email, clientID   string
	keys              map[string]*rsa.PublicKey // by private_key_id
	certs             map[string][]byte         // the keys' certificates (DER), by private_key_id
	disabled, deleted bool
}

// googleRT is a refresh token of the authorization-code grant.
type googleRT struct {
	user, clientID string
	scopes         []string
	issued         time.Time
	revoked        bool
}

// googleCode is an authorization code waiting to be redeemed.
type googleCode struct {
	user, clientID, redirect, challenge, method string
	scopes                                      []string
	expires                                     time.Time
}

// googleState is the emulated Google.
type googleState struct {
	mu         sync.Mutex
	users      map[string]bool
	accounts   map[string]*googleAccount      // by client_email
	delegation map[string]map[string]bool     // client ID → scopes
	outside    map[string]bool                // users the delegation does not apply to
	secret     string                         // the OAuth client's secret
	testing    bool                           // the OAuth client's app is in Testing status
	pending    map[string]map[string][]string // authorize requests by id
	codes      map[string]*googleCode
	rts        map[string]*googleRT
	requests   map[string]int // JWT bearer requests by subject
}

// GoogleKey is the demo service account's JSON key file, as the Cloud
// console hands it out, with token_uri pointing at this emulator.
func (s *Server) GoogleKey() []byte {
	data, _ := os.ReadFile(s.GoogleKeyFile())
	return data
}

// GoogleKeyFile is where the demo service account's JSON key is.
func (s *Server) GoogleKeyFile() string { return filepath.Join(s.dir, "google-sa.json") }

// GoogleClientSecretFile holds the demo OAuth client's secret.
func (s *Server) GoogleClientSecretFile() string {
	return filepath.Join(s.dir, "google-client-secret.txt")
}

// GoogleTokenURL is the emulated Google token endpoint (the key's token_uri).
func (s *Server) GoogleTokenURL() string { return s.URL() + "/google/token" }

// GoogleAuthorizeURL is the emulated Google authorization endpoint.
func (s *Server) GoogleAuthorizeURL() string { return s.URL() + "/google/authorize" }

// setupGoogle creates the Google side: users alice, bob and carol, the
// service account with its key (reused from Dir), delegation of
// https://mail.google.com/ to it for all but carol, and the OAuth client.
func (s *Server) setupGoogle() error {
	g := &googleState{users: map[string]bool{}, accounts: map[string]*googleAccount{},
		delegation: map[string]map[string]bool{}, outside: map[string]bool{}, testing: true,
		pending: map[string]map[string][]string{}, codes: map[string]*googleCode{}, rts: map[string]*googleRT{},
		requests: map[string]int{}}
	for _, u := range []string{"alice", "bob", "carol"} {
		g.users[u+"@"+GoogleDomain] = true
	}
	g.outside[GoogleOutsideUser] = true
	key, err := loadOrCreateRSA(filepath.Join(s.dir, "google-sa-key.pem"), 2048)
	if err != nil {
		return fmt.Errorf("emulator: google service account key: %w", err)
	}
	kid, err := s.googleKeyID()
	if err != nil {
		return err
	}
	der, err := selfSigned(key, GoogleServiceAccountEmail, 3650)
	if err != nil {
		return fmt.Errorf("emulator: google key certificate: %w", err)
	}
	g.accounts[GoogleServiceAccountEmail] = &googleAccount{email: GoogleServiceAccountEmail,
		clientID: GoogleServiceAccountClientID, keys: map[string]*rsa.PublicKey{kid: &key.PublicKey}, certs: map[string][]byte{kid: der}}
	g.delegation[GoogleServiceAccountClientID] = map[string]bool{GoogleMailScope: true}
	secret, err := loadOrCreateText(s.GoogleClientSecretFile(), 24)
	if err != nil {
		return fmt.Errorf("emulator: google client secret: %w", err)
	}
	g.secret = secret
	s.google = g
	return nil
}

// googleKeyID is the private_key_id of the demo key, kept in Dir.
func (s *Server) googleKeyID() (string, error) {
	id, err := loadOrCreateText(filepath.Join(s.dir, "google-sa-key-id.txt"), 20)
	if err != nil {
		return "", fmt.Errorf("emulator: google key id: %w", err)
	}
	return id, nil
}

// writeGoogleKey writes google-sa.json for the listening URL.
func (s *Server) writeGoogleKey() error {
	keyPEM, err := os.ReadFile(filepath.Join(s.dir, "google-sa-key.pem"))
	if err != nil {
		return fmt.Errorf("emulator: google key: %w", err)
	}
	kid, err := s.googleKeyID()
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(map[string]string{
		"type": "service_account", "project_id": "mailgate-demo", "private_key_id": kid,
		"private_key": string(keyPEM), "client_email": GoogleServiceAccountEmail, "client_id": GoogleServiceAccountClientID,
		"auth_uri": s.GoogleAuthorizeURL(), "token_uri": s.GoogleTokenURL(),
		"auth_provider_x509_cert_url": s.URL() + "/google/certs",
		"client_x509_cert_url":        s.URL() + "/google/certs/" + GoogleServiceAccountEmail,
		"universe_domain":             "googleapis.com",
	}, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(s.GoogleKeyFile(), append(data, '\n'), 0o600)
}

// loadOrCreateText returns the hex text in path, creating n random bytes
// of it when missing.
func loadOrCreateText(path string, n int) (string, error) {
	if data, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(data))) > 0 {
		return strings.TrimSpace(string(data)), nil
	}
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	v := hex.EncodeToString(b)
	return v, writeFile(path, []byte(v+"\n"), 0o600)
}

// NewGoogleKey adds a key to the demo service account and returns its
// JSON key file (token_uri this emulator); deleting it later with
// DeleteGoogleKey makes Google answer "Invalid JWT Signature.".
func (s *Server) NewGoogleKey() ([]byte, string, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, "", err
	}
	kid := randomHex(20)
	cert, err := selfSigned(key, GoogleServiceAccountEmail, 3650)
	if err != nil {
		return nil, "", err
	}
	g := s.google
	g.mu.Lock()
	g.accounts[GoogleServiceAccountEmail].keys[kid] = &key.PublicKey
	g.accounts[GoogleServiceAccountEmail].certs[kid] = cert
	g.mu.Unlock()
	data, err := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "mailgate-demo", "private_key_id": kid,
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": GoogleServiceAccountEmail, "client_id": GoogleServiceAccountClientID, "token_uri": s.GoogleTokenURL(),
		"client_x509_cert_url": s.URL() + "/google/certs/" + GoogleServiceAccountEmail,
	})
	return data, kid, err
}

// DeleteGoogleKey removes a key of the demo service account.
func (s *Server) DeleteGoogleKey(kid string) {
	g := s.google
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.accounts[GoogleServiceAccountEmail].keys, kid)
	delete(g.accounts[GoogleServiceAccountEmail].certs, kid)
}

// SetGoogleDelegation replaces the scopes delegated to a client ID (none:
// the delegation is removed).
func (s *Server) SetGoogleDelegation(clientID string, scopes ...string) {
	g := s.google
	g.mu.Lock()
	defer g.mu.Unlock()
	m := map[string]bool{}
	for _, sc := range scopes {
		m[sc] = true
	}
	g.delegation[clientID] = m
}

// SetGoogleServiceAccount disables or deletes the demo service account.
func (s *Server) SetGoogleServiceAccount(disabled, deleted bool) {
	g := s.google
	g.mu.Lock()
	defer g.mu.Unlock()
	a := g.accounts[GoogleServiceAccountEmail]
	a.disabled, a.deleted = disabled, deleted
}

// SetGoogleAppTesting puts the OAuth client's app in Testing status (its
// refresh tokens expire after 7 days; the default) or In production.
func (s *Server) SetGoogleAppTesting(testing bool) {
	g := s.google
	g.mu.Lock()
	defer g.mu.Unlock()
	g.testing = testing
}

// GoogleTokenRequests counts the JWT bearer requests that asked for
// subject (the service account itself: ""), whatever their outcome.
func (s *Server) GoogleTokenRequests(subject string) int {
	g := s.google
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.requests[strings.ToLower(subject)]
}

// GoogleClaims are what an emulated Google access token grants.
type GoogleClaims struct {
	// Email is the user the token acts for (a service account's subject or
	// the signed-in user); for a service account without subject its
	// client_email.
	Email string
	// ClientID is the OAuth client or service account client ID.
	ClientID string
	// Scopes are the granted scopes.
	Scopes []string
	Expiry time.Time
}

// HasScope reports whether the token grants scope.
func (c *GoogleClaims) HasScope(scope string) bool { return slices.Contains(c.Scopes, scope) }

// ErrNotGoogleToken is VerifyGoogleToken's refusal of anything but a
// valid, unexpired Google token of this emulator.
var ErrNotGoogleToken = errors.New("emulator: not a valid Google access token")

// VerifyGoogleToken checks an access token from /google/token and returns
// what it grants. Gmail-flavoured services call it: XOAUTH2's user must
// equal Email and IMAP/SMTP need HasScope(GoogleMailScope).
func (s *Server) VerifyGoogleToken(raw string) (*GoogleClaims, error) {
	rest, ok := strings.CutPrefix(raw, "ya29.")
	if !ok {
		return nil, ErrNotGoogleToken
	}
	p, err := splitJWT(rest)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotGoogleToken, err)
	}
	if kid, _ := p.header["kid"].(string); kid != s.sign.kid || p.verify(&s.sign.key.PublicKey) != nil {
		return nil, fmt.Errorf("%w: bad signature", ErrNotGoogleToken)
	}
	if p.str("iss") != googleIssuer {
		return nil, fmt.Errorf("%w: issuer %q", ErrNotGoogleToken, p.str("iss"))
	}
	c := &GoogleClaims{Email: p.str("email"), ClientID: p.str("azp"), Scopes: strings.Fields(p.str("scope"))}
	c.Expiry, _ = p.numeric("exp")
	if !s.now().Before(c.Expiry) {
		return c, fmt.Errorf("%w: expired at %s", ErrNotGoogleToken, c.Expiry.UTC().Format(time.RFC3339))
	}
	return c, nil
}
