package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/dovecot"
	"github.com/mailgate/mailgate/internal/emulator"
)

// writeTestCA writes ca.pem (a test CA) and legacy.crt/legacy.key (a
// certificate for 127.0.0.1 it signed) into dir.
func writeTestCA(t *testing.T, dir string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mailgate e2e CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	for name, block := range map[string]*pem.Block{
		"ca.pem": {Type: "CERTIFICATE", Bytes: caDER}, "legacy.crt": {Type: "CERTIFICATE", Bytes: der},
		"legacy.key": {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// proxyConfig appends listeners in front of dv (STARTTLS with the test
// CA's certificate) and accounts: scanner and fetcher read forms and
// invoices, sender sends as noreply.
func proxyConfig(t *testing.T, dir string, dv *dovecot.Server) {
	t.Helper()
	writeTestCA(t, dir)
	up := func(proto, security string) string {
		host, port, _ := strings.Cut(dv.Addr(proto), ":")
		return fmt.Sprintf("{host: %s, port: %s, security: %s, tls_ca: '%s'}", host, port, security, dv.CAFile())
	}
	appendConfig(t, dir, fmt.Sprintf(`listeners:
  - {name: legacy-imap, protocol: imap, listen: '127.0.0.1:0', security: starttls, tls_cert: legacy.crt, tls_key: legacy.key, upstream: %s}
  - {name: legacy-pop3, protocol: pop3, listen: '127.0.0.1:0', security: starttls, tls_cert: legacy.crt, tls_key: legacy.key, upstream: %s}
  - {name: legacy-smtp, protocol: smtp, listen: '127.0.0.1:0', security: starttls, tls_cert: legacy.crt, tls_key: legacy.key, upstream: %s}
accounts:
  - {username: scanner, password: 'scan pw', profile: emulator-secret, mailbox: %s, listeners: [legacy-imap, legacy-pop3]}
  - {username: fetcher, password: fetchpw, profile: emulator-secret, mailbox: %s, listeners: [legacy-imap, legacy-pop3]}
  - {username: sender, password: sendpw, profile: emulator-secret, mailbox: %s, listeners: [legacy-smtp], allowed_from: [%s]}
`, up("imaps", "tls"), up("pop3s", "tls"), up("submission", "starttls"),
		emulator.DemoSharedMailbox, emulator.DemoInvoicesMailbox, emulator.DemoSenderMailbox, emulator.DemoSenderMailbox))
}

// listeners waits for serve's "proxy: listening" lines and returns the
// address of each listener.
func listeners(t *testing.T, s *runningServe, n int) map[string]string {
	t.Helper()
	re := regexp.MustCompile(`proxy: listening" listener=(\S+) protocol=\S+ addr=(\S+)`)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		out := map[string]string{}
		for _, m := range re.FindAllStringSubmatch(s.logs.String(), -1) {
			out[m[1]] = m[2]
		}
		if len(out) >= n {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start %d listeners:\n%s", n, s.logs.String())
		}
	}
}

// fetchmail polls addr with protocol as user (STARTTLS, the test CA),
// delivering each message into its own file under out.
func fetchmail(t *testing.T, dir, addr, protocol, user, password, out string) {
	t.Helper()
	requireTool(t, "/usr/bin/fetchmail")
	// the certificate names localhost (fetchmail checks the name)
	_, port, _ := strings.Cut(addr, ":")
	host := "localhost"
	if err := os.MkdirAll(out, 0o700); err != nil {
		t.Fatal(err)
	}
	mda := filepath.Join(dir, "deliver.sh")
	if err := os.WriteFile(mda, []byte("#!/bin/sh\nf=$(mktemp \"$1/m.XXXXXXXX\") && cat > \"$f\"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	rc := filepath.Join(dir, "fetchmailrc-"+protocol)
	text := fmt.Sprintf("set no syslog\nset invisible\npoll %s service %s protocol %s\n  user \"%s\" password \"%s\" is \"local\" here\n  sslproto 'tls1.2+' sslcertck sslcertfile '%s'\n  keep fetchall no rewrite mda \"%s %s\"\n",
		host, port, protocol, user, password, filepath.Join(dir, "ca.pem"), mda, out)
	if err := os.WriteFile(rc, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), "/usr/bin/fetchmail", "-f", rc, "-N", "--nosyslog", "-v", "--pidfile", filepath.Join(dir, "fetchmail-"+protocol+".pid"),
		"--idfile", filepath.Join(dir, "fetchids-"+protocol))
	cmd.Env = []string{"HOME=" + dir, "PATH=/usr/bin:/bin", "FETCHMAILHOME=" + dir}
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("fetchmail %s: %v\n%s", protocol, err, tail(string(b), 3000))
	}
}

// sameMessages checks that the files under out are the n seeded messages
// of mailbox, each once, byte for byte (line ends as the MDA gets them:
// LF).
func sameMessages(t *testing.T, out, mailbox string, n, size int) {
	t.Helper()
	want := map[string]int{}
	for i := 1; i <= n; i++ {
		want[string(bytes.ReplaceAll(dovecot.SeedBody(mailbox, i, size), []byte("\r\n"), []byte("\n")))]++
	}
	files, _ := os.ReadDir(out)
	if len(files) != n {
		t.Fatalf("%d messages fetched, want %d", len(files), n)
	}
	for _, f := range files {
		b, _ := os.ReadFile(filepath.Join(out, f.Name()))
		if want[string(b)] != 1 {
			t.Fatalf("%s is not one of the seeded messages byte for byte (or came twice):\n%q", f.Name(), b[:min(len(b), 400)])
		}
		want[string(b)]--
	}
}

// TestProxyFetchmail: Debian's fetchmail, which knows no OAuth, polls the
// IMAP and then the POP3 listener of `mailgate serve` with a plain
// password over STARTTLS and fetches 300 messages byte for byte from the
// real Dovecot, which saw only XOAUTH2 logins.
func TestProxyFetchmail(t *testing.T) {
	const n, size = 300, 3000
	srv, dir := emulatorConfig(t, "")
	dv := dovecot.StartT(t, dovecot.Options{CheckURL: srv.HTTPURL()})
	for _, mb := range []string{emulator.DemoSharedMailbox, emulator.DemoInvoicesMailbox} {
		if err := dv.Seed(mb, n, size); err != nil {
			t.Fatal(err)
		}
	}
	proxyConfig(t, dir, dv)
	s := startServe(t, dir)
	ls := listeners(t, s, 3)
	fetchmail(t, dir, ls["legacy-imap"], "IMAP", "scanner", "scan pw", filepath.Join(dir, "imap"))
	sameMessages(t, filepath.Join(dir, "imap"), emulator.DemoSharedMailbox, n, size)
	fetchmail(t, dir, ls["legacy-pop3"], "POP3", "fetcher", "fetchpw", filepath.Join(dir, "pop3"))
	sameMessages(t, filepath.Join(dir, "pop3"), emulator.DemoInvoicesMailbox, n, size)
	if strings.Contains(s.logs.String(), "Bearer") {
		t.Error("serve's log shows a token")
	}
}
