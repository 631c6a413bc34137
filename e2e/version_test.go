package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

// TestVersionNamesCommit: scripts/mailgate says on stderr that it builds,
// and the binary it builds names the commit it was built from, even with
// GOFLAGS=-buildvcs=false (then Go records no VCS stamp and the script's
// linker flag carries it).
func TestVersionNamesCommit(t *testing.T) {
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatalf("git rev-parse HEAD (the e2e tests run in a git checkout): %v", err)
	}
	cmd := exec.CommandContext(t.Context(), "../scripts/mailgate", "version")
	cmd.Env = append(cmd.Environ(), "GOFLAGS=-buildvcs=false")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("scripts/mailgate version: %v\n%s%s", err, out, stderr.String())
	}
	if !strings.Contains(stderr.String(), "scripts/mailgate: building bin/mailgate") {
		t.Errorf("the script does not say it builds; stderr:\n%s", stderr.String())
	}
	want := "commit " + strings.TrimSpace(string(head))
	if !strings.Contains(string(out), want) {
		t.Errorf("version says\n%s\nwant a line starting %q", out, want)
	}
}
