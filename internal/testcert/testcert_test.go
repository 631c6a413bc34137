package testcert

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestNew: each kind of certificate verifies for the names it is for,
// through the pool, and for nothing else; an expired one does not verify.
func TestNew(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name     string
		o        Options
		verifies map[string]bool // name -> verifies through Pool
		selfRoot bool            // Root is Leaf
	}{
		{"default", Options{}, map[string]bool{"127.0.0.1": true, "localhost": true, "example.com": false}, true},
		{"ca", Options{CA: true}, map[string]bool{"127.0.0.1": true, "localhost": true, "::1": false}, false},
		{"other name", Options{Names: []string{"mail.example.com"}}, map[string]bool{"mail.example.com": true, "127.0.0.1": false}, true},
		{"expired", Options{NotAfter: now.Add(-time.Hour)}, map[string]bool{"127.0.0.1": false}, true},
		{"expired ca", Options{CA: true, NotAfter: now.Add(-time.Hour)}, map[string]bool{"127.0.0.1": false}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Make(t, tt.o)
			if (c.Root == c.Leaf) != tt.selfRoot || c.Leaf.IsCA {
				t.Errorf("root is leaf %v (want %v), leaf IsCA %v", c.Root == c.Leaf, tt.selfRoot, c.Leaf.IsCA)
			}
			if !tt.o.NotAfter.IsZero() && !c.Leaf.NotAfter.Equal(tt.o.NotAfter.Truncate(time.Second)) {
				t.Errorf("NotAfter %s, want %s", c.Leaf.NotAfter, tt.o.NotAfter)
			}
			for name, want := range tt.verifies {
				_, err := c.Leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: c.Pool()})
				if (err == nil) != want {
					t.Errorf("verify for %s: %v, want verified %v", name, err, want)
				}
			}
		})
	}
}

// TestServerAndFiles: a client trusting Pool, and one trusting the
// written root file, complete a handshake with ServerConfig; the written
// certificate and key load as a pair.
func TestServerAndFiles(t *testing.T) {
	c := Make(t, Options{CA: true})
	dir := t.TempDir()
	crt, key := c.WriteFiles(t, dir, "srv")
	if _, err := tls.LoadX509KeyPair(crt, key); err != nil {
		t.Fatalf("written pair: %v", err)
	}
	rootFile := filepath.Join(dir, "ca.pem")
	c.WriteRoot(t, rootFile)
	b, err := os.ReadFile(rootFile)
	if err != nil {
		t.Fatal(err)
	}
	filePool := x509.NewCertPool()
	if !filePool.AppendCertsFromPEM(b) {
		t.Fatal("the root file holds no certificate")
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", c.ServerConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			_ = conn.(*tls.Conn).Handshake()
			conn.Close()
		}
	}()
	for name, pool := range map[string]*x509.CertPool{"pool": c.Pool(), "file": filePool, "none": x509.NewCertPool()} {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Minute}, "tcp", ln.Addr().String(), &tls.Config{RootCAs: pool})
		if name == "none" {
			if err == nil {
				conn.Close()
				t.Error("a client trusting nothing completed the handshake")
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		conn.Close()
	}
}
