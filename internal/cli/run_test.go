package cli

import (
	"strings"
	"testing"
)

// TestRunOnceByDefault: `mailgate run` reads the mailboxes once whether or
// not --once is given (it used to print only its usage without it), and
// its help names no placeholder taken from backquoted text.
func TestRunOnceByDefault(t *testing.T) {
	path := writeConfig(t, strings.Replace(goodConfig, "    sink: out\n", "    sink: out\n    enabled: false\n", 1))
	for _, args := range [][]string{
		{"run", "--config", path},
		{"run", "--once", "--config", path},
	} {
		code, _, errs := runCLI(t, args...)
		// the only mailbox is disabled: run got past its flags and looked
		if code != ExitUsage || !strings.Contains(errs, "no enabled mailbox") || strings.Contains(errs, "usage:") {
			t.Errorf("%v: exit %d\n%s", args, code, errs)
		}
	}
	code, _, errs := runCLI(t, "run", "-h")
	if code != ExitOK {
		t.Fatalf("run -h: exit %d\n%s", code, errs)
	}
	if !strings.Contains(errs, "  -once\n") || strings.Contains(errs, "-once mailgate") {
		t.Errorf("run -h:\n%s", errs)
	}
}
