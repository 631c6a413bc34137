package loopback

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"
)

// Security is how a connection to a mail server is protected. The
// protocol packages (imap, pop3, smtp) each name their default for an
// empty setting (imap.DefaultSecurity, …); Connect takes only these three.
type Security string

const (
	TLS      Security = "tls"      // implicit TLS from the first byte
	StartTLS Security = "starttls" // clear until the protocol's STARTTLS (STLS), which must succeed
	None     Security = "none"     // no TLS: loopback addresses only (see Dial)
)

// DefaultTimeout bounds Connect and the greeting after it when the caller
// gives 0.
const DefaultTimeout = 30 * time.Second

// ConnectError is a failed Connect. Step is "dial" (the address, resolving,
// connecting, a clear-text destination refused as an *Error) or "tls" (the
// implicit TLS handshake).
type ConnectError struct {
	Step string
	Err  error
}

func (e *ConnectError) Error() string { return e.Step + ": " + e.Err.Error() }

func (e *ConnectError) Unwrap() error { return e.Err }

// Conn is a connection Connect opened, before the protocol's greeting.
type Conn struct {
	// Conn is the connection: TLS already established for security tls,
	// clear text for starttls and none.
	net.Conn
	// TLSConfig verifies the server, for a STARTTLS upgrade: the caller's
	// configuration (cloned) with the host of the address as server name
	// when it had none.
	TLSConfig *tls.Config
}

// Ready clears the deadline Connect set, once the greeting (and STARTTLS)
// are over.
func (c *Conn) Ready() { _ = c.SetDeadline(time.Time{}) }

// Connect dials addr as sec says: for TLS it completes the handshake
// (verifying against tlsConf, nil meaning the system roots); for None it
// refuses any address that is not a loopback one (Dial). The connection's
// deadline is set timeout (0: DefaultTimeout) from now, so that the
// protocol's greeting and STARTTLS are bounded too; Ready clears it.
func Connect(ctx context.Context, addr string, sec Security, tlsConf *tls.Config, timeout time.Duration) (*Conn, error) {
	switch sec {
	case TLS, StartTLS, None:
	default:
		return nil, fmt.Errorf("security %q: want tls, starttls or none", sec)
	}
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, &ConnectError{Step: "dial", Err: err}
	}
	tc := &tls.Config{}
	if tlsConf != nil {
		tc = tlsConf.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := Dial(dctx, addr, sec == None)
	if err != nil {
		return nil, &ConnectError{Step: "dial", Err: err}
	}
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if sec == TLS {
		t := tls.Client(conn, tc)
		if err := t.HandshakeContext(dctx); err != nil {
			conn.Close()
			return nil, &ConnectError{Step: "tls", Err: err}
		}
		conn = t
	}
	return &Conn{Conn: conn, TLSConfig: tc}, nil
}
