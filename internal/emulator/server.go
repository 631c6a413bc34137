package emulator

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure Start.
type Options struct {
	// Listen is the HTTPS listen address. Default "127.0.0.1:0".
	Listen string
	// HTTPListen is the plain-HTTP listen address serving the same routes
	// (for Dovecot's check script and curl). Default "127.0.0.1:0"; "-"
	// for none.
	HTTPListen string
	// Dir receives the CA certificate, the demo app's certificate and key
	// and the demo secret. Keys found there from an earlier run are reused,
	// so tokens and configs stay valid across restarts. Default: a
	// temporary directory removed by Close.
	Dir string
	// TokenLifetime fixes the access-token lifetime. Default: random
	// between 3599 and 5399 seconds, as Entra does.
	TokenLifetime time.Duration
	// Logger receives one line per request outcome. Default: discard.
	Logger *slog.Logger
	// IMAPListen is the listen address of the emulated Exchange Online IMAP4
	// service (implicit TLS, XOAUTH2 with the emulator's tokens; see
	// imap.go), for example "127.0.0.1:0". Default "": none.
	IMAPListen string
	// GmailIMAPListen is the listen address of the Gmail-flavoured IMAP
	// service (implicit TLS, XOAUTH2 with Gmail's error challenge, [Gmail]
	// folders with special-use; see gmail.go). Default "": none.
	GmailIMAPListen string
	// GmailSMTPListen is the listen address of the Gmail-flavoured SMTP
	// submission service (implicit TLS, XOAUTH2 with Gmail's 334 error
	// challenge; see gmail_smtp.go). Default "": none.
	GmailSMTPListen string
	// GmailPOP3Listen is the listen address of the Gmail-flavoured POP3
	// service (implicit TLS, XOAUTH2 with Gmail's error challenge, messages
	// listed once, "recent:" mode; see gmail_pop3.go). It serves the same
	// mailboxes as the Gmail IMAP service. Default "": none.
	GmailPOP3Listen string
	// GmailLocalized gives the Gmail folders German names
	// ("[Google Mail]/Papierkorb"…), as localized accounts have them.
	GmailLocalized bool
}

// Server is a running emulator.
type Server struct {
	opts    Options
	log     *slog.Logger
	dir     string
	tempDir bool

	tenant  *Tenant
	sign    *signingKey
	caPEM   []byte
	caPool  *x509.CertPool
	httpsLn net.Listener
	httpLn  net.Listener
	srv     *http.Server
	plain   *http.Server
	wg      sync.WaitGroup

	tokenRequests  atomic.Int64
	deviceRequests atomic.Int64
	lifetime       atomic.Int64 // nanoseconds; 0 = random
	clock          atomic.Pointer[func() time.Time]

	graphOnce sync.Once
	graphSt   *graphState
	imap      *imapService
	google    *googleState
	gmail     *gmailService
	gmailSMTP *gmailSMTPService
	gmailPOP3 *gmailPOP3Service

	mu      sync.Mutex
	faults  []*Fault
	codes   map[string]*authCode
	pending map[string]*authRequest
	devices map[string]*deviceGrant // by device_code
}

