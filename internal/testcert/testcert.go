// Package testcert makes TLS server certificates for tests and benchmarks
// on loopback: an ECDSA P-256 key and a certificate for 127.0.0.1 and
// localhost (or the names asked for), self-signed or signed by a test CA
// of its own, with what a test needs around it: the server's tls.Config,
// a pool or a PEM file the client trusts, and the certificate and key as
// PEM files for a configuration's tls_cert and tls_key.
//
// It is test support: no mailgate program imports it (internal/arch
// checks that); tests and bench/ do.
//
// Use:
//
//	c := testcert.Make(t, testcert.Options{})       // self-signed, 127.0.0.1 and localhost
//	srv := tls.NewListener(ln, c.ServerConfig())
//	client := &tls.Config{RootCAs: c.Pool()}
//	crt, key := c.WriteFiles(t, dir, "legacy")      // dir/legacy.crt, dir/legacy.key
//
// Options give a certificate that is special: CA for one signed by a test
// CA (CAPEM then is that CA), Names for other names, NotAfter for one that
// expires soon or expired.
package testcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Options are the certificate's particulars; the zero value is a
// self-signed certificate for 127.0.0.1 and localhost valid from a day
// ago to a day from now.
type Options struct {
	// CA signs the certificate with a test CA of its own instead of
	// self-signing it; the client then trusts the CA, not the leaf.
	CA bool
	// Names are the DNS names and IP addresses the certificate is for;
	// the first is also its common name. Default: 127.0.0.1, localhost.
	Names []string
	// NotAfter is when the certificate expires (a time past gives an
	// expired one). Default: 24 hours from now.
	NotAfter time.Time
	// NotBefore is when it becomes valid. Default: 48 hours before
	// NotAfter.
	NotBefore time.Time
}

// Cert is a made certificate and what tests need around it.
type Cert struct {
	// Leaf is the server's certificate, Key its private key.
	Leaf *x509.Certificate
	Key  *ecdsa.PrivateKey
	// Root is what a client trusts: the test CA, or Leaf when self-signed.
	Root *x509.Certificate
	// CertPEM, KeyPEM (PKCS #8) and RootPEM are the same in PEM.
	CertPEM, KeyPEM, RootPEM []byte
}

// New makes a certificate as o says.
func New(o Options) (*Cert, error) {
	if len(o.Names) == 0 {
		o.Names = []string{"127.0.0.1", "localhost"}
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = time.Now().Add(24 * time.Hour)
	}
	if o.NotBefore.IsZero() {
		o.NotBefore = o.NotAfter.Add(-48 * time.Hour)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("testcert: %w", err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: o.Names[0]},
		NotBefore: o.NotBefore, NotAfter: o.NotAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, n := range o.Names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	issuer, issuerKey := tmpl, key
	if o.CA {
		if issuer, issuerKey, err = newCA(o); err != nil {
			return nil, err
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, &key.PublicKey, issuerKey)
	if err != nil {
		return nil, fmt.Errorf("testcert: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("testcert: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("testcert: %w", err)
	}
	c := &Cert{Leaf: leaf, Key: key, Root: leaf,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})}
	if o.CA {
		c.Root = issuer
	}
	c.RootPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Root.Raw})
	return c, nil
}

// newCA makes a self-signed test CA valid as long as the leaf o asks for.
func newCA(o Options) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("testcert: %w", err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mailgate test CA"},
		NotBefore: o.NotBefore, NotAfter: o.NotAfter, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("testcert: ca: %w", err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("testcert: ca: %w", err)
	}
	return ca, key, nil
}

// Make is New for a test: it fails t when the certificate cannot be made.
func Make(t testing.TB, o Options) *Cert {
	t.Helper()
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ServerConfig is a server's TLS configuration with the certificate.
func (c *Cert) ServerConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{c.Leaf.Raw}, PrivateKey: c.Key, Leaf: c.Leaf}}}
}

// Pool is a pool trusting the certificate (its CA, or itself).
func (c *Cert) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(c.Root)
	return pool
}

// WriteFiles writes the certificate and its key as dir/name.crt and
// dir/name.key (mode 0600) and returns their paths.
func (c *Cert) WriteFiles(t testing.TB, dir, name string) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	write(t, certFile, c.CertPEM)
	write(t, keyFile, c.KeyPEM)
	return certFile, keyFile
}

// WriteRoot writes what the client trusts (the CA, or the certificate
// itself) as the PEM file path.
func (c *Cert) WriteRoot(t testing.TB, path string) {
	t.Helper()
	write(t, path, c.RootPEM)
}

func write(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
