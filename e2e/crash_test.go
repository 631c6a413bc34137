package e2e

import (
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/dovecot"
	"github.com/mailgate/mailgate/internal/emulator"
)

// imapConfig appends one IMAP mailbox on dv to the emulator's config in dir.
func imapConfig(t *testing.T, dir string, dv *dovecot.Server, user, after string, batch int) {
	t.Helper()
	host, port, _ := strings.Cut(dv.Addr("imaps"), ":")
	appendConfig(t, dir, fmt.Sprintf("mailboxes:\n  - {name: mb, protocol: imap, host: %s, port: %s, security: tls, tls_ca: '%s', sasl: xoauth2, username: %s, profile: emulator-secret, after: '%s', sink: out, batch_size: %d}\nsinks:\n  - {name: out, type: maildir, path: ./inbox}\n",
		host, port, dv.CAFile(), user, after, batch))
}

// maildirHolds fails t unless the maildir inbox's new/ holds exactly the
// messages want, byte for byte, each once (the files' order aside).
func maildirHolds(t *testing.T, inbox string, want [][]byte) {
	t.Helper()
	left := map[[32]byte]int{}
	for _, b := range want {
		left[sha256.Sum256(b)]++
	}
	files, err := os.ReadDir(filepath.Join(inbox, "new"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(inbox, "new", f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256(b)
		if left[h] == 0 {
			t.Fatalf("%s is not one of the %d messages, or came twice", f.Name(), len(want))
		}
		left[h]--
	}
	if len(files) != len(want) {
		t.Fatalf("%d files in the maildir, want %d", len(files), len(want))
	}
}

// seeded is what dovecot's Seed(user, n, size) put into user's mailbox.
func seeded(user string, n, size int) [][]byte {
	var out [][]byte
	for k := 1; k <= n; k++ {
		out = append(out, dovecot.SeedBody(user, k, size))
	}
	return out
}

// TestCrashSafety kills `mailgate run --once` (SIGKILL) at random moments
// while it ingests 2,000 messages, restarting it each time: the maildir
// ends with exactly the 2,000 messages, none twice.
func TestCrashSafety(t *testing.T) {
	const n = 2000
	srv, dir := emulatorConfig(t, "")
	dv := dovecot.StartT(t, dovecot.Options{CheckURL: srv.HTTPURL()})
	if err := dv.Seed(emulator.DemoSharedMailbox, n, 5000); err != nil {
		t.Fatal(err)
	}
	imapConfig(t, dir, dv, emulator.DemoSharedMailbox, "seen", 50)
	kills := killMidRun(t, dir, filepath.Join(dir, "inbox"), 12)
	if kills < 10 {
		t.Fatalf("only %d kills landed mid-delivery", kills)
	}
	r := mailgate(t, t.Context(), dir, "run", "--once")
	if r.code != 0 {
		t.Fatalf("final run: %d\n%s", r.code, r.stderr)
	}
	maildirHolds(t, filepath.Join(dir, "inbox"), seeded(emulator.DemoSharedMailbox, n, 5000))
	t.Logf("%d SIGKILLs mid-run; %d messages, each once", kills, n)
}

// TestLargeMessageBoundedMemory delivers a 50 MB message with the binary
// and checks its peak RSS stays under 100 MB.
func TestLargeMessageBoundedMemory(t *testing.T) {
	srv, dir := emulatorConfig(t, "")
	dv := dovecot.StartT(t, dovecot.Options{CheckURL: srv.HTTPURL()})
	var b strings.Builder
	b.WriteString("Message-ID: <big@mailgate.test>\r\nSubject: big\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	line := strings.Repeat("QUJDREVGR0hJSktMTU5PUFFSU1RVVldY", 3)[:76] + "\r\n"
	for b.Len() < 50<<20 {
		b.WriteString(line)
	}
	raw := []byte(b.String())
	if err := dv.SeedMessage(emulator.DemoInvoicesMailbox, raw); err != nil {
		t.Fatal(err)
	}
	imapConfig(t, dir, dv, emulator.DemoInvoicesMailbox, "seen", 100)
	cmd := exec.Command(mailgateBin, "run", "--once")
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "MAILGATE_KEY=" + testKey}
	// ru_maxrss would count the test process's own memory at fork time, so
	// the child's high-water mark (VmHWM, reset at exec) is sampled instead.
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	hwm := make(chan int, 1)
	go func() {
		peak := 0
		for {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
			if err != nil {
				hwm <- peak
				return
			}
			for _, l := range strings.Split(string(b), "\n") {
				var kb int
				if _, err := fmt.Sscanf(l, "VmHWM: %d kB", &kb); err == nil && kb > peak {
					peak = kb
				}
			}
			time.Sleep(time.Millisecond)
		}
	}()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	rssMB := float64(<-hwm) / 1024
	files, _ := os.ReadDir(filepath.Join(dir, "inbox", "new"))
	if len(files) != 1 {
		t.Fatalf("%d files", len(files))
	}
	got, _ := os.ReadFile(filepath.Join(dir, "inbox", "new", files[0].Name()))
	if sha256.Sum256(got) != sha256.Sum256(raw) {
		t.Fatal("the 50 MB message changed on the way")
	}
	if rssMB >= 100 {
		t.Fatalf("peak RSS %.1f MB for a %d MB message", rssMB, len(raw)>>20)
	}
	t.Logf("50 MB message delivered; peak RSS %.1f MB", rssMB)
}
