package e2e

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/mailgate/mailgate/internal/emulator"
)

// TestGraphCrashSafety: `mailgate run --once` on a Graph mailbox killed
// with SIGKILL at random moments while it reads 1,000 messages, restarted
// each time: the maildir ends with each message exactly once.
func TestGraphCrashSafety(t *testing.T) {
	const n = 1000
	srv, dir := emulatorConfig(t, "")
	body := func(i int) []byte {
		return []byte(fmt.Sprintf("Message-ID: <gc-%d@mailgate.test>\r\nSubject: %d\r\n\r\ncrash test %d\r\n", i, i, i))
	}
	for i := range n {
		if _, err := srv.GraphDeliver(emulator.DemoSharedMailbox, body(i)); err != nil {
			t.Fatal(err)
		}
	}
	appendConfig(t, dir, fmt.Sprintf("mailboxes:\n  - {name: g, protocol: graph, endpoint: '%s', username: %s, profile: emulator-graph, after: seen, sink: out, batch_size: 50}\nsinks:\n  - {name: out, type: maildir, path: ./inbox}\n",
		srv.URL(), emulator.DemoSharedMailbox))
	kills := killMidRun(t, dir, filepath.Join(dir, "inbox"), 10)
	if r := mailgate(t, t.Context(), dir, "run", "--once"); r.code != 0 {
		t.Fatalf("final run: %d\n%s", r.code, r.stderr)
	}
	var want [][]byte
	for i := range n {
		want = append(want, body(i))
	}
	maildirHolds(t, filepath.Join(dir, "inbox"), want)
	if kills < 8 {
		t.Errorf("only %d kills landed mid-delivery", kills)
	}
	t.Logf("%d SIGKILLs; %d messages each once", kills, n)
}
