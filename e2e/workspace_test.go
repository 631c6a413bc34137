package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/emulator"
	"github.com/mailgate/mailgate/internal/oauth"
)

// TestWorkspaceMailboxes: the config `mailgate emulator --config-out`
// writes with the Gmail IMAP service on (the google-workspace profile and
// alice's Gmail), plus the same mailbox for bob and carol: one service
// account key reads alice's and bob's Gmail-flavoured mailboxes, each
// message delivered exactly once over two runs, with one token request
// per user (the second run's tokens come from the store's cache); carol,
// outside the delegation, fails in run and in test with the Admin console
// path and the client ID; a service-account token for alice without
// https://mail.google.com/ gets Gmail's challenge, answered with the empty
// line, and the scope is named.
func TestWorkspaceMailboxes(t *testing.T) {
	srv, err := emulator.Start(t.Context(), emulator.Options{HTTPListen: "-", GmailIMAPListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	alice, bob, carol := "alice@"+emulator.GoogleDomain, "bob@"+emulator.GoogleDomain, emulator.GoogleOutsideUser
	want := map[string]int{}
	for user, n := range map[string]int{alice: 2, bob: 3, carol: 1} {
		for i := range n {
			subj := fmt.Sprintf("for %s #%d", user, i)
			if _, err := srv.GmailDeliver(user, fmt.Appendf(nil, "Subject: %s\r\nMessage-ID: <%d.%s>\r\n\r\nhello\r\n", subj, i, user)); err != nil {
				t.Fatal(err)
			}
			if user != carol {
				want["Subject: "+subj+"\r\n"] = 1
			}
		}
	}
	dir := t.TempDir()
	cfg := string(srv.ConfigYAML())
	more := srv.GmailMailboxYAML("workspace-bob", bob, "gmail-inbox") + srv.GmailMailboxYAML("workspace-carol", carol, "gmail-inbox")
	if !strings.Contains(cfg, "\nsinks:\n") {
		t.Fatalf("the emulator's config has no sinks:\n%s", cfg)
	}
	cfg = strings.Replace(cfg, "\nsinks:\n", "\n"+more+"sinks:\n", 1)
	if err := os.WriteFile(filepath.Join(dir, "mailgate.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	for i := range 2 {
		r := mailgate(t, t.Context(), dir, "run", "--once")
		t.Logf("run %d:\n%s", i+1, r.stderr)
		if r.code != 1 {
			t.Fatalf("run %d: exit %d, want 1 (carol fails)\n%s", i+1, r.code, r.stderr)
		}
		for mb, n := range map[string]int{"workspace-alice": 2, "workspace-bob": 3} {
			if line := fmt.Sprintf("%s: %d delivered, ", mb, n*(1-i)); !strings.Contains(r.stderr, line) {
				t.Errorf("run %d: output lacks %q", i+1, line)
			}
		}
		for _, w := range []string{"workspace-carol", oauth.DomainWideDelegationPath, "Client ID " + emulator.GoogleServiceAccountClientID} {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("run %d: output lacks %q", i+1, w)
			}
		}
	}
	files, err := os.ReadDir(filepath.Join(dir, "gmail-inbox", "new"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, "gmail-inbox", "new", f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		subj, _, _ := strings.Cut(string(b[strings.Index(string(b), "Subject: "):]), "\n")
		got[subj+"\n"]++
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("delivered %v, want each of %v once", got, want)
	}
	for _, user := range []string{alice, bob} {
		if n := srv.GoogleTokenRequests(user); n != 1 {
			t.Errorf("%d token requests for %s over two runs, want 1 (cached)", n, user)
		}
	}

	// a service-account token for alice without https://mail.google.com/
	// (delegated, so Google issues it): Gmail's challenge, answered with
	// the empty line, and its scope in the message
	const modify = "https://www.googleapis.com/auth/gmail.modify"
	srv.SetGoogleDelegation(emulator.GoogleServiceAccountClientID, emulator.GoogleMailScope, modify)
	narrow := "  - {name: workspace-modify, provider: google, grant: service_account, service_account_key: 'file:" + srv.GoogleKeyFile() +
		"', tls_ca: '" + srv.CAFile() + "', scopes: [" + modify + "]}\n"
	cfg = strings.Replace(cfg, "\nmailboxes:\n", "\n"+narrow+"mailboxes:\n"+
		strings.Replace(srv.GmailMailboxYAML("modify-alice", alice, "gmail-inbox"), "profile: google-workspace", "profile: workspace-modify", 1), 1)
	if err := os.WriteFile(filepath.Join(dir, "mailgate.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r := mailgate(t, t.Context(), dir, "run", "--once", "--mailbox", "modify-alice")
	t.Logf("gmail.modify only:\n%s", r.stderr)
	if r.code != 1 || !strings.Contains(r.stderr, "scope https://mail.google.com/") || !strings.Contains(r.stderr, "Invalid credentials") {
		t.Errorf("gmail.modify only: exit %d\n%s", r.code, r.stderr)
	}
	if empty, other := srv.GmailChallengeAnswers(); empty < 1 || other != 0 {
		t.Errorf("the server saw %d empty and %d other answers to its challenge", empty, other)
	}

	r = mailgate(t, t.Context(), dir, "test", "workspace-carol")
	t.Logf("test workspace-carol:\n%s%s", r.stdout, r.stderr)
	if r.code != 1 {
		t.Fatalf("test workspace-carol: exit %d", r.code)
	}
	for _, w := range []string{oauth.DomainWideDelegationPath, "Client ID " + emulator.GoogleServiceAccountClientID, carol} {
		if !strings.Contains(r.stdout+r.stderr, w) {
			t.Errorf("test workspace-carol lacks %q", w)
		}
	}
	if r := mailgate(t, t.Context(), dir, "test", "workspace-bob"); r.code != 0 {
		t.Errorf("test workspace-bob: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestEmulatorConfigOutGmail: `mailgate emulator --config-out` with the
// Gmail IMAP service writes a config that works as written: run reads
// alice's Gmail through the service-account profile. The output names the
// Gmail POP3 service's address.
func TestEmulatorConfigOutGmail(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "mailgate.yaml")
	cmd := exec.Command(mailgateBin, "emulator", "--listen", "127.0.0.1:0", "--http-listen", "-", "--gmail-imap", "127.0.0.1:0",
		"--gmail-pop3", "127.0.0.1:0", "--config-out", cfgPath)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir}
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(out.String(), "Stop with Ctrl-C."); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the emulator did not start:\n%s", out.String())
		}
	}
	if !strings.Contains(out.String(), "Gmail IMAP 127.0.0.1:") || !strings.Contains(out.String(), "SMTP off, POP3 127.0.0.1:") || !strings.Contains(out.String(), "google-sa.json") {
		t.Errorf("the emulator does not name its Gmail IMAP service:\n%s", out.String())
	}
	r := mailgate(t, t.Context(), dir, "run", "--once")
	if r.code != 0 || !strings.Contains(r.stderr, "workspace-alice: 0 delivered") {
		t.Errorf("run on the emulator's config: exit %d\n%s", r.code, r.stderr)
	}
	if r := mailgate(t, t.Context(), dir, "test", "workspace-alice"); r.code != 0 {
		t.Errorf("test workspace-alice: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
