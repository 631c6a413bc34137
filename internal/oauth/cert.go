package oauth

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"time"
)

// Signing algorithms of a client assertion.
const (
	// AlgPS256 is RSASSA-PSS with SHA-256, sent with an x5t#S256 header:
	// what Microsoft documents today and MSAL sends. The default.
	AlgPS256 = "PS256"
	// AlgRS256 is RSASSA-PKCS1-v1_5 with SHA-256, sent with an x5t (SHA-1)
	// header: the older documented form, still accepted, and the one ADFS
	// and some tenants insist on.
	AlgRS256 = "RS256"
)

// MinRSABits is the smallest RSA key accepted for a client certificate.
const MinRSABits = 2048

// ClientCertificate is a certificate registered on the app and the private
// key that signs client assertions with it.
type ClientCertificate struct {
	// Cert is the certificate uploaded to the app registration.
	Cert *x509.Certificate
	// Key signs assertions; its public key must be Cert's. An RSA key
	// (*rsa.PrivateKey, or an HSM signer with an RSA public key).
	Key crypto.Signer
	// Alg is PS256 (default) or RS256.
	Alg string
}

// alg returns the effective algorithm.
func (c *ClientCertificate) alg() string {
	if c.Alg == "" {
		return AlgPS256
	}
	return strings.ToUpper(c.Alg)
}

// check verifies the certificate, the key and the algorithm belong together.
func (c *ClientCertificate) check() error {
	if c.Cert == nil {
		return errors.New("no certificate")
	}
	if c.Key == nil {
		return errors.New("no private key")
	}
	switch c.alg() {
	case AlgPS256, AlgRS256:
	default:
		return fmt.Errorf("algorithm %q is not PS256 or RS256", c.Alg)
	}
	certKey, ok := rsaPublicKey(c)
	if !ok {
		return fmt.Errorf("certificate key is %T; Entra ID client certificates must be RSA", c.Cert.PublicKey)
	}
	if certKey.N.BitLen() < MinRSABits {
		return fmt.Errorf("RSA key has %d bits; at least %d are required", certKey.N.BitLen(), MinRSABits)
	}
	pub, ok := c.Key.Public().(*rsa.PublicKey)
	if !ok || !pub.Equal(certKey) {
		return errors.New("the private key does not belong to the certificate")
	}
	return nil
}

// String describes the certificate by subject and thumbprint, never the key.
func (c ClientCertificate) String() string {
	if c.Cert == nil {
		return "oauth.ClientCertificate(empty)"
	}
	return fmt.Sprintf("oauth.ClientCertificate{subject=%q thumbprint=%s alg=%s not_after=%s}",
		c.Cert.Subject.String(), Thumbprints(c.Cert).SHA1, c.alg(), c.Cert.NotAfter.UTC().Format(time.DateOnly))
}

// GoString keeps %#v from printing the key.
func (c ClientCertificate) GoString() string { return c.String() }

// LogValue implements slog.LogValuer without the key.
func (c ClientCertificate) LogValue() slog.Value {
	if c.Cert == nil {
		return slog.StringValue("<empty>")
	}
	return slog.GroupValue(
		slog.String("subject", c.Cert.Subject.String()),
		slog.String("thumbprint", Thumbprints(c.Cert).SHA1),
		slog.String("alg", c.alg()),
	)
}

// CertThumbprints are the ways a certificate is named.
type CertThumbprints struct {
	// SHA1 is the upper-case hex SHA-1 of the DER certificate, as the Azure
	// portal shows it under Certificates & secrets.
	SHA1 string
	// X5T is base64url(SHA-1), the x5t header of RS256 assertions.
	X5T string
	// X5TS256 is base64url(SHA-256), the x5t#S256 header of PS256 ones.
	X5TS256 string
}

