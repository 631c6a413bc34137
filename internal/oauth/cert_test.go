package oauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

func TestNewSelfSignedCertificate(t *testing.T) {
	certPEM, keyPEM := testCertificate(t, 2048)
	cc, err := LoadClientCertificate(certPEM, keyPEM, "")
	if err != nil {
		t.Fatal(err)
	}
	if cc.Cert.Subject.CommonName != "mailgate test" || cc.alg() != AlgPS256 {
		t.Errorf("subject %q alg %s", cc.Cert.Subject.CommonName, cc.alg())
	}
	if got := cc.Cert.PublicKey.(*rsa.PublicKey).N.BitLen(); got != 2048 {
		t.Errorf("bits %d", got)
	}
	if d := time.Until(cc.Cert.NotAfter); d < 29*24*time.Hour || d > 31*24*time.Hour {
		t.Errorf("validity %s, want about 30 days", d)
	}
	for _, tt := range []struct {
		cn         string
		bits, days int
		wantErr    string
	}{
		{"x", 1024, 1, "at least 2048"},
		{"", 2048, 1, "common name"},
		{"x", 2048, -1, "validity"},
	} {
		if _, _, err := NewSelfSignedCertificate(tt.cn, tt.bits, tt.days); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("NewSelfSignedCertificate(%q, %d, %d) err = %v, want %q", tt.cn, tt.bits, tt.days, err, tt.wantErr)
		}
	}
}

func TestNewSelfSignedCertificateDefaults(t *testing.T) {
	if testing.Short() {
		t.Skip("3072-bit key generation")
	}
	c, k, err := NewSelfSignedCertificate("defaults", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := LoadClientCertificate(c, k, "")
	if err != nil {
		t.Fatal(err)
	}
	if bits := cc.Cert.PublicKey.(*rsa.PublicKey).N.BitLen(); bits != 3072 {
		t.Errorf("default bits %d, want 3072", bits)
	}
	if d := time.Until(cc.Cert.NotAfter); d < 364*24*time.Hour || d > 366*24*time.Hour {
		t.Errorf("default validity %s", d)
	}
}

func TestThumbprints(t *testing.T) {
	certPEM, _ := testCertificate(t, 2048)
	b, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	s1 := sha1.Sum(b.Bytes)
	s256 := sha256.Sum256(b.Bytes)
	got := Thumbprints(cert)
	want := CertThumbprints{
		SHA1:    strings.ToUpper(hex.EncodeToString(s1[:])),
		X5T:     base64.RawURLEncoding.EncodeToString(s1[:]),
		X5TS256: base64.RawURLEncoding.EncodeToString(s256[:]),
	}
	if got != want {
		t.Errorf("Thumbprints = %+v, want %+v", got, want)
	}
	if len(got.SHA1) != 40 || strings.ToUpper(got.SHA1) != got.SHA1 {
		t.Errorf("SHA1 %q is not 40 upper-case hex digits", got.SHA1)
	}
	// The x5t must be the base64url of the raw digest, never of the hex
	// string (a classic AADSTS700027 cause).
	if dec, _ := base64.RawURLEncoding.DecodeString(got.X5T); hex.EncodeToString(dec) != hex.EncodeToString(s1[:]) {
		t.Errorf("x5t does not decode to the SHA-1 digest")
	}
}

func TestLoadClientCertificate(t *testing.T) {
	certPEM, keyPEM := testCertificate(t, 2048)
	otherCert, otherKey := testCertificate(t, 3072)
	smallCert, smallKey := smallCertificate(t)

	b, _ := pem.Decode(keyPEM)
	k8, _ := x509.ParsePKCS8PrivateKey(b.Bytes)
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k8.(*rsa.PrivateKey))})
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	ecPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER})
	encrypted := pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1, 2, 3}})
	combined := append(append([]byte{}, certPEM...), pkcs1...)

	tests := []struct {
		name      string
		cert, key []byte
		alg       string
		wantErr   string
	}{
		{name: "pkcs8", cert: certPEM, key: keyPEM},
		{name: "pkcs1", cert: certPEM, key: pkcs1},
		{name: "one combined file", cert: combined, key: nil},
		{name: "RS256", cert: certPEM, key: keyPEM, alg: "RS256"},
		{name: "key of another certificate", cert: certPEM, key: otherKey, wantErr: "does not belong"},
		{name: "certificate of another key", cert: otherCert, key: keyPEM, wantErr: "does not belong"},
		{name: "1024-bit key", cert: smallCert, key: smallKey, wantErr: "at least 2048"},
		{name: "EC key", cert: certPEM, key: ecPEM, wantErr: "must be RSA"},
		{name: "encrypted key", cert: certPEM, key: encrypted, wantErr: "encrypted"},
		{name: "no key", cert: certPEM, key: []byte("nothing"), wantErr: "no PEM private key"},
		{name: "no certificate", cert: keyPEM, key: keyPEM, wantErr: "no PEM CERTIFICATE"},
		{name: "bad alg", cert: certPEM, key: keyPEM, alg: "HS256", wantErr: "not PS256 or RS256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cc, err := LoadClientCertificate(tt.cert, tt.key, tt.alg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(cc.String(), "PRIVATE") || !strings.Contains(cc.String(), Thumbprints(cc.Cert).SHA1) {
				t.Errorf("String() = %s", cc.String())
			}
		})
	}
}

// smallCertificate makes a 1024-bit self-signed certificate, which
// NewSelfSignedCertificate refuses to do.
func smallCertificate(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Skipf("1024-bit RSA not available: %v", err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Skipf("1024-bit certificate: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
}
