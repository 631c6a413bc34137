package e2e

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/mailgate/mailgate/internal/emulator"
)

// TestMSALAgainstEmulator cross-checks the emulator with Microsoft's own
// library (Debian's python3-msal): it must accept MSAL's requests and its
// client assertion, and answer in a shape MSAL parses, including errors.
func TestMSALAgainstEmulator(t *testing.T) {
	const python = "/usr/bin/python3"
	requireTool(t, python, "-c", "import msal")
	srv, err := emulator.Start(t.Context(), emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	authority := srv.URL() + "/" + emulator.DemoTenantID
	cmd := exec.CommandContext(t.Context(), python, "testdata/msal_check.py", authority, srv.CAFile(), emulator.DemoAppID,
		filepath.Join(srv.Dir(), "client-secret.txt"), filepath.Join(srv.Dir(), "app-cert.pem"), filepath.Join(srv.Dir(), "app-key.pem"),
		"https://outlook.office365.com/.default")
	cmd.Env = []string{"NO_PROXY=*", "PATH=/usr/bin:/bin"}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("msal_check.py: %v\n%s", err, out)
	}
	var r struct {
		Version      string `json:"msal_version"`
		Secret, Cert string
		Error        any
		BadErr       string `json:"bad_secret_error"`
		BadCodes     []int  `json:"bad_secret_codes"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if r.Error != nil {
		t.Fatalf("MSAL %s failed: %v", r.Version, r.Error)
	}
	for name, tok := range map[string]string{"secret": r.Secret, "certificate": r.Cert} {
		c, err := srv.VerifyAccessToken(tok)
		if err != nil {
			t.Fatalf("%s token: %v", name, err)
		}
		if c.AppID != emulator.DemoAppID || c.Aud != "https://outlook.office365.com" || len(c.Roles) == 0 {
			t.Errorf("%s token claims %+v", name, c)
		}
	}
	if r.BadErr != "invalid_client" || len(r.BadCodes) != 1 || r.BadCodes[0] != 7000215 {
		t.Errorf("MSAL saw a wrong secret as %q %v", r.BadErr, r.BadCodes)
	}
	t.Logf("MSAL %s: secret and certificate tokens accepted, %d token requests", r.Version, srv.TokenRequests())
}
