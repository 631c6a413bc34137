package oauth

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ClientAssertionType is the client_assertion_type of a JWT client
// assertion (RFC 7523 §2.2).
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionLifetime is exp − nbf; Microsoft recommends 5 to 10 minutes.
const assertionLifetime = 10 * time.Minute

// signerMethod is a golang-jwt signing method over any crypto.Signer with an
// RSA public key, so keys held in an HSM or agent work as well as
// *rsa.PrivateKey. Only signing is needed here.
type signerMethod struct {
	alg string
	pss bool
}

func (m signerMethod) Alg() string { return m.alg }

func (m signerMethod) Verify(string, []byte, any) error {
	return errors.New("oauth: client assertion method only signs")
}

func (m signerMethod) Sign(signingString string, key any) ([]byte, error) {
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("oauth: signing key is %T, not a crypto.Signer", key)
	}
	digest := sha256.Sum256([]byte(signingString))
	var opts crypto.SignerOpts = crypto.SHA256
	if m.pss {
		// RFC 7518 §3.5: the salt is as long as the hash.
		opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
	}
	return s.Sign(rand.Reader, digest[:], opts)
}

// clientAssertion signs a fresh assertion for one request to audience (the
// exact token URL POSTed to): header alg PS256 + x5t#S256 (or RS256 + x5t)
// and typ JWT; claims aud, iss = sub = client id, a random UUIDv4 jti,
// nbf = now and exp = now + 10 minutes.
func clientAssertion(c *ClientCertificate, clientID, audience string, now time.Time) (string, error) {
	tp := Thumbprints(c.Cert)
	method := signerMethod{alg: AlgPS256, pss: true}
	if c.alg() == AlgRS256 {
		method = signerMethod{alg: AlgRS256}
	}
	jti, err := newUUID()
	if err != nil {
		return "", err
	}
	// MapClaims rather than RegisteredClaims: golang-jwt marshals a
	// one-element audience as an array by default, and Entra refuses an
	// array aud (AADSTS50027).
	claims := jwt.MapClaims{
		"aud": audience,
		"iss": clientID,
		"sub": clientID,
		"jti": jti,
		"nbf": now.Unix(),
		"exp": now.Add(assertionLifetime).Unix(),
	}
	tok := jwt.NewWithClaims(method, claims)
	tok.Header["typ"] = "JWT"
	if method.alg == AlgPS256 {
		tok.Header["x5t#S256"] = tp.X5TS256
	} else {
		tok.Header["x5t"] = tp.X5T
	}
	signed, err := tok.SignedString(c.Key)
	if err != nil {
		return "", fmt.Errorf("oauth: sign client assertion: %w", err)
	}
	return signed, nil
}

// newUUID returns a random (version 4) UUID.
func newUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("oauth: random: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}
