// Package loopback owns the rule under which credentials may travel in
// clear text: only to this machine. It says which hosts count as this
// machine (Host, for checking a configuration) and dials so that a
// connection without TLS reaches a loopback address or nothing (Dial),
// since a name may resolve elsewhere than its spelling suggests. Connect is
// the one dial of the imap, pop3 and smtp clients: the address, the
// timeout, implicit TLS or a clear connection for STARTTLS or none (Dial's
// rule), each failure named by its step.
//
// Only the exact name "localhost" and literal loopback addresses
// (127.0.0.0/8, ::1) count. Go resolves "localhost" from /etc/hosts, but
// any other name, "*.localhost" included, goes to DNS; the dial check
// catches whatever a name resolves to.
package loopback

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
)

// Host reports whether host (a name or an address, without port, IPv6 with
// or without brackets) is this machine: localhost, 127.0.0.0/8 or ::1.
func Host(host string) bool {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// Error is a refused dial: the address a name resolved to (or was) is not
// a loopback address, and the connection would carry credentials in clear
// text.
type Error struct {
	Addr string // the host:port given to Dial
	IP   string // the address it resolved to
}

func (e *Error) Error() string {
	return fmt.Sprintf("loopback: refusing to connect to %s (%s) without TLS: security none is allowed only to a loopback address (localhost, 127.0.0.0/8, ::1); use tls or starttls",
		e.Addr, e.IP)
}

// Dial connects to addr over TCP. With clear set (the connection will
// carry credentials without TLS) it refuses, before connecting, any
// address that is not a loopback one, whatever name led to it.
func Dial(ctx context.Context, addr string, clear bool) (net.Conn, error) {
	var d net.Dialer
	if clear {
		d.Control = func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			if ip, err := netip.ParseAddr(host); err != nil || !ip.Unmap().IsLoopback() {
				return &Error{Addr: addr, IP: host}
			}
			return nil
		}
	}
	return d.DialContext(ctx, "tcp", addr)
}
