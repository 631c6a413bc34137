package loopback

import (
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestConnect: the one dial helper of imap, pop3 and smtp: security
// checked before connecting, each failure named by its step, TLS
// established for tls only, the server name taken from the address.
func TestConnect(t *testing.T) {
	tlsSrv := httptest.NewTLSServer(http.NotFoundHandler())
	defer tlsSrv.Close()
	roots := tlsSrv.Client().Transport.(*http.Transport).TLSClientConfig
	// a server that hangs up at once: no TLS handshake
	addr := hangUp(t)
	tlsAddr := strings.TrimPrefix(tlsSrv.URL, "https://")
	for _, tc := range []struct {
		name     string
		addr     string
		sec      Security
		step     string // "" = success; "-" = refused before connecting
		wantTLS  bool
		wantName string
	}{
		{"unknown security", addr, "ssl", "-", false, ""},
		{"empty security (the protocol names its default)", addr, "", "-", false, ""},
		{"no port", "127.0.0.1", TLS, "dial", false, ""},
		{"not loopback in clear", "192.0.2.1:25", None, "dial", false, ""},
		{"tls to a server without it", addr, TLS, "tls", false, ""},
		{"tls", tlsAddr, TLS, "", true, "127.0.0.1"},
		{"starttls stays clear", addr, StartTLS, "", false, "127.0.0.1"},
		{"none", addr, None, "", false, "127.0.0.1"},
	} {
		c, err := Connect(t.Context(), tc.addr, tc.sec, roots, 10*time.Second)
		var ce *ConnectError
		switch {
		case tc.step == "-":
			if err == nil || errors.As(err, &ce) {
				t.Errorf("%s: %v, want a refusal before connecting", tc.name, err)
			}
		case tc.step != "":
			if !errors.As(err, &ce) || ce.Step != tc.step {
				t.Errorf("%s: %v, want a *ConnectError at step %s", tc.name, err, tc.step)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.name, err)
		default:
			_, isTLS := c.Conn.(*tls.Conn)
			if isTLS != tc.wantTLS {
				t.Errorf("%s: TLS %v, want %v", tc.name, isTLS, tc.wantTLS)
			}
			if c.TLSConfig.ServerName != tc.wantName {
				t.Errorf("%s: server name %q, want %q", tc.name, c.TLSConfig.ServerName, tc.wantName)
			}
			c.Ready()
			c.Close()
		}
	}
	if roots.ServerName != "" {
		t.Errorf("Connect changed the caller's TLS config: server name %q", roots.ServerName)
	}
}