// Thumbprints computes the certificate's thumbprints over its DER bytes.
func Thumbprints(cert *x509.Certificate) CertThumbprints {
	s1 := sha1.Sum(cert.Raw)
	s256 := sha256.Sum256(cert.Raw)
	return CertThumbprints{
		SHA1:    strings.ToUpper(hex.EncodeToString(s1[:])),
		X5T:     base64.RawURLEncoding.EncodeToString(s1[:]),
		X5TS256: base64.RawURLEncoding.EncodeToString(s256[:]),
	}
}

// LoadClientCertificate reads a PEM certificate and its PEM RSA private key
// (PKCS#1 "RSA PRIVATE KEY" or PKCS#8 "PRIVATE KEY"). Both may sit in one
// file: pass it as both arguments, or keyPEM nil. alg is PS256 (""), or
// RS256. Keys under 2048 bits, non-RSA keys, encrypted keys and a key that
// is not the certificate's are refused with a message saying so.
func LoadClientCertificate(certPEM, keyPEM []byte, alg string) (*ClientCertificate, error) {
	if keyPEM == nil {
		keyPEM = certPEM
	}
	cert, err := firstCertificate(certPEM)
	if err != nil {
		return nil, err
	}
	key, err := firstRSAKey(keyPEM)
	if err != nil {
		return nil, err
	}
	c := &ClientCertificate{Cert: cert, Key: key, Alg: alg}
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("oauth: client certificate %s: %w", Thumbprints(cert).SHA1, err)
	}
	return c, nil
}

func firstCertificate(data []byte) (*x509.Certificate, error) {
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("oauth: no PEM CERTIFICATE block in the certificate file")
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("oauth: parse certificate: %w", err)
		}
		return cert, nil
	}
}

func firstRSAKey(data []byte) (*rsa.PrivateKey, error) {
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("oauth: no PEM private key (RSA PRIVATE KEY or PRIVATE KEY) in the key file")
		}
		switch b.Type {
		case "RSA PRIVATE KEY":
			if _, encrypted := b.Headers["DEK-Info"]; encrypted {
				return nil, errors.New("oauth: the private key is encrypted; decrypt it first (openssl rsa -in key.pem -out key-plain.pem)")
			}
			k, err := x509.ParsePKCS1PrivateKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("oauth: parse PKCS#1 RSA private key: %w", err)
			}
			return k, nil
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("oauth: parse PKCS#8 private key: %w", err)
			}
			rk, ok := k.(*rsa.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("oauth: the private key is %T; it must be RSA (Entra ID client certificates, Google service account keys)", k)
			}
			return rk, nil
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("oauth: the private key is encrypted (PKCS#8); decrypt it first (openssl pkey -in key.pem -out key-plain.pem)")
		case "EC PRIVATE KEY":
			return nil, errors.New("oauth: the private key is an EC key; it must be RSA (Entra ID client certificates, Google service account keys)")
		}
	}
}

// DefaultCertBits and DefaultCertDays are NewSelfSignedCertificate's
// defaults.
const (
	DefaultCertBits = 3072
	DefaultCertDays = 365
)

// NewSelfSignedCertificate creates an RSA key (bits 0 = 3072, at least 2048)
// and a self-signed certificate for it with subject CN=cn valid for days
// (0 = 365), for uploading to an app registration. It returns the PEM
// certificate and the PEM PKCS#8 private key.
func NewSelfSignedCertificate(cn string, bits, days int) (certPEM, keyPEM []byte, err error) {
	if bits == 0 {
		bits = DefaultCertBits
	}
	if bits < MinRSABits {
		return nil, nil, fmt.Errorf("oauth: RSA key of %d bits requested; at least %d are required", bits, MinRSABits)
	}
	if days == 0 {
		days = DefaultCertDays
	}
	if days < 0 {
		return nil, nil, fmt.Errorf("oauth: certificate validity of %d days", days)
	}
	if strings.TrimSpace(cn) == "" {
		return nil, nil, errors.New("oauth: certificate common name is empty")
	}
	key, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return nil, nil, fmt.Errorf("oauth: generate RSA key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("oauth: certificate serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              now.AddDate(0, 0, days),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("oauth: create certificate: %w", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("oauth: encode private key: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
	return certPEM, keyPEM, nil
}
