package oauth

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// DefaultHTTPTimeout bounds one token-endpoint exchange.
const DefaultHTTPTimeout = 30 * time.Second

// HTTPOptions configure NewHTTPClient.
type HTTPOptions struct {
	// Proxy is an http:// or https:// proxy URL (host:port is taken as
	// http://host:port). Empty uses HTTPS_PROXY / HTTP_PROXY / NO_PROXY
	// from the environment.
	Proxy string
	// RootCAs replaces the trusted roots when set.
	RootCAs *x509.CertPool
	// CAFile is a PEM file of extra CAs trusted on top of the system roots
	// (a TLS-inspecting proxy's CA, the emulator's).
	CAFile string
	// Timeout bounds each request; 0 is DefaultHTTPTimeout.
	Timeout time.Duration
}

// CAFileError is NewHTTPClient's refusal of HTTPOptions.CAFile (unreadable,
// or holding no PEM certificate); its other refusals concern the proxy.
type CAFileError struct {
	File string
	Err  error
}

func (e *CAFileError) Error() string { return e.Err.Error() }

func (e *CAFileError) Unwrap() error { return e.Err }

// NewHTTPClient builds the client a Profile uses: the given or environment
// proxy, verified TLS 1.2+ with the extra CA added to the system roots, a
// timeout, and never an Origin header (Entra refuses client credentials
// when one is present).
func NewHTTPClient(opts HTTPOptions) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = http.ProxyFromEnvironment
	if opts.Proxy != "" {
		raw := opts.Proxy
		if !strings.Contains(raw, "://") {
			raw = "http://" + raw
		}
		pu, err := url.Parse(raw)
		if err != nil || pu.Host == "" {
			return nil, fmt.Errorf("oauth: proxy %q is not a URL", opts.Proxy)
		}
		switch pu.Scheme {
		case "http", "https", "socks5", "socks5h":
		default:
			return nil, fmt.Errorf("oauth: proxy %q: scheme must be http, https or socks5", opts.Proxy)
		}
		tr.Proxy = http.ProxyURL(pu)
	}
	roots := opts.RootCAs
	if opts.CAFile != "" {
		pemData, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, &CAFileError{File: opts.CAFile, Err: fmt.Errorf("oauth: read CA file: %w", err)}
		}
		if roots == nil {
			sys, err := x509.SystemCertPool()
			if err != nil || sys == nil {
				sys = x509.NewCertPool()
			}
			roots = sys
		} else {
			roots = roots.Clone()
		}
		if !roots.AppendCertsFromPEM(pemData) {
			return nil, &CAFileError{File: opts.CAFile, Err: fmt.Errorf("oauth: CA file %s holds no PEM certificate", opts.CAFile)}
		}
	}
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultHTTPTimeout
	}
	return &http.Client{Transport: noOrigin{tr}, Timeout: timeout}, nil
}

// noOrigin strips any Origin header before a request leaves.
type noOrigin struct{ next http.RoundTripper }

func (t noOrigin) RoundTrip(req *http.Request) (*http.Response, error) {
	if _, ok := req.Header["Origin"]; ok {
		req = req.Clone(req.Context())
		req.Header.Del("Origin")
	}
	return t.next.RoundTrip(req)
}
