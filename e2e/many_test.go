package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeManyIdleMailboxes: one `mailgate serve` holds 2,000 IDLE
// mailboxes of one host name (the emulated Exchange Online) at once, with
// one token request in all; mail dropped into 200 random mailboxes arrives
// in the sink once. The former per-host cap held 8.
func TestServeManyIdleMailboxes(t *testing.T) {
	const n, hit = 2000, 200
	// this process holds the server's end of each connection, serve the
	// client's (it inherits the limit)
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Fatal(err)
		}
	}
	if lim.Cur < n+500 {
		skipOrFail(t, fmt.Sprintf("the open file limit is %d; %d mailboxes need %d", lim.Cur, n, n+500))
	}
	srv, dir := emulatorConfig(t, "")
	boxes, err := srv.AddDemoMailboxes(n)
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := strings.Cut(srv.IMAPAddr(), ":")
	var cfg strings.Builder
	cfg.WriteString("listen: 127.0.0.1:0\nagents: {login_rate: 200}\nsinks:\n  - {name: out, type: maildir, path: ./inbox}\nmailboxes:\n")
	for i, b := range boxes {
		fmt.Fprintf(&cfg, "  - {name: mb%d, protocol: imap, host: %s, port: %s, security: tls, tls_ca: '%s', username: %s, profile: emulator-cert, mode: idle, after: seen, sink: out}\n",
			i, host, port, srv.CAFile(), b)
	}
	appendConfig(t, dir, cfg.String())
	tokens := srv.TokenRequests()

	cmd := exec.Command(mailgateBin, "serve")
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "MAILGATE_KEY=" + testKey}
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitUntil := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Minute) // a generous bound for a loaded machine, not a measure
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s\n%s", what, tail(logs.String(), 4000))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	start := time.Now()
	waitUntil("not every mailbox in IDLE", func() bool { return srv.IMAPIdling() == n })
	t.Logf("%d mailboxes in IDLE after %v", n, time.Since(start).Round(time.Millisecond))
	if got := srv.TokenRequests() - tokens; got != 1 {
		t.Errorf("%d token requests for %d mailboxes of one profile, want 1", got, n)
	}

	count := func() int {
		es, _ := os.ReadDir(filepath.Join(dir, "inbox", "new"))
		return len(es)
	}
	for k, i := range rand.Perm(n)[:hit] {
		if _, err := srv.IMAPDeliver(boxes[i], fmt.Appendf(nil, "Message-ID: <many-%d@x>\r\nSubject: %d\r\n\r\nbody\r\n", k, k)); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(fmt.Sprintf("not every message delivered (%d of %d)", count(), hit), func() bool { return count() >= hit })
	waitUntil("not every mailbox back in IDLE", func() bool { return srv.IMAPIdling() == n })
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve exit: %v\n%s", err, tail(logs.String(), 4000))
	}
	if c := count(); c != hit {
		t.Errorf("%d files for %d messages", c, hit)
	}
	if got := srv.TokenRequests() - tokens; got != 1 {
		t.Errorf("%d token requests in all, want 1", got)
	}
	if bad := grepLines(logs.String(), "level=ERROR", "connect failed", "run failed", "idle ended"); bad != "" {
		t.Errorf("a mailbox failed:\n%s", tail(bad, 4000))
	}
}

// tail is the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// grepLines is the lines of s holding any of subs.
func grepLines(s string, subs ...string) string {
	var out []string
	for l := range strings.Lines(s) {
		for _, sub := range subs {
			if strings.Contains(l, sub) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "")
}
