package e2e

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDemoConsole runs the README's first command as a newcomer would:
// `mailgate demo` (no tenant, no Dovecot) prints a console URL and a
// password; signing in shows the demo mailbox with mail delivered within
// 10 seconds of the URL appearing; serve's agents also read the
// Workspace mailbox (alice's Gmail through the service account).
func TestDemoConsole(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(mailgateBin, "demo", "--dir", dir, "--console", "127.0.0.1:0")
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir}
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	re := regexp.MustCompile(`Console: (http://127\.0\.0\.1:\d+)/\s+Sign in as: admin\s+Password:\s+(\S+)`)
	var m []string
	for deadline := time.Now().Add(60 * time.Second); m == nil; time.Sleep(20 * time.Millisecond) {
		m = re.FindStringSubmatch(out.String())
		if time.Now().After(deadline) {
			t.Fatalf("no console URL and password:\n%s", out.String())
		}
	}
	shown := time.Now()
	base, password := m[1], m[2]
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 5 * time.Second}
	var page string
	for {
		resp, err := c.PostForm(base+"/login", url.Values{"name": {"admin"}, "password": {password}})
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			page = string(b)
			if strings.Contains(page, `data-name="forms"`) && regexp.MustCompile(`class="delivered">[1-9]`).MatchString(page) {
				break
			}
		}
		if time.Since(shown) > 10*time.Second {
			t.Fatalf("no delivered mail on the dashboard 10 s after the URL was printed:\n%s\n%s", page, out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("mail on the console %v after the URL was printed", time.Since(shown).Round(time.Millisecond))
	// serve's IMAP agent (IDLE on the embedded Exchange IMAP service) took
	// the live mail: 5 from the walk-through, its Graph reply, 3 new ones
	waitIn := func(newDir string, n int, what string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			es, _ := os.ReadDir(newDir)
			if len(es) == n {
				return
			}
			if len(es) > n || time.Now().After(deadline) {
				t.Fatalf("%s: %d messages in %s, want %d\n%s", what, len(es), newDir, n, out.String())
			}
		}
	}
	waitFiles := func(n int, what string) { t.Helper(); waitIn(filepath.Join(dir, "inbox", "new"), n, what) }
	waitFiles(9, "after start")
	// the Workspace mailbox (alice's Gmail through the service account):
	// 3 from the walk-through, 2 new ones for serve's agent
	waitIn(filepath.Join(dir, "gmail-inbox", "new"), 5, "alice's Gmail after start")
	// mail sent to the mailbox now arrives while the agent waits in IDLE
	send := exec.Command(mailgateBin, "send", "--sender", "noreply", "--to", "forms@contoso.example", "--config", filepath.Join(dir, "mailgate.yaml"))
	send.Dir, send.Env = dir, cmd.Env
	send.Stdin = strings.NewReader("From: noreply@contoso.example\r\nTo: forms@contoso.example\r\nSubject: while idling\r\n\r\nhello\r\n")
	if b, err := send.CombinedOutput(); err != nil {
		t.Fatalf("mailgate send: %v\n%s", err, b)
	}
	waitFiles(10, "after mailgate send")
	// the invoices agent delivers into mailgate's store: listed, downloadable
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		resp, err := c.Get(base + "/messages")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Count(string(b), `.eml</a>`) == 2 && strings.Contains(string(b), "invoices/graph/") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the store's messages page:\n%s\n%s", b, out.String())
		}
	}
	resp, err := c.Get(base + "/messages/1/eml")
	if err != nil {
		t.Fatal(err)
	}
	eml, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(eml), "Subject: Invoice 2026-") {
		t.Errorf("downloaded .eml: %q", eml)
	}
}
