package packaging

import (
	"bufio"
	"crypto/sha256"
	"debug/macho"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRelease runs scripts/release.sh for linux/amd64 (the platform the
// test runs on, so its binary can tell its version) and darwin/arm64 (the
// platform that needs the maildir's build tags): both binaries are there,
// SHA256SUMS matches them, the Linux one's `version` names the version and
// the commit, the darwin one is an arm64 Mach-O, and the release notes are
// CHANGELOG.md's Unreleased section under the version. The other two
// platforms (linux/arm64, darwin/amd64) only differ in GOARCH; building
// them too would double the test's time.
func TestRelease(t *testing.T) {
	dist := t.TempDir()
	const version = "v0.0.0-test"
	commit := headCommit(t) // before the build, which stamps it
	_, stderr, err := run(t, 30*time.Minute, []string{"MAILGATE_VERSION=" + version, "DIST=" + dist, "PLATFORMS=linux/amd64 darwin/arm64"},
		filepath.Join(root(t), "scripts", "release.sh"))
	if err != nil {
		t.Fatalf("release.sh: %v\n%s", err, stderr)
	}
	linux := filepath.Join(dist, "mailgate-"+version+"-linux-amd64")
	darwin := filepath.Join(dist, "mailgate-"+version+"-darwin-arm64")

	sums, err := os.Open(filepath.Join(dist, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	defer sums.Close()
	listed := map[string]bool{}
	sc := bufio.NewScanner(sums)
	for sc.Scan() {
		want, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("SHA256SUMS line %q is not sha256sum's format", sc.Text())
		}
		b, err := os.ReadFile(filepath.Join(dist, name))
		if err != nil {
			t.Fatalf("SHA256SUMS lists %s: %v", name, err)
		}
		if got := sha256.Sum256(b); hex.EncodeToString(got[:]) != want {
			t.Errorf("SHA256SUMS: %s does not match", name)
		}
		listed[name] = true
	}
	for _, p := range []string{linux, darwin} {
		if !listed[filepath.Base(p)] {
			t.Errorf("SHA256SUMS does not list %s (%v)", filepath.Base(p), listed)
		}
	}

	out, _, err := run(t, time.Minute, nil, linux, "version")
	if err != nil {
		t.Fatalf("%s version: %v", linux, err)
	}
	if want := "mailgate " + version + "\ncommit " + commit + "\n"; !strings.HasPrefix(out, want) {
		t.Errorf("version says\n%s\nwant it to begin with\n%s", out, want)
	}

	f, err := macho.Open(darwin)
	if err != nil {
		t.Fatalf("darwin binary: %v", err)
	}
	if f.Cpu != macho.CpuArm64 {
		t.Errorf("darwin binary is for %v, want arm64", f.Cpu)
	}
	f.Close()

	notes, err := os.ReadFile(filepath.Join(dist, "CHANGELOG-"+version+".md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(notes), "## ["+version+"] - ") || !strings.Contains(string(notes), "### Added") {
		t.Errorf("release notes:\n%s\nwant the Unreleased section under ## [%s] - DATE", notes, version)
	}
}
