package app

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/web"
)

// startLimited serves a handler that reads the whole body (like /login)
// with limits l and returns its address.
func startLimited(t *testing.T, l httpLimits) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := l.server(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	}))
	go func() { _ = hs.Serve(limitListener(ln, l.MaxConns)) }()
	t.Cleanup(func() { _ = hs.Close() })
	return ln.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedByServer waits (generously: the machine may be loaded) until the
// server closes c, reading and dropping whatever it sends first.
func closedByServer(t *testing.T, c net.Conn, what string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
	_, err := io.Copy(io.Discard, c)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("%s: the connection is still open after 60 s", what)
	}
}

// roundTrip sends a GET on c and reads the answer (the connection stays
// open for the next request).
func roundTrip(t *testing.T, c net.Conn, r *bufio.Reader) {
	t.Helper()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
}

// TestServeHTTPLimits: serve's server has read, write and idle timeouts,
// a header size bound and a connection cap; with small values, a POST whose
// body never ends and an idle keep-alive connection are closed by the
// server, and connections beyond the cap wait until one ends.
func TestServeHTTPLimits(t *testing.T) {
	hs := serveLimits.server(http.NotFoundHandler())
	if hs.ReadHeaderTimeout <= 0 || hs.ReadTimeout <= 0 || hs.WriteTimeout <= 0 || hs.IdleTimeout <= 0 || hs.MaxHeaderBytes <= 0 || serveLimits.MaxConns <= 0 {
		t.Fatalf("serve's limits: %+v", serveLimits)
	}
	if serveLimits.Write <= web.TestTimeout {
		t.Errorf("the write timeout %s would cut a Test run (up to %s)", serveLimits.Write, web.TestTimeout)
	}
	t.Run("slow body", func(t *testing.T) {
		addr := startLimited(t, httpLimits{ReadHeader: time.Second, Read: time.Second, Write: time.Minute, Idle: time.Minute, MaxConns: 10})
		var conns []net.Conn
		for range 5 {
			c := dial(t, addr)
			if _, err := io.WriteString(c, "POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nname=o"); err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
		for _, c := range conns {
			closedByServer(t, c, "a POST whose body never ends")
		}
	})
	t.Run("idle keep-alive", func(t *testing.T) {
		addr := startLimited(t, httpLimits{ReadHeader: time.Minute, Read: time.Minute, Write: time.Minute, Idle: time.Second, MaxConns: 10})
		c := dial(t, addr)
		roundTrip(t, c, bufio.NewReader(c))
		closedByServer(t, c, "an idle keep-alive connection")
	})
	t.Run("connection cap", func(t *testing.T) {
		addr := startLimited(t, httpLimits{ReadHeader: time.Minute, Read: time.Minute, Write: time.Minute, Idle: time.Minute, MaxConns: 2})
		a, b := dial(t, addr), dial(t, addr)
		roundTrip(t, a, bufio.NewReader(a))
		roundTrip(t, b, bufio.NewReader(b))
		// both slots are taken by idle connections: a third is not served…
		c := dial(t, addr)
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		if n, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("a third connection over a cap of 2 was answered: %d %v", n, err)
		}
		// …until one of them ends
		a.Close()
		roundTrip(t, c, bufio.NewReader(c))
	})
}
