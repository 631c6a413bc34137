package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailgate/mailgate/internal/cmdline"
)

// TestGlobalFlags: the global flags may come before the command; -c and
// --config name the file, --version is the version command, and a bad
// --log-level is a usage error.
func TestGlobalFlags(t *testing.T) {
	good := writeConfig(t, goodConfig)
	tests := []struct {
		name string
		args []string
		code int
		out  string // stdout prefix
	}{
		{"--config before", []string{"--config", good, "config", "check"}, ExitOK, "config OK: " + good},
		{"--config= before", []string{"--config=" + good, "config", "check"}, ExitOK, "config OK: " + good},
		{"-c before", []string{"-c", good, "config", "check"}, ExitOK, "config OK: " + good},
		{"-c after", []string{"config", "check", "-c", good}, ExitOK, "config OK: " + good},
		{"--config after wins", []string{"-c", "/nonexistent.yaml", "config", "check", "--config", good}, ExitOK, "config OK: " + good},
		{"--version", []string{"--version"}, ExitOK, "mailgate "},
		{"log flags before", []string{"-v", "--log-level", "warn", "--log-format", "json", "-c", good, "config", "check"}, ExitOK, "config OK"},
		{"log flags after", []string{"config", "check", "-c", good, "--verbose", "--log-format=text"}, ExitOK, "config OK"},
		{"bad level", []string{"--log-level", "loud", "version"}, ExitUsage, ""},
		{"bad format after", []string{"version", "--log-format", "xml"}, ExitUsage, ""},
		{"unknown global", []string{"--frobnicate", "version"}, ExitUsage, ""},
		{"help", []string{"-h"}, ExitOK, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runCLI(t, tc.args...)
			if code != tc.code || !strings.HasPrefix(out, tc.out) {
				t.Errorf("exit %d, stdout %q; want %d, %q\nstderr:\n%s", code, out, tc.code, tc.out, errs)
			}
		})
	}
	if _, _, errs := runCLI(t, "--log-level", "loud", "version"); !strings.Contains(errs, "debug, info, warn, error") {
		t.Errorf("bad level: stderr does not list the levels:\n%s", errs)
	}
}

// TestErrorPrefix: commands report errors as "mailgate: COMMAND: …".
func TestErrorPrefix(t *testing.T) {
	for _, args := range [][]string{
		{"config", "lint"},
		{"demo", "extra"},
		{"emulator", "extra"},
		{"cert", "new", "--cn", "x", "--out", t.TempDir(), "--bits", "512"},
		{"completion", "tcsh"},
	} {
		_, _, errs := runCLI(t, args...)
		prefix := "mailgate: " + args[0] + ": "
		if args[0] == "cert" {
			prefix = "mailgate: cert new: "
		}
		if !strings.HasPrefix(errs, prefix) {
			t.Errorf("%v: stderr %q does not start with %q", args, errs, prefix)
		}
	}
}

// TestCompletion: each shell's script names every command and its flags;
// bash's passes bash -n.
func TestCompletion(t *testing.T) {
	for _, sh := range cmdline.Shells {
		code, out, errs := runCLI(t, "completion", sh)
		if code != ExitOK || out == "" {
			t.Fatalf("%s: exit %d, %d bytes\n%s", sh, code, len(out), errs)
		}
		for _, w := range []string{"serve", "token", "config", "reference", "--scope", "--grace", "--log-format", "json"} {
			if sh == "fish" {
				w = strings.Replace(w, "--", "-l ", 1) // complete -c mailgate -l scope
			}
			if !strings.Contains(out, w) {
				t.Errorf("%s: %q missing", sh, w)
			}
		}
		if sh != "bash" {
			continue
		}
		bash, err := exec.LookPath("bash")
		if err != nil {
			t.Fatal("bash is needed to check the bash script")
		}
		f := filepath.Join(t.TempDir(), "mailgate.bash")
		if err := os.WriteFile(f, []byte(out), 0o600); err != nil {
			t.Fatal(err)
		}
		if b, err := exec.Command(bash, "-n", f).CombinedOutput(); err != nil {
			t.Errorf("bash -n: %v\n%s", err, b)
		}
		// and it completes: the commands after mailgate, serve's flags after serve
		script := out + "\nCOMP_WORDS=(mailgate -c x se); COMP_CWORD=3; _mailgate; echo \"${COMPREPLY[*]}\"\n" +
			"COMP_WORDS=(mailgate serve --gr); COMP_CWORD=2; _mailgate; echo \"${COMPREPLY[*]}\"\n"
		b, err := exec.Command(bash, "-c", script).CombinedOutput()
		if err != nil || !bytes.Equal(b, []byte("send serve\n--grace\n")) {
			t.Errorf("bash completion: %v\n%q", err, b)
		}
	}
	if code, _, _ := runCLI(t, "completion"); code != ExitUsage {
		t.Errorf("no shell: exit %d", code)
	}
}

// TestWarningsAsJSON: with --log-format json (or log.format: json) the
// config's warnings are JSON log lines, as serve's log is.
func TestWarningsAsJSON(t *testing.T) {
	warned := goodConfig + "listen: 0.0.0.0:8025\n"
	for _, tc := range []struct {
		name string
		args []string
		src  string
	}{
		{"flag", []string{"--log-format", "json", "config", "check"}, warned},
		{"config", []string{"config", "check"}, warned + "log: {format: json}\n"},
	} {
		path := writeConfig(t, tc.src)
		code, _, errs := runCLI(t, append(tc.args, "-c", path)...)
		var found bool
		for _, l := range strings.Split(errs, "\n") {
			var v struct{ Level, Msg string }
			if json.Unmarshal([]byte(l), &v) == nil && v.Level == "WARN" && strings.Contains(v.Msg, "listen: the console is served over plain HTTP") {
				found = true
			}
		}
		if code != ExitOK || !found {
			t.Errorf("%s: exit %d, no JSON warning line:\n%s", tc.name, code, errs)
		}
	}
}
