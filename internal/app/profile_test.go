package app

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/mailgate/mailgate/internal/config"
)

// TestOAuthProfileHTTPKey: a refused http_proxy or tls_ca is reported
// under the key that holds it, told apart by oauth's typed error (a CA
// file whose path says "proxy" is still the tls_ca's fault).
func TestOAuthProfileHTTPKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "proxy")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	noPEM := filepath.Join(dir, "proxy-ca.pem")
	if err := os.WriteFile(noPEM, []byte("no certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, proxy, ca, key string
	}{
		{"bad proxy", "ftp://proxy.example:21", "", "profiles[p].http_proxy"},
		{"bad proxy, good name of a CA file", "ftp://proxy.example:21", noPEM, "profiles[p].http_proxy"},
		{"CA file without certificates", "", noPEM, "profiles[p].tls_ca"},
		{"missing CA file", "", filepath.Join(dir, "missing.pem"), "profiles[p].tls_ca"},
	} {
		cp := &config.Profile{Name: "p", Provider: "microsoft", Grant: "client_credentials", Tenant: "t", ClientID: "c",
			HTTPProxy: tc.proxy, TLSCA: tc.ca}
		_, err := Profile(cp, 0)
		var pe *KeyError
		if !errors.As(err, &pe) {
			t.Errorf("%s: %v, want a *KeyError", tc.name, err)
			continue
		}
		if pe.Key != tc.key {
			t.Errorf("%s: key %s, want %s (%v)", tc.name, pe.Key, tc.key, err)
		}
	}
}
