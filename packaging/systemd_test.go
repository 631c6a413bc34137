package packaging

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSystemdUnit: `systemd-analyze verify` accepts packaging/mailgate.service
// without a word, the unit keeps the hardening the README promises, and the
// check does see a broken unit.
func TestSystemdUnit(t *testing.T) {
	analyze := need(t, "systemd-analyze", "Debian's systemd package verifies the unit")
	unit, err := os.ReadFile(filepath.Join(root(t), "packaging", "mailgate.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"User=mailgate", "StateDirectory=mailgate", "ProtectSystem=strict", "ProtectHome=yes",
		"PrivateTmp=yes", "NoNewPrivileges=yes", "CapabilityBoundingSet=\n", "RestrictAddressFamilies=",
		"SystemCallFilter=@system-service", "Restart=on-failure", "ExecReload=/bin/kill -HUP $MAINPID",
		"Environment=MAILGATE_CONFIG=/etc/mailgate/mailgate.yaml", "ExecStart=/usr/local/bin/mailgate serve",
	} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("mailgate.service lacks %q", want)
		}
	}

	// verify wants ExecStart's program to exist: the unit is checked as
	// installed, with /usr/local/bin/mailgate standing for this test binary
	// (any executable will do, verify does not run it)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	verify := func(name, text string) string {
		t.Helper()
		path := filepath.Join(t.TempDir(), name)
		text = strings.ReplaceAll(text, "/usr/local/bin/mailgate", self)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		stdout, stderr, err := run(t, 2*time.Minute, nil, analyze, "verify", path)
		out := strings.TrimSpace(stdout + stderr)
		if err != nil && out == "" {
			out = err.Error()
		}
		return out
	}
	if out := verify("mailgate.service", string(unit)); out != "" {
		t.Errorf("systemd-analyze verify mailgate.service:\n%s", out)
	}
	// verify exits 0 for a value it ignores, so the check is "no output":
	// these must be reported
	broken := map[string]string{
		"a wrong value":    strings.Replace(string(unit), "ProtectSystem=strict", "ProtectSystem=sideways", 1),
		"a missing binary": strings.Replace(string(unit), "ExecStart=/usr/local/bin/mailgate", "ExecStart=/nonexistent/mailgate", 1),
	}
	for what, text := range broken {
		if out := verify("mailgate.service", text); out == "" {
			t.Errorf("systemd-analyze verify said nothing of a unit with %s", what)
		}
	}
}
