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

// TestDial: a clear-text dial reaches a loopback listener and is refused,
// before any packet is sent, for an address that is not loopback; with
// TLS ahead (clear false) the address is not checked here.
func TestDial(t *testing.T) {
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
	c, err := Dial(t.Context(), ln.Addr().String(), true)
	if err != nil {
		t.Fatalf("loopback dial: %v", err)
	}
	c.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
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
