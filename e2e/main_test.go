package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// mailgateBin is the binary under test, built once by TestMain.
var mailgateBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mailgate-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	mailgateBin = filepath.Join(dir, "mailgate")
	build := exec.Command("go", "build", "-o", mailgateBin, "../cmd/mailgate")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building mailgate:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testKey is a fixed store key for the tests (MAILGATE_KEY).
const testKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

// result is one run of the binary.
type result struct {
	code           int
	stdout, stderr string
}

// mailgate runs the binary in dir with a clean environment.
func mailgate(t *testing.T, ctx context.Context, dir string, args ...string) result {
	t.Helper()
	return runMailgate(t, ctx, dir, "", args...)
}

// mailgateStdin is mailgate with stdin (a password, a message).
func mailgateStdin(t *testing.T, dir, stdin string, args ...string) result {
	t.Helper()
	return runMailgate(t, t.Context(), dir, stdin, args...)
}

func runMailgate(t *testing.T, ctx context.Context, dir, stdin string, args ...string) result {
	t.Helper()
	cmd := exec.CommandContext(ctx, mailgateBin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "MAILGATE_KEY=" + testKey, "NO_PROXY=*"}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running mailgate %s: %v", strings.Join(args, " "), err)
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}
