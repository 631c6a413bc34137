package cli

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailgate/mailgate/internal/oauth"
)

// run executes the CLI in-process and returns exit code, stdout and stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(t.Context(), args, Stdio{In: strings.NewReader(""), Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

func TestCertNew(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "creds")
	code, out, errs := runCLI(t, "cert", "new", "--cn", "mailgate-test", "--out", dir, "--days", "30", "--bits", "2048")
	if code != ExitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, errs)
	}
	certPEM, err := os.ReadFile(filepath.Join(dir, "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key.pem mode %v, want 0600", st.Mode().Perm())
	}
	// The pair must be usable as a client certificate credential.
	cc, err := oauth.LoadClientCertificate(certPEM, keyPEM, "")
	if err != nil {
		t.Fatalf("LoadClientCertificate: %v", err)
	}
	_ = cc
	block, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "mailgate-test" {
		t.Errorf("CN = %q", cert.Subject.CommonName)
	}
	if days := cert.NotAfter.Sub(cert.NotBefore).Hours() / 24; days < 29 || days > 31 {
		t.Errorf("validity %.1f days, want 30", days)
	}
	tp := oauth.Thumbprints(cert)
	for _, want := range []string{tp.SHA1, tp.X5T, tp.X5TS256} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "PRIVATE KEY") || strings.Contains(errs, "PRIVATE KEY") {
		t.Error("the private key was printed")
	}

	// A second run must not overwrite the key silently.
	if code, _, errs := runCLI(t, "cert", "new", "--cn", "x", "--out", dir); code != ExitFailed || !strings.Contains(errs, "--force") {
		t.Errorf("second run: exit %d, stderr %q; want 1 and a hint about --force", code, errs)
	}
}

func TestCertNewUsage(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"cert"}, "usage"},
		{[]string{"cert", "new", "--out", t.TempDir()}, "--cn"},
		{[]string{"cert", "new", "--cn", "a"}, "--out"},
		{[]string{"cert", "new", "--cn", "a", "--out", t.TempDir(), "--bits", "1024"}, "2048"},
		{[]string{"cert", "new", "--cn", "a", "--out", t.TempDir(), "--days", "0"}, "--days"},
	}
	for _, tt := range tests {
		code, _, errs := runCLI(t, tt.args...)
		if code != ExitUsage || !strings.Contains(errs, tt.want) {
			t.Errorf("%v: exit %d stderr %q; want 2 mentioning %q", tt.args, code, errs, tt.want)
		}
	}
}
