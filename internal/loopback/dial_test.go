package loopback_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/imap"
	"github.com/mailgate/mailgate/internal/loopback"
	"github.com/mailgate/mailgate/internal/pop3"
	"github.com/mailgate/mailgate/internal/smtp"
)

// TestProtocolsDialLoopbackOnly: with security none the token would cross
// the network in clear, so each protocol's Dial refuses an address that is
// not loopback (192.0.2.1 is TEST-NET-1) before connecting.
func TestProtocolsDialLoopbackOnly(t *testing.T) {
	const timeout = 3 * time.Second
	dials := map[string]func(ctx context.Context, addr string) error{
		"imap": func(ctx context.Context, addr string) error {
			_, err := imap.Dial(ctx, addr, &imap.Options{Security: "none", Timeout: timeout})
			return err
		},
		"pop3": func(ctx context.Context, addr string) error {
			_, err := pop3.Dial(ctx, addr, &pop3.Options{Security: "none", Timeout: timeout})
			return err
		},
		"smtp": func(ctx context.Context, addr string) error {
			_, err := smtp.Dial(ctx, addr, &smtp.Options{Security: "none", Timeout: timeout})
			return err
		},
	}
	for name, dial := range dials {
		err := dial(t.Context(), "192.0.2.1:1143")
		var le *loopback.Error
		if !errors.As(err, &le) {
			t.Errorf("%s: security none to 192.0.2.1: %v, want a *loopback.Error", name, err)
		}
	}
}

// TestConnect: the one dial helper of imap, pop3 and smtp: security
// checked before connecting, each failure named by its step, TLS
// established for tls only, the server name taken from the address.
func TestConnect(t *testing.T) {
	tlsSrv := httptest.NewTLSServer(http.NotFoundHandler())
	defer tlsSrv.Close()
	roots := tlsSrv.Client().Transport.(*http.Transport).TLSClientConfig
	// a server that hangs up at once: no TLS handshake
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	tlsAddr := strings.TrimPrefix(tlsSrv.URL, "https://")
	for _, tc := range []struct {
		name     string
		addr     string
		sec      loopback.Security
		step     string // "" = success; "-" = refused before connecting
		wantTLS  bool
		wantName string
	}{
		{"unknown security", ln.Addr().String(), "ssl", "-", false, ""},
		{"empty security (the protocol names its default)", ln.Addr().String(), "", "-", false, ""},
		{"no port", "127.0.0.1", loopback.TLS, "dial", false, ""},
		{"not loopback in clear", "192.0.2.1:25", loopback.None, "dial", false, ""},
		{"tls to a server without it", ln.Addr().String(), loopback.TLS, "tls", false, ""},
		{"tls", tlsAddr, loopback.TLS, "", true, "127.0.0.1"},
		{"starttls stays clear", ln.Addr().String(), loopback.StartTLS, "", false, "127.0.0.1"},
		{"none", ln.Addr().String(), loopback.None, "", false, "127.0.0.1"},
	} {
		c, err := loopback.Connect(t.Context(), tc.addr, tc.sec, roots, 10*time.Second)
		var ce *loopback.ConnectError
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

// TestProtocolDialErrors: a failed connection is an error prefixed with
// the protocol's name that still unwraps to the network's error (pop3
// returned it bare before).
func TestProtocolDialErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	dials := map[string]func() error{
		"imap": func() error { _, err := imap.Dial(t.Context(), addr, &imap.Options{Security: "none"}); return err },
		"pop3": func() error { _, err := pop3.Dial(t.Context(), addr, &pop3.Options{Security: "none"}); return err },
		"smtp": func() error { _, err := smtp.Dial(t.Context(), addr, &smtp.Options{Security: "none"}); return err },
	}
	for name, dial := range dials {
		err := dial()
		var oe *net.OpError
		if err == nil || !strings.HasPrefix(err.Error(), name+": dial: ") || !errors.As(err, &oe) {
			t.Errorf("%s: %v, want %q… wrapping a *net.OpError", name, err, name+": dial: ")
		}
	}
}
