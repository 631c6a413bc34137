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
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mailgate/mailgate/internal/emulator"
)

// browser starts Debian's Chromium headless for a test.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		path = "/usr/bin/chromium"
		if _, serr := os.Stat(path); serr != nil {
			if os.Getenv("MAILGATE_REQUIRE_INTEGRATION") == "1" {
				t.Fatal("chromium is not installed (scripts/install-deps.sh installs it)")
			}
			t.Skip("chromium is not installed")
		}
	}
	actx, cancel := chromedp.NewExecAllocator(t.Context(), chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox,
		chromedp.WindowSize(1280, 900), chromedp.UserDataDir(t.TempDir()))
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	return ctx
}

// TestConsoleInBrowser drives the console in Chromium: sign in, see mail
// delivered on the dashboard, press Test on a mailbox an application access
// policy blocks, and read the failing step with its fix. Screenshots of the
// dashboard and of the Test result are written to $MAILGATE_SCREENSHOTS
// (the ones in docs/ were made this way) or a temporary directory.
func TestConsoleInBrowser(t *testing.T) {
	srv, dir := emulatorConfig(t, "")
	for i := range 3 {
		if _, err := srv.GraphDeliver(emulator.DemoSharedMailbox, []byte(fmt.Sprintf("Message-ID: <b%d@x>\r\nSubject: form %d\r\n\r\nhello\r\n", i, i))); err != nil {
			t.Fatal(err)
		}
	}
	srv.Tenant().DenyGraphAccess(emulator.DemoAppID, emulator.DemoInvoicesMailbox)
	appendConfig(t, dir, fmt.Sprintf("listen: 127.0.0.1:0\nmailboxes:\n  - {name: forms, protocol: graph, endpoint: '%[1]s', username: %[2]s, profile: emulator-graph, after: seen, sink: out}\n  - {name: invoices, protocol: graph, endpoint: '%[1]s', username: %[3]s, profile: emulator-graph, after: seen, sink: out}\nsinks:\n  - {name: out, type: maildir, path: ./inbox}\n",
		srv.URL(), emulator.DemoSharedMailbox, emulator.DemoInvoicesMailbox))
	adminAdd(t, dir, "browser-test-password")
	serve := startServe(t, dir)
	base, logs := serve.base, serve.logs
	shots := os.Getenv("MAILGATE_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	ctx := browser(t)
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()

	// an anonymous visit lands on the sign-in page
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`input[name="password"]`))); err != nil {
		t.Fatalf("sign-in page: %v\n%s", err, logs.String())
	}
	// a wrong password is refused with a message
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`input[name="name"]`), "ops"),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), "not the password"),
		chromedp.Submit(chromedp.CSS(`form`)),
		chromedp.WaitVisible(chromedp.CSS(`.error`))); err != nil {
		t.Fatal(err)
	}
	if msg, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`.error`))); err != nil || !strings.Contains(msg, "Wrong name or password") {
		t.Errorf("wrong password message %q %v", msg, err)
	}
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`input[name="name"]`), "ops"),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), "browser-test-password"),
		chromedp.Submit(chromedp.CSS(`form`)),
		chromedp.WaitVisible(chromedp.CSS(`#mailboxes`))); err != nil {
		t.Fatal(err)
	}
	// mail arrives on the dashboard (reloaded until the agent delivered)
	var delivered string
	for deadline := time.Now().Add(15 * time.Second); delivered != "3"; {
		if time.Now().After(deadline) {
			t.Fatalf("dashboard shows %q delivered for forms\n%s", delivered, logs.String())
		}
		if err := chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#mailboxes`))); err != nil {
			t.Fatal(err)
		}
		delivered, _ = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`tr[data-name="forms"] .delivered`)))
		delivered = strings.TrimSpace(delivered)
		if delivered != "3" {
			time.Sleep(300 * time.Millisecond)
		}
	}
	state, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`tr[data-name="invoices"] .state`)))
	if strings.TrimSpace(state) != "failing" {
		t.Errorf("invoices state %q, want failing", state)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("dashboard screenshot: %v", err)
	}
	if err := os.WriteFile(filepath.Join(shots, "console-dashboard.png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
	// Test on the blocked mailbox: the failing step names the fix
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`tr[data-name="invoices"] button.test`)),
		chromedp.WaitVisible(chromedp.CSS(`#steps`))); err != nil {
		t.Fatal(err)
	}
	verdict, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#verdict`)))
	steps, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#steps`)))
	if verdict != "failed" || !strings.Contains(steps, "✓ token") || !strings.Contains(steps, "✗ graph") || !strings.Contains(steps, "New-ApplicationAccessPolicy") {
		t.Errorf("test result %q:\n%s", verdict, steps)
	}
	png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("test screenshot: %v", err)
	}
	if err := os.WriteFile(filepath.Join(shots, "console-test.png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestConsoleRecordsInBrowser is the administrator's story in Chromium: sign
// in, add a profile (with a mistyped secret) and a Graph mailbox, see the
// mailbox fail, press Test and read the failing step explained, fix the
// secret, and see the mail arrive on the dashboard — no restart, no file
// edited.
func TestConsoleRecordsInBrowser(t *testing.T) {
	srv, dir := emulatorConfig(t, "")
	for i := range 3 {
		if _, err := srv.GraphDeliver(emulator.DemoInvoicesMailbox, []byte(fmt.Sprintf("Message-ID: <inv%d@x>\r\nSubject: invoice %d\r\n\r\nplease pay\r\n", i, i))); err != nil {
			t.Fatal(err)
		}
	}
	appendConfig(t, dir, "listen: 127.0.0.1:0\nsinks:\n  - {name: out, type: maildir, path: ./inbox}\n")
	adminAdd(t, dir, "browser-test-password")
	serve := startServe(t, dir)
	base, logs := serve.base, serve.logs
	ctx := browser(t)
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	fail := func(step string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v\n%s", step, err, logs.String())
		}
	}
	fail("sign in", chromedp.Do(ctx, chromedp.Navigate(base+"/login"),
		chromedp.SendKeys(chromedp.CSS(`input[name="name"]`), "ops"),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), "browser-test-password"),
		chromedp.Submit(chromedp.CSS(`form`)),
		chromedp.WaitVisible(chromedp.CSS(`#mailboxes`))))

	// a profile, with the Secret ID pasted where the secret's value belongs
	fail("new profile", chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#add-profiles`)), chromedp.WaitVisible(chromedp.CSS(`#record`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="name"]`), "console-graph"),
		chromedp.SendKeys(chromedp.CSS(`input[name="tenant"]`), emulator.DemoTenantID),
		chromedp.SendKeys(chromedp.CSS(`input[name="client_id"]`), emulator.DemoAppID),
		chromedp.SendKeys(chromedp.CSS(`input[name="client_secret"]`), emulator.DemoAppSecretID),
		chromedp.SendKeys(chromedp.CSS(`input[name="scopes"]`), "https://graph.microsoft.com/.default"),
		chromedp.SendKeys(chromedp.CSS(`input[name="authority"]`), srv.URL()),
		chromedp.SendKeys(chromedp.CSS(`input[name="tls_ca"]`), srv.CAFile()),
		chromedp.Click(chromedp.CSS(`#save`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-name="console-graph"]`))))
	// a mailbox through Graph; a first try without a sink is refused and says why
	fail("new mailbox", chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#add-mailboxes`)), chromedp.WaitVisible(chromedp.CSS(`#record`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="name"]`), "invoices"),
		chromedp.SetValue(chromedp.CSS(`select[name="protocol"]`), "graph"),
		chromedp.SendKeys(chromedp.CSS(`input[name="endpoint"]`), srv.URL()),
		chromedp.SendKeys(chromedp.CSS(`input[name="username"]`), emulator.DemoInvoicesMailbox),
		chromedp.SendKeys(chromedp.CSS(`input[name="profile"]`), "console-graph"),
		chromedp.Click(chromedp.CSS(`#save`)),
		chromedp.WaitVisible(chromedp.CSS(`#problems`))))
	problems, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#problems`)))
	if !strings.Contains(problems, "mailboxes[invoices].sink") {
		t.Errorf("problems without a sink: %q", problems)
	}
	fail("mailbox sink", chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`input[name="sink"]`), "out"),
		chromedp.Click(chromedp.CSS(`#save`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-name="invoices"]`))))
	// the mailbox fails; Test explains why
	var state string
	for deadline := time.Now().Add(20 * time.Second); state != "failing"; time.Sleep(300 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("invoices state %q, want failing\n%s", state, logs.String())
		}
		fail("reload", chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#mailboxes`))))
		state, _ = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`tr[data-name="invoices"] .state`)))
		state = strings.TrimSpace(state)
	}
	// the dashboard's last error comes with what to change
	errText, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`tr[data-name="invoices"] .err`)))
	if !strings.Contains(errText, "7000215") || !strings.Contains(errText, "fix:") || !strings.Contains(errText, "Certificates & secrets") {
		t.Errorf("dashboard last error without its fix: %q", errText)
	}
	fail("test", chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`tr[data-name="invoices"] button.test`)), chromedp.WaitVisible(chromedp.CSS(`#steps`))))
	steps, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#steps`)))
	if !strings.Contains(steps, "✗ token") || !strings.Contains(steps, "7000215") {
		t.Errorf("test steps:\n%s", steps)
	}
	// fix the secret: the form keeps everything else, the old secret is not shown
	fail("edit profile", chromedp.Do(ctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`#profiles`)),
		chromedp.Click(chromedp.CSS(`tr[data-name="console-graph"] a.edit`)), chromedp.WaitVisible(chromedp.CSS(`#record`))))
	shown, _ := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`input[name="client_secret"]`)))
	if shown != "" {
		t.Errorf("the edit form shows the secret %q", shown)
	}
	fail("save secret", chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`input[name="client_secret"]`), emulator.DemoAppSecret),
		chromedp.Click(chromedp.CSS(`#save`)),
		chromedp.WaitVisible(chromedp.CSS(`#mailboxes`))))
	var delivered string
	for deadline := time.Now().Add(20 * time.Second); delivered != "3"; time.Sleep(300 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("dashboard shows %q delivered for invoices\n%s", delivered, logs.String())
		}
		fail("reload", chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#mailboxes`))))
		delivered, _ = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`tr[data-name="invoices"] .delivered`)))
		delivered = strings.TrimSpace(delivered)
	}
	page, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS(`html`)))
	for _, secret := range []string{emulator.DemoAppSecret, emulator.DemoAppSecretID} {
		if strings.Contains(page, secret) {
			t.Errorf("the dashboard shows a secret")
		}
	}
	files, _ := os.ReadDir(filepath.Join(dir, "inbox", "new"))
	if len(files) != 3 {
		t.Errorf("%d messages in the maildir", len(files))
	}
	// the CLI sees the console's records too
	if r := mailgate(t, t.Context(), dir, "test", "invoices"); r.code != 0 || !strings.Contains(r.stdout, "✓ graph") {
		t.Errorf("mailgate test invoices: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
