// Package e2e holds end-to-end tests: the mailgate binary and independent
// clients against the project's real test servers (the Entra ID emulator,
// and in later suites Dovecot and PostgreSQL).
package e2e

import (
	"os"
	"os/exec"
	"testing"
)

// requireTool skips when an external tool is missing, or fails when
// MAILGATE_REQUIRE_INTEGRATION=1 (as in CI, where scripts install it).
func requireTool(t *testing.T, path string, check ...string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		skipOrFail(t, path+" is missing (scripts/install-deps.sh installs it)")
	}
	if len(check) > 0 {
		if out, err := exec.Command(path, check...).CombinedOutput(); err != nil {
			skipOrFail(t, path+" "+check[0]+" failed: "+string(out))
		}
	}
}

func skipOrFail(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("MAILGATE_REQUIRE_INTEGRATION") == "1" {
		t.Fatal(why)
	}
	t.Skip(why)
}
