package app

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/mailgate/mailgate/internal/config"
)

// httpLimits bound what clients can hold of serve's HTTP server (the
// console, /api/v1, /metrics): a client that sends its headers or body
// slowly, reads the answer slowly or keeps an idle connection open is cut
// off, and at most MaxConns connections are served at once; further ones
// wait in the listen queue until one ends.
type httpLimits struct {
	ReadHeader     time.Duration // the request line and headers
	Read           time.Duration // the whole request, body included
	Write          time.Duration // from the end of the headers to the end of the answer
	Idle           time.Duration // a keep-alive connection between requests
	MaxHeaderBytes int
	MaxConns       int
}

// serveLimits are serve's. Write leaves room for the Test button, which
// the console cuts at web.TestTimeout.
var serveLimits = httpLimits{
	ReadHeader:     10 * time.Second,
	Read:           30 * time.Second,
	Write:          2 * time.Minute,
	Idle:           60 * time.Second,
	MaxHeaderBytes: 64 << 10,
	MaxConns:       256,
}

// server builds an http.Server for h with the limits.
func (l httpLimits) server(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: l.ReadHeader, ReadTimeout: l.Read, WriteTimeout: l.Write,
		IdleTimeout: l.Idle, MaxHeaderBytes: l.MaxHeaderBytes}
}

// limitListener accepts at most n connections at once: Accept waits for a
// connection to be closed before taking the next one from the listen queue.
// It goes under a TLS listener (http.Server must see *tls.Conn).
func limitListener(ln net.Listener, n int) net.Listener {
	return &limitedListener{Listener: ln, slots: make(chan struct{}, n), done: make(chan struct{})}
}

type limitedListener struct {
	net.Listener
	slots     chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func (l *limitedListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitedConn{Conn: c, release: func() { <-l.slots }}, nil
}

func (l *limitedListener) Close() error {
	err := l.Listener.Close()
	l.closeOnce.Do(func() { close(l.done) })
	return err
}

// limitedConn gives its slot back once, on the first Close.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// Listen opens serve's listener on cfg.Listen: at most serveLimits.MaxConns
// connections at once, TLS when tls_cert and tls_key are set (scheme
// https, else http). A key pair that does not load is a *KeyError.
func Listen(cfg *config.Config) (ln net.Listener, scheme string, err error) {
	ln, err = net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, "", fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	ln = limitListener(ln, serveLimits.MaxConns)
	if cfg.TLSCert == "" {
		return ln, "http", nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		ln.Close()
		return nil, "", &KeyError{Key: "tls_cert, tls_key", Err: err}
	}
	return tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}), "https", nil
}

// HTTPServer is serve's http.Server for h, with serve's limits on what a
// client can hold (slow headers, bodies and readers, idle connections).
func HTTPServer(h http.Handler) *http.Server { return serveLimits.server(h) }
