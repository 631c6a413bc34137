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

	"github.com/mailgate/mailgate/internal/dovecot"
	"github.com/mailgate/mailgate/internal/emulator"
)

// TestSendCommand: `mailgate send` through Dovecot's submission service
// with an app-only token: two files over one connection arrive in the
// recipient's mailbox; a From outside allowed_from is refused before
// anything is sent.
func TestSendCommand(t *testing.T) {
	srv, dir := emulatorConfig(t, "")
	dv := dovecot.StartT(t, dovecot.Options{CheckURL: srv.HTTPURL(), Relay: true})
	host, port, _ := strings.Cut(dv.Addr("submission"), ":")
	appendConfig(t, dir, fmt.Sprintf("senders:\n  - {name: noreply, protocol: smtp, host: %s, port: %s, security: starttls, tls_ca: '%s', sasl: xoauth2, username: %s, profile: emulator-secret, allowed_from: [%s]}\n",
		host, port, dv.CAFile(), emulator.DemoSenderMailbox, emulator.DemoSenderMailbox))
	appendConfig(t, dir, fmt.Sprintf("  - {name: ceo, protocol: smtp, host: %s, port: %s, security: starttls, tls_ca: '%s', username: %s, profile: emulator-secret}\n",
		host, port, dv.CAFile(), emulator.DemoRestrictedMailbox))
	for i, name := range []string{"a.eml", "b.eml"} {
		msg := fmt.Sprintf("From: %s\r\nTo: %s\r\nBcc: %s\r\nSubject: report %d\r\nMessage-ID: <report-%d@mailgate.test>\r\n\r\nreport body %d\r\n",
			emulator.DemoSenderMailbox, emulator.DemoSharedMailbox, emulator.DemoInvoicesMailbox, i, i, i)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(msg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// the Test button for senders: every step up to AUTH, nothing sent
	r := mailgate(t, t.Context(), dir, "test", "noreply")
	for _, step := range []string{"✓ dns", "✓ tcp", "✓ tls", "✓ token", "✓ auth", "nothing was sent"} {
		if r.code != 0 || !strings.Contains(r.stdout, step) {
			t.Errorf("test noreply: exit %d, lacks %q:\n%s%s", r.code, step, r.stdout, r.stderr)
		}
	}
	r = mailgate(t, t.Context(), dir, "test", "ceo")
	if r.code != 1 || !strings.Contains(r.stdout, "✗ auth") || !strings.Contains(r.stdout, "535") || !strings.Contains(r.stdout, "fix: app-only: the SMTP.SendAsApp") {
		t.Errorf("test ceo: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got, _ := dv.Messages(emulator.DemoSharedMailbox, ""); len(got) != 0 {
		t.Fatalf("a test sent %d messages", len(got))
	}
	r = mailgate(t, t.Context(), dir, "send", "--sender", "noreply", "a.eml", "b.eml")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stderr, dv.Log())
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		to, _ := dv.Messages(emulator.DemoSharedMailbox, "")
		bcc, _ := dv.Messages(emulator.DemoInvoicesMailbox, "")
		if len(to) == 2 && len(bcc) == 2 {
			for _, b := range to {
				if strings.Contains(string(b), "Bcc:") {
					t.Fatal("the Bcc header was delivered")
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d and %d messages arrived\n%s", len(to), len(bcc), r.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	bad := "From: " + emulator.DemoRestrictedMailbox + "\r\nTo: " + emulator.DemoSharedMailbox + "\r\n\r\nx\r\n"
	if err := os.WriteFile(filepath.Join(dir, "bad.eml"), []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	r = mailgate(t, t.Context(), dir, "send", "--sender", "noreply", "bad.eml")
	if r.code != 1 || !strings.Contains(r.stderr, "allowed_from") || !strings.Contains(r.stderr, "nothing was sent") {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
}

// TestOutboxSurvivesKill: with `mailgate serve` running, `mailgate send`
// queues 500 messages; serve is killed (SIGKILL) during the burst and
// restarted; every message arrives, and any duplicate is within the
// window the outbox counts (messages recovered from "sending").
func TestOutboxSurvivesKill(t *testing.T) {
	const n = 500
	srv, dir := emulatorConfig(t, "")
	dv := dovecot.StartT(t, dovecot.Options{CheckURL: srv.HTTPURL(), Relay: true})
	host, port, _ := strings.Cut(dv.Addr("submission"), ":")
	appendConfig(t, dir, fmt.Sprintf("listen: 127.0.0.1:0\nsenders:\n  - {name: noreply, protocol: smtp, host: %s, port: %s, security: starttls, tls_ca: '%s', sasl: xoauth2, username: %s, profile: emulator-secret, allowed_from: [%s]}\n",
		host, port, dv.CAFile(), emulator.DemoSenderMailbox, emulator.DemoSenderMailbox))
	serve := func() (*exec.Cmd, *strings.Builder) {
		cmd := exec.Command(mailgateBin, "serve")
		cmd.Dir = dir
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "MAILGATE_KEY=" + testKey}
		var logs strings.Builder
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, &logs
	}
	cmd, _ := serve()
	time.Sleep(500 * time.Millisecond) // its first heartbeat
	var files []string
	for i := range n {
		name := fmt.Sprintf("m%03d.eml", i)
		msg := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: burst %d\r\nMessage-ID: <burst-%d@mailgate.test>\r\n\r\nburst\r\n", emulator.DemoSenderMailbox, emulator.DemoInvoicesMailbox, i, i)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(msg), 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, name)
	}
	r := mailgate(t, t.Context(), dir, append([]string{"send", "--sender", "noreply"}, files...)...)
	if r.code != 0 || !strings.Contains(r.stderr, "queued as") {
		t.Fatalf("send: exit %d\n%s", r.code, r.stderr)
	}
	count := func() (total, distinct int) {
		msgs, _ := dv.Messages(emulator.DemoInvoicesMailbox, "")
		ids := map[string]bool{}
		for _, b := range msgs {
			s := string(b)
			if i := strings.Index(s, "<burst-"); i >= 0 {
				ids[s[i:i+strings.Index(s[i:], ">")+1]] = true
			}
		}
		return len(msgs), len(ids)
	}
	// kill it once part of the burst went out
	deadline := time.Now().Add(30 * time.Second)
	for {
		if total, _ := count(); total >= 50 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the burst did not start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	before, _ := count()
	cmd, logs := serve()
	deadline = time.Now().Add(60 * time.Second)
	for {
		if _, distinct := count(); distinct == n {
			break
		}
		if time.Now().After(deadline) {
			_, d := count()
			t.Fatalf("%d of %d arrived\n%s", d, n, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
	total, distinct := count()
	dups := total - distinct
	recovered := 0
	if i := strings.Index(logs.String(), "recovered_possible_duplicates="); i >= 0 {
		fmt.Sscanf(logs.String()[i+len("recovered_possible_duplicates="):], "%d", &recovered)
	}
	if dups > recovered {
		t.Fatalf("%d duplicates, but only %d messages were in the crash window\n%s", dups, recovered, logs.String())
	}
	// one connection ends its next message (the final dot that makes the
	// server take it) only once the previous one is recorded (group commit
	// shares transactions between connections, it does not defer them; the
	// envelope and content travel during the commit): one message at most
	// between 250 and commit
	if dups > 1 {
		t.Fatalf("%d duplicates: more than the one message a connection can have between the 250 and its commit\n%s", dups, logs.String())
	}
	// the longest 250-to-commit time the restarted serve measured (one
	// transaction; two when connections' commits queue up)
	window := "?"
	if i := strings.Index(logs.String(), "max_250_to_commit="); i >= 0 {
		window, _, _ = strings.Cut(logs.String()[i+len("max_250_to_commit="):], " ")
	}
	t.Logf("killed after %d of %d; %d delivered, %d duplicates, %d in the crash window; longest 250-to-commit %s", before, n, distinct, dups, recovered, window)
}

// TestSendThroughGraph: a Graph sender keeps the original MIME bytes;
// without the Mail.Send permission the error names the fix.
func TestSendThroughGraph(t *testing.T) {
	srv, dir := emulatorConfig(t, "")
	appendConfig(t, dir, fmt.Sprintf("senders:\n  - {name: g, protocol: graph, endpoint: '%s', username: %s, profile: emulator-graph, allowed_from: [%s]}\n",
		srv.URL(), emulator.DemoSenderMailbox, emulator.DemoSenderMailbox))
	msg := "From: " + emulator.DemoSenderMailbox + "\r\nTo: " + emulator.DemoSharedMailbox + "\r\nSubject: via graph\r\nMessage-ID: <g@mailgate.test>\r\nX-Custom: kept\r\n\r\nexact bytes\r\n"
	if err := os.WriteFile(filepath.Join(dir, "m.eml"), []byte(msg), 0o600); err != nil {
		t.Fatal(err)
	}
	r := mailgate(t, t.Context(), dir, "test", "g")
	if r.code != 0 || !strings.Contains(r.stdout, "✓ token") || !strings.Contains(r.stdout, "✓ graph  the token carries Mail.Send") {
		t.Errorf("test g: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = mailgate(t, t.Context(), dir, "send", "--sender", "g", "m.eml")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	got := srv.GraphMessages(emulator.DemoSharedMailbox, "inbox")
	if len(got) != 1 || string(got[0]) != msg {
		t.Fatalf("arrived: %q", got)
	}
	if sent := srv.GraphMessages(emulator.DemoSenderMailbox, "sentitems"); len(sent) != 1 {
		t.Errorf("%d in Sent Items", len(sent))
	}
	// --to and no Message-ID: the README promises one is added
	if err := os.WriteFile(filepath.Join(dir, "bare.eml"), []byte("Subject: bare\r\n\r\nno id\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := mailgate(t, t.Context(), dir, "send", "--sender", "g", "--to", emulator.DemoSharedMailbox, "bare.eml"); r.code != 0 {
		t.Fatalf("send --to: exit %d\n%s", r.code, r.stderr)
	}
	got = srv.GraphMessages(emulator.DemoSharedMailbox, "inbox")
	if len(got) != 2 || !strings.Contains(string(got[1]), "no id") || !strings.Contains(string(got[1]), "Message-ID: <") {
		t.Fatalf("arrived through --to: %q", got)
	}
	if err := srv.Tenant().RevokeAppRoles(emulator.DemoAppID, "https://graph.microsoft.com", "Mail.Send"); err != nil {
		t.Fatal(err)
	}
	// a new token without the role (the cached one still has it: wait it out by clearing the store)
	os.Remove(filepath.Join(dir, "mailgate.db"))
	os.Remove(filepath.Join(dir, "mailgate.db-wal"))
	os.Remove(filepath.Join(dir, "mailgate.db-shm"))
	r = mailgate(t, t.Context(), dir, "test", "g")
	if r.code != 1 || !strings.Contains(r.stdout, "✗ graph  the token carries no Mail.Send") || !strings.Contains(r.stdout, "Application permissions › Mail.Send") {
		t.Errorf("test g without Mail.Send: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = mailgate(t, t.Context(), dir, "send", "--sender", "g", "m.eml")
	if r.code != 1 || !strings.Contains(r.stderr, "Mail.Send") {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
}
