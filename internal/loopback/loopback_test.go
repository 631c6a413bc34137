package loopback

import (
	"errors"
	"net"
	"testing"
)

func TestHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LocalHost": true, "127.0.0.1": true, "127.8.9.1": true, "::1": true, "[::1]": true, "::ffff:127.0.0.1": true,
		"mail.localhost": false, "localhost.example.com": false, "example.com": false, "10.0.0.1": false, "128.0.0.1": false,
		"0.0.0.0": false, "::": false, "": false,
	} {
		if got := Host(host); got != want {
			t.Errorf("Host(%q) = %v", host, got)
		}
	}
}

// ServeTCP listens on a loopback port until the test ends and hands every
// connection to handle (in its own goroutine; handle closes it); it
// returns the address. Exported for the protocol tests of dial_test.go.
func ServeTCP(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
	return ln.Addr().String()
}

// hangUp is a server that closes every connection at once.
func hangUp(t *testing.T) string {
	return ServeTCP(t, func(c net.Conn) { c.Close() })
}

// TestDial: a clear-text dial reaches a loopback listener and is refused,
// before any packet is sent, for an address that is not loopback; with
// TLS ahead (clear false) the address is not checked here.
func TestDial(t *testing.T) {
	addr := hangUp(t)
	c, err := Dial(t.Context(), addr, true)
	if err != nil {
		t.Fatalf("loopback dial: %v", err)
	}
	c.Close()
	_, port, _ := net.SplitHostPort(addr)
	if c, err := Dial(t.Context(), net.JoinHostPort("localhost", port), true); err == nil {
		c.Close()
	} else if le := (*Error)(nil); errors.As(err, &le) {
		t.Errorf("localhost refused: %v", err)
	}
	// 192.0.2.1 (TEST-NET-1) is never this machine; the refusal comes from
	// the check, not from the network
	for _, addr := range []string{"192.0.2.1:143", "[2001:db8::1]:143"} {
		_, err = Dial(t.Context(), addr, true)
		var le *Error
		if !errors.As(err, &le) || le.Addr != addr {
			t.Errorf("%s: %v, want a *loopback.Error", addr, err)
		}
	}
}
