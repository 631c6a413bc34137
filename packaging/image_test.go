package packaging

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// podmanRun is how this environment runs containers: runc (crun's default
// rlimits are refused here) with limits it accepts.
var podmanRun = []string{"--runtime", "runc", "run", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"}

// TestImage builds the image with scripts/image.sh and runs it in podman:
// `version` names the commit, `config check` reads a mounted config, and
// `serve` with the config and key mounted answers /healthz on a published
// port, its HEALTHCHECK passes, the first administrator is added and given
// an API token through `podman exec`, and /metrics shows every metric the
// alert rules and the dashboard query.
func TestImage(t *testing.T) {
	if os.Getenv(requireEnv) != "1" && !haveProgram("podman") {
		t.Skipf("podman is missing (scripts/image.sh installs it as root); %s=1 makes this a failure", requireEnv)
	}
	commit := headCommit(t) // before the build, which stamps it
	// as root, image.sh installs podman and runc when they are missing
	version := fmt.Sprintf("test-%d", time.Now().UnixNano())
	stdout, stderr, err := run(t, 30*time.Minute, []string{"MAILGATE_VERSION=" + version}, filepath.Join(root(t), "scripts", "image.sh"))
	if err != nil {
		t.Fatalf("image.sh: %v\n%s", err, stderr)
	}
	image := "localhost/mailgate:" + version
	if got := strings.TrimSpace(stdout); got != image {
		t.Fatalf("image.sh printed %q, want %q", got, image)
	}
	podman := need(t, "podman", "the container engine")
	t.Cleanup(func() {
		// the version tag goes; latest stays, pointing at this build, and
		// the image it replaced (now untagged) is pruned
		cleanup(podman, "rmi", image)
		cleanup(podman, "image", "prune", "-f")
	})
	pod := func(args ...string) (string, string, error) {
		t.Helper()
		return run(t, 5*time.Minute, nil, podman, args...)
	}

	out, stderr, err := pod(append(podmanRun, "--rm", "--no-healthcheck", image, "version")...)
	if err != nil {
		t.Fatalf("version: %v\n%s", err, stderr)
	}
	if want := "mailgate " + version + "\ncommit " + commit + "\n"; !strings.HasPrefix(out, want) {
		t.Errorf("version in the image says\n%s\nwant it to begin with\n%s", out, want)
	}

	// the config and key as the README mounts them: a directory on
	// /etc/mailgate, the key readable by the image's user only
	etc := t.TempDir()
	config := "listen: 0.0.0.0:8025\nstore: sqlite:/var/lib/mailgate/mailgate.db\n"
	if err := os.WriteFile(filepath.Join(etc, "mailgate.yaml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(etc, "mailgate.key")
	if err := os.WriteFile(key, []byte("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(key, 10001, 10001); err != nil {
		t.Fatalf("the key must belong to the image's user 10001 (this test runs podman as root): %v", err)
	}
	if err := os.Chmod(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	mount := etc + ":/etc/mailgate:ro"

	out, stderr, err = pod(append(podmanRun, "--rm", "--no-healthcheck", "-v", mount, image, "config", "check")...)
	if err != nil || !strings.Contains(out+stderr, "config OK: /etc/mailgate/mailgate.yaml") {
		t.Fatalf("config check: %v\n%s%s", err, out, stderr)
	}

	port := freePort(t)
	name := "mailgate-test-" + version
	_, stderr, err = pod(append(podmanRun, "-d", "--name", name, "-p", fmt.Sprintf("127.0.0.1:%d:8025", port), "-v", mount, image)...)
	if err != nil {
		t.Fatalf("serve: %v\n%s", err, stderr)
	}
	t.Cleanup(func() { cleanup(podman, "rm", "-f", "-v", name) })
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	if body, err := waitHealthy(t, base+"/healthz", 2*time.Minute); err != nil {
		logs, logErr, _ := pod("logs", name)
		t.Fatalf("/healthz from the host: %v (%q)\ncontainer log:\n%s%s", err, body, logs, logErr)
	}

	// HEALTHCHECK: podman runs it on request (without systemd there is no
	// timer running it; its complaint about that is on stderr, ignored)
	if _, stderr, err := pod("healthcheck", "run", name); err != nil {
		t.Errorf("podman healthcheck run: %v\n%s", err, stderr)
	}
	out, _, _ = pod("inspect", "--format", "{{.State.Health.Status}}", name)
	if strings.TrimSpace(out) != "healthy" {
		t.Errorf("health status %q, want healthy", strings.TrimSpace(out))
	}

	// the first administrator and an API token, as the README shows
	if _, stderr, err := runStdin(t, "correct horse battery staple\n", podman, "exec", "-i", name, "/usr/local/bin/mailgate", "admin", "add", "ops"); err != nil {
		t.Fatalf("admin add in the container: %v\n%s", err, stderr)
	}
	tok, stderr, err := pod("exec", name, "/usr/local/bin/mailgate", "admin", "token", "ops")
	if err != nil {
		t.Fatalf("admin token in the container: %v\n%s", err, stderr)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(tok))
	resp, err := direct.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s\n%s", resp.Status, body)
	}
	exposed := func(name string) bool { return strings.Contains(string(body), "# TYPE "+name+" ") }
	for _, n := range monitoringMetrics(t) {
		if !exposed(family(n, exposed)) {
			t.Errorf("/metrics does not expose %s, which packaging/ queries", n)
		}
	}
}

func haveProgram(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}

// direct is an HTTP client that ignores proxy settings (the server is on
// this machine).
var direct = &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: time.Minute}

// freePort returns a TCP port nothing listens on at the moment.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitHealthy polls url until it answers 200 or the time is up.
func waitHealthy(t *testing.T, url string, limit time.Duration) (string, error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		resp, err := direct.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return string(b), nil
			}
			err = fmt.Errorf("%s", resp.Status)
		}
		if time.Now().After(deadline) {
			return "", err
		}
		time.Sleep(500 * time.Millisecond)
	}
}