// Start creates the demo tenant and serves the emulator until Close.
func Start(ctx context.Context, opts Options) (*Server, error) {
	s := &Server{opts: opts, log: opts.Logger, codes: map[string]*authCode{},
		pending: map[string]*authRequest{}, devices: map[string]*deviceGrant{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.lifetime.Store(int64(opts.TokenLifetime))
	s.dir = opts.Dir
	if s.dir == "" {
		d, err := os.MkdirTemp("", "mailgate-emulator-")
		if err != nil {
			return nil, fmt.Errorf("emulator: %w", err)
		}
		s.dir, s.tempDir = d, true
	} else if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("emulator: dir: %w", err)
	}
	if err := s.setup(); err != nil {
		s.cleanup()
		return nil, err
	}
	if err := s.listen(ctx); err != nil {
		_ = s.Close() // what did start, and a temporary Dir
		return nil, err
	}
	return s, nil
}

func (s *Server) setup() error {
	signKey, err := loadOrCreateRSA(filepath.Join(s.dir, "signing-key.pem"), 2048)
	if err != nil {
		return fmt.Errorf("emulator: signing key: %w", err)
	}
	der, err := selfSigned(signKey, "mailgate emulator token signing", 730)
	if err != nil {
		return fmt.Errorf("emulator: signing certificate: %w", err)
	}
	sum := sha1.Sum(der)
	s.sign = &signingKey{key: signKey, kid: b64url.EncodeToString(sum[:]), der: der}
	s.tenant = newTenant(DemoTenantID, DemoDomain, s.now)
	if err := s.setupGoogle(); err != nil {
		return err
	}
	return s.seedDemo()
}

// now is the emulator's clock (SetClock replaces it in tests).
func (s *Server) now() time.Time {
	if f := s.clock.Load(); f != nil {
		return (*f)()
	}
	return time.Now()
}

// SetClock replaces the emulator's clock, e.g. to let codes, device codes or
// refresh tokens age. nil restores the real clock.
func (s *Server) SetClock(now func() time.Time) {
	if now == nil {
		s.clock.Store(nil)
		return
	}
	s.clock.Store(&now)
}

// listen creates the CA, the TLS leaf and both listeners.
func (s *Server) listen(_ context.Context) error {
	caKey, caCert, err := loadOrCreateCA(s.dir)
	if err != nil {
		return fmt.Errorf("emulator: CA: %w", err)
	}
	s.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caCert.Raw})
	s.caPool = x509.NewCertPool()
	s.caPool.AddCert(caCert)
	leaf, err := issueLeaf(caKey, caCert)
	if err != nil {
		return fmt.Errorf("emulator: TLS certificate: %w", err)
	}
	addr := s.opts.Listen
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("emulator: listen %s: %w", addr, err)
	}
	s.httpsLn = ln
	mux := s.routes()
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{leaf}, MinVersion: tls.VersionTLS12},
		ErrorLog:  slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	s.wg.Add(1)
	go func() { defer s.wg.Done(); _ = s.srv.ServeTLS(ln, "", "") }()
	if s.opts.HTTPListen != "-" {
		haddr := s.opts.HTTPListen
		if haddr == "" {
			haddr = "127.0.0.1:0"
		}
		hl, err := net.Listen("tcp", haddr)
		if err != nil {
			return fmt.Errorf("emulator: listen %s: %w", haddr, err)
		}
		s.httpLn = hl
		s.plain = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
		s.wg.Add(1)
		go func() { defer s.wg.Done(); _ = s.plain.Serve(hl) }()
	}
	if err := s.writeGoogleKey(); err != nil {
		return err
	}
	if s.opts.IMAPListen != "" {
		if err := s.startIMAP(s.opts.IMAPListen, leaf); err != nil {
			return err
		}
	}
	if s.opts.GmailIMAPListen != "" {
		if err := s.startGmail(s.opts.GmailIMAPListen, leaf); err != nil {
			return err
		}
	}
	if s.opts.GmailSMTPListen != "" {
		if err := s.startGmailSMTP(s.opts.GmailSMTPListen, leaf); err != nil {
			return err
		}
	}
	if s.opts.GmailPOP3Listen != "" {
		if err := s.startGmailPOP3(s.opts.GmailPOP3Listen, leaf); err != nil {
			return err
		}
	}
	s.log.Info("emulator: serving", "url", s.URL(), "http", s.HTTPURL(), "imap", s.IMAPAddr(), "gmail_imap", s.GmailIMAPAddr(),
		"gmail_smtp", s.GmailSMTPAddr(), "gmail_pop3", s.GmailPOP3Addr(), "tenant", DemoTenantID)
	return nil
}

// Close stops serving and removes a temporary Dir.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	if s.srv != nil {
		errs = append(errs, s.srv.Shutdown(ctx))
	}
	if s.plain != nil {
		errs = append(errs, s.plain.Shutdown(ctx))
	}
	if s.imap != nil {
		errs = append(errs, s.imap.close())
	}
	if s.gmail != nil {
		errs = append(errs, s.gmail.close())
	}
	if s.gmailSMTP != nil {
		errs = append(errs, s.gmailSMTP.close())
	}
	if s.gmailPOP3 != nil {
		errs = append(errs, s.gmailPOP3.close())
	}
	s.wg.Wait()
	s.cleanup()
	return errors.Join(errs...)
}

