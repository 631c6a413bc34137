// Tests of what ships beside the binary: the systemd unit, the release
// script, the container image and the monitoring files. They run the
// project's own scripts (scripts/release.sh, scripts/image.sh), which build
// the binary themselves the way a release does.
package packaging

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// requireEnv is DEVELOPING.md's rule 7: a test that needs a tool this
// machine lacks fails under it and skips otherwise.
const requireEnv = "MAILGATE_REQUIRE_INTEGRATION"

// root is the repository's top directory (tests run in packaging/).
func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// need returns the path of a program, or fails (under requireEnv) or skips
// the test.
func need(t *testing.T, program, why string) string {
	t.Helper()
	p, err := exec.LookPath(program)
	if err == nil {
		return p
	}
	if os.Getenv(requireEnv) == "1" {
		t.Fatalf("%s is missing (%s): %v", program, why, err)
	}
	t.Skipf("%s is missing (%s); %s=1 makes this a failure", program, why, requireEnv)
	return ""
}

// run runs a program with a generous timeout and returns its stdout and
// stderr; err is the exit status.
func run(t *testing.T, timeout time.Duration, env []string, name string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return runIn(t, timeout, env, "", name, args...)
}

// runStdin is run with stdin (a password).
func runStdin(t *testing.T, stdin, name string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return runIn(t, 5*time.Minute, nil, stdin, name, args...)
}

func runIn(t *testing.T, timeout time.Duration, env []string, stdin, name string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	return runCtx(ctx, env, stdin, name, args...)
}

// cleanup runs a program from a t.Cleanup function (t.Context is done by
// then).
func cleanup(name string, args ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	runCtx(ctx, nil, "", name, args...)
}

func runCtx(ctx context.Context, env []string, stdin, name string, args ...string) (stdout, stderr string, err error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// headCommit is the commit the scripts stamp: HEAD, +dirty when tracked
// files changed (scripts/buildinfo.sh).
func headCommit(t *testing.T) string {
	t.Helper()
	out, _, err := run(t, time.Minute, nil, "git", "-C", root(t), "rev-parse", "HEAD")
	if err != nil {
		t.Fatalf("git rev-parse: %v", err)
	}
	commit := strings.TrimSpace(out)
	status, _, err := run(t, time.Minute, nil, "git", "-C", root(t), "status", "--porcelain", "--untracked-files=no")
	if err != nil {
		t.Fatalf("git status: %v", err)
	}
	if strings.TrimSpace(status) != "" {
		commit += "+dirty"
	}
	return commit
}
