package loopback_test

import (
	"context"
	"errors"
	"net"
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

// plainServer answers in clear text: greeting, then "250 ok" to EHLO and
// "502 no" to anything else (no STARTTLS offered, none accepted).
func plainServer(t *testing.T, greeting string) string {
	return loopback.ServeTCP(t, func(c net.Conn) {
		defer c.Close()
		c.Write([]byte(greeting))
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			if strings.HasPrefix(strings.ToUpper(string(buf[:n])), "EHLO") {
				c.Write([]byte("250 ok\r\n"))
			} else {
				c.Write([]byte("502 no\r\n"))
			}
		}
	})
}

// TestDefaultSecurity: an empty Security is each protocol's named default:
// implicit TLS for IMAP and POP3 (a clear-text server fails the
// handshake), STARTTLS for SMTP (a server without it is refused before
// any credential).
func TestDefaultSecurity(t *testing.T) {
	if imap.DefaultSecurity != "tls" || pop3.DefaultSecurity != "tls" || smtp.DefaultSecurity != "starttls" {
		t.Fatalf("defaults imap %q, pop3 %q, smtp %q", imap.DefaultSecurity, pop3.DefaultSecurity, smtp.DefaultSecurity)
	}
	ctx := t.Context()
	_, err := imap.Dial(ctx, plainServer(t, "* OK hi\r\n"), &imap.Options{Timeout: 10 * time.Second})
	var ie *imap.Error
	if !errors.As(err, &ie) || ie.Kind != imap.KindTLS || ie.Op != "tls" {
		t.Errorf("imap: %v, want a TLS handshake failure", err)
	}
	_, err = pop3.Dial(ctx, plainServer(t, "+OK hi\r\n"), &pop3.Options{Timeout: 10 * time.Second})
	if err == nil || !strings.HasPrefix(err.Error(), "pop3: tls: ") {
		t.Errorf("pop3: %v, want a TLS handshake failure", err)
	}
	_, err = smtp.Dial(ctx, plainServer(t, "220 hi\r\n"), &smtp.Options{Timeout: 10 * time.Second})
	var se *smtp.Error
	if !errors.As(err, &se) || se.Step != "tls" || !strings.Contains(err.Error(), "STARTTLS failed") {
		t.Errorf("smtp: %v, want STARTTLS refused", err)
	}
}