func (s *Server) cleanup() {
	if s.tempDir {
		_ = os.RemoveAll(s.dir)
	}
}

// URL is the HTTPS base URL, the "authority" a client configures.
func (s *Server) URL() string { return "https://" + s.httpsLn.Addr().String() }

// HTTPURL is the plain-HTTP base URL, or "" without one.
func (s *Server) HTTPURL() string {
	if s.httpLn == nil {
		return ""
	}
	return "http://" + s.httpLn.Addr().String()
}

// Dir is where the emulator's files are.
func (s *Server) Dir() string { return s.dir }

// CAFile is the PEM file of the CA that signed the HTTPS certificate.
func (s *Server) CAFile() string { return filepath.Join(s.dir, "ca.pem") }

// CertPool trusts the emulator's CA.
func (s *Server) CertPool() *x509.CertPool { return s.caPool }

// Client is an HTTP client that trusts the emulator and uses no proxy.
func (s *Server) Client() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		Proxy:           nil,
		TLSClientConfig: &tls.Config{RootCAs: s.caPool, MinVersion: tls.VersionTLS12},
	}}
}

// Tenant is the demo tenant.
func (s *Server) Tenant() *Tenant { return s.tenant }

// TokenRequests counts POSTs to the token endpoints (v1 and v2), whatever
// their outcome.
func (s *Server) TokenRequests() int64 { return s.tokenRequests.Load() }

// SetTokenLifetime fixes the access-token lifetime; 0 restores Entra's
// random 3599–5399 s.
func (s *Server) SetTokenLifetime(d time.Duration) { s.lifetime.Store(int64(d)) }

func (s *Server) tokenLifetime() time.Duration {
	if d := time.Duration(s.lifetime.Load()); d > 0 {
		return d
	}
	n, _ := rand.Int(rand.Reader, big.NewInt(1801))
	return time.Duration(3599+n.Int64()) * time.Second
}

// base is scheme://host of the listener r arrived on.
func (s *Server) base(r *http.Request) string {
	if r.TLS != nil {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// --- keys and certificates ---

func loadOrCreateRSA(path string, bits int) (*rsa.PrivateKey, error) {
	if data, err := os.ReadFile(path); err == nil {
		block, _ := pem.Decode(data)
		if block == nil {
			return nil, fmt.Errorf("%s: no PEM block", path)
		}
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%s: not an RSA key", path)
		}
		return rk, nil
	}
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return k, writeFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

// selfSigned makes a self-signed certificate for key, valid for days.
func selfSigned(key *rsa.PrivateKey, cn string, days int) ([]byte, error) {
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: cn},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(0, 0, days),
		KeyUsage: x509.KeyUsageDigitalSignature, BasicConstraintsValid: true,
	}
	return x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
}

// loadOrCreateCA returns the CA in dir (ca.pem, ca-key.pem), creating it
// when missing.
func loadOrCreateCA(dir string) (*ecdsa.PrivateKey, *x509.Certificate, error) {
	certPath, keyPath := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	if cp, err := os.ReadFile(certPath); err == nil {
		if kp, err := os.ReadFile(keyPath); err == nil {
			cb, _ := pem.Decode(cp)
			kb, _ := pem.Decode(kp)
			if cb != nil && kb != nil {
				cert, err1 := x509.ParseCertificate(cb.Bytes)
				key, err2 := x509.ParseECPrivateKey(kb.Bytes)
				if err1 == nil && err2 == nil && time.Now().Before(cert.NotAfter.Add(-24*time.Hour)) {
					return key, cert, nil
				}
			}
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "mailgate emulator CA", Organization: []string{"mailgate"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(2, 0, 0),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	if err := writeFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return nil, nil, err
	}
	if err := writeFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, nil, err
	}
	return key, cert, nil
}

// issueLeaf issues the HTTPS certificate for 127.0.0.1, ::1 and localhost.
func issueLeaf(caKey *ecdsa.PrivateKey, ca *x509.Certificate) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(0, 3, 0),
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// readForm parses an x-www-form-urlencoded body of at most 1 MiB.
func readForm(r *http.Request) error {
	r.Body = http.MaxBytesReader(nil, r.Body, 1<<20)
	return r.ParseForm()
}
