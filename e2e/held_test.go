package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mailgate/mailgate/internal/dovecot"
	"github.com/mailgate/mailgate/internal/emulator"
)

// poisonSink is a command sink: it keeps each message in out/ and its key
// in delivered.log, and refuses (exit 1, a permanent refusal) a message
// containing POISON while the file refuse exists.
const poisonSink = `#!/bin/sh
d=%s
tmp=$(/usr/bin/mktemp "$d/tmp.XXXXXX") || exit 75
/usr/bin/cat > "$tmp" || exit 75
if [ -e "$d/refuse" ] && /usr/bin/grep -q POISON "$tmp"; then
	/usr/bin/rm -f "$tmp"
	echo "poisoned message refused" >&2
	exit 1
fi
echo "$MAILGATE_KEY" >> "$d/delivered.log"
/usr/bin/mv "$tmp" "$d/out/$(echo "$MAILGATE_KEY" | /usr/bin/tr / _)"
`

// TestPoisonedMessageHeld: a command sink refuses one message of 10
// permanently; run --once delivers the other 9 and applies the after-action
// to them, leaves the refused one as it was on the server, and lists it in
// `messages held` (and, for IMAP, the API). A second run does not offer it
// to the sink again. Once the sink is fixed, `messages retry` and run
// --once deliver it exactly once and then apply the after-action. IMAP and
// POP3 against Dovecot, Graph against the emulator.
func TestPoisonedMessageHeld(t *testing.T) {
	for _, proto := range []string{"imap", "pop3", "graph"} {
		t.Run(proto, func(t *testing.T) { testPoisonedMessage(t, proto) })
	}
}

func testPoisonedMessage(t *testing.T, proto string) {
	srv, dir := emulatorConfig(t, "")
	addr := emulator.DemoSharedMailbox
	var dv *dovecot.Server
	if proto != "graph" {
		dv = dovecot.StartT(t, dovecot.Options{CheckURL: srv.HTTPURL()})
	}
	for i := 1; i <= 10; i++ {
		body := fmt.Sprintf("message %d\r\n", i)
		if i == 3 {
			body = "POISON: the sink refuses this one\r\n"
		}
		raw := fmt.Appendf(nil, "From: sender@example.com\r\nTo: %s\r\nSubject: number %d\r\nMessage-ID: <p%d@example.com>\r\n\r\n%s", addr, i, i, body)
		var err error
		if dv != nil {
			err = dv.SeedMessage(addr, raw)
		} else {
			_, err = srv.GraphDeliver(addr, raw)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	sinkDir := filepath.Join(dir, "sink")
	for _, p := range []string{filepath.Join(sinkDir, "out")} {
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(sinkDir, "refuse"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "sink.sh")
	if err := os.WriteFile(script, fmt.Appendf(nil, poisonSink, sinkDir), 0o700); err != nil {
		t.Fatal(err)
	}
	var mbox string
	switch proto {
	case "imap":
		host, port, _ := strings.Cut(dv.Addr("imaps"), ":")
		mbox = fmt.Sprintf("{name: forms, protocol: imap, host: %s, port: %s, security: tls, tls_ca: '%s', sasl: xoauth2, username: %s, profile: emulator-cert, after: 'move:Processed', sink: pipe, interval: 1h}",
			host, port, dv.CAFile(), addr)
	case "pop3":
		host, port, _ := strings.Cut(dv.Addr("pop3s"), ":")
		mbox = fmt.Sprintf("{name: forms, protocol: pop3, host: %s, port: %s, security: tls, tls_ca: '%s', sasl: xoauth2, username: %s, profile: emulator-cert, after: delete, sink: pipe, interval: 1h}",
			host, port, dv.CAFile(), addr)
	case "graph":
		mbox = fmt.Sprintf("{name: forms, protocol: graph, endpoint: '%s', username: %s, profile: emulator-graph, after: seen, sink: pipe, interval: 1h}", srv.URL(), addr)
	}
	appendConfig(t, dir, "listen: 127.0.0.1:0\nmailboxes:\n  - "+mbox+"\n"+
		fmt.Sprintf("sinks:\n  - {name: pipe, type: command, command: ['%s']}\n", script))
	delivered := func() []string {
		b, _ := os.ReadFile(filepath.Join(sinkDir, "delivered.log"))
		return strings.Fields(string(b))
	}
	// afterApplied reports how many of the 10 messages had the after-action
	// applied on the server, and whether the poisoned one did
	afterApplied := func() (n int, poisoned bool) {
		switch proto {
		case "imap":
			in, err := dv.Messages(addr, "")
			if err != nil {
				t.Fatal(err)
			}
			moved, _ := dv.Messages(addr, "Processed")
			return len(moved), !mapContains(in, "POISON")
		case "pop3":
			in, err := dv.Messages(addr, "")
			if err != nil {
				t.Fatal(err)
			}
			return 10 - len(in), !mapContains(in, "POISON")
		}
		for i := 1; i <= 10; i++ {
			if read, _ := srv.GraphRead(addr, fmt.Sprintf("<p%d@example.com>", i)); read {
				n++
				poisoned = poisoned || i == 3
			}
		}
		return n, poisoned
	}

	r := mailgate(t, t.Context(), dir, "run", "--once")
	if r.code != 0 || !strings.Contains(r.stderr, "forms: 9 delivered") || !strings.Contains(r.stderr, "1 refused by the sink") {
		t.Fatalf("run --once: exit %d\n%s", r.code, r.stderr)
	}
	if got := delivered(); len(got) != 9 {
		t.Fatalf("the sink got %d messages, want 9: %v", len(got), got)
	}
	if n, poisoned := afterApplied(); n != 9 || poisoned {
		t.Fatalf("on the server: the after-action applied to %d (the refused one: %v); want the 9 delivered only", n, poisoned)
	}

	r = mailgate(t, t.Context(), dir, "messages", "held")
	if r.code != 0 || !strings.Contains(r.stdout, "forms") || !strings.Contains(r.stdout, "number 3") || !strings.Contains(r.stdout, "held") ||
		!strings.Contains(r.stdout, "poisoned message refused") {
		t.Fatalf("messages held: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = mailgate(t, t.Context(), dir, "messages", "held", "--json", "--mailbox", "forms")
	var list struct {
		Held []struct {
			Mailbox, Key, State, Subject string
			Permanent                    bool
		} `json:"held"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || r.code != 0 || len(list.Held) != 1 {
		t.Fatalf("messages held --json: exit %d %v\n%s", r.code, err, r.stdout)
	}
	held := list.Held[0]
	if held.State != "held" || !held.Permanent || held.Subject != "number 3" || !strings.HasPrefix(held.Key, "forms/"+proto+"/") {
		t.Fatalf("held message: %+v", held)
	}
	if r := mailgate(t, t.Context(), dir, "messages", "retry", "forms", "forms/imap/1/999"); r.code != 1 {
		t.Errorf("retry of an unknown key: exit %d %s", r.code, r.stderr)
	}
	if r := mailgate(t, t.Context(), dir, "messages", "retry", "forms"); r.code != 2 {
		t.Errorf("retry without a key: exit %d %s", r.code, r.stderr)
	}

	// a second run leaves it aside: the sink is not asked again
	r = mailgate(t, t.Context(), dir, "run", "--once")
	if r.code != 0 || !strings.Contains(r.stderr, "forms: 0 delivered") || strings.Contains(r.stderr, "refused") {
		t.Fatalf("second run: exit %d\n%s", r.code, r.stderr)
	}

	if n, poisoned := afterApplied(); n != 9 || poisoned {
		t.Fatalf("after the second run: the after-action applied to %d (the refused one: %v)", n, poisoned)
	}
	if proto == "imap" {
		checkHeldAPI(t, dir, held.Key)
	}

	// fixed sink, retry: delivered exactly once, then the after-action
	if err := os.Remove(filepath.Join(sinkDir, "refuse")); err != nil {
		t.Fatal(err)
	}
	if r := mailgate(t, t.Context(), dir, "messages", "retry", "forms", held.Key); r.code != 0 {
		t.Fatalf("messages retry: exit %d %s", r.code, r.stderr)
	}
	r = mailgate(t, t.Context(), dir, "run", "--once")
	if r.code != 0 || !strings.Contains(r.stderr, "forms: 1 delivered") {
		t.Fatalf("run after retry: exit %d\n%s", r.code, r.stderr)
	}
	r = mailgate(t, t.Context(), dir, "run", "--once")
	if r.code != 0 || !strings.Contains(r.stderr, "forms: 0 delivered") {
		t.Fatalf("run after that: exit %d\n%s", r.code, r.stderr)
	}
	got := delivered()
	count := map[string]int{}
	for _, k := range got {
		count[k]++
	}
	if len(got) != 10 || len(count) != 10 || count[held.Key] != 1 {
		t.Fatalf("the sink got %d deliveries of %d keys (the refused one %d times), want 10 distinct", len(got), len(count), count[held.Key])
	}
	if n, poisoned := afterApplied(); n != 10 || !poisoned {
		t.Fatalf("on the server: the after-action applied to %d (the refused one: %v); want all 10", n, poisoned)
	}
	if r := mailgate(t, t.Context(), dir, "messages", "held"); r.code != 0 || strings.TrimSpace(r.stdout) != "" {
		t.Errorf("messages held after the retry: exit %d %q", r.code, r.stdout)
	}
}

func mapContains(m map[string][]byte, s string) bool {
	for _, b := range m {
		if bytes.Contains(b, []byte(s)) {
			return true
		}
	}
	return false
}

// checkHeldAPI starts serve (its agent runs once at start and finds
// nothing new), finds key in GET /api/v1/held, and stops serve so that it
// does not race the test's next run.
func checkHeldAPI(t *testing.T, dir, key string) {
	t.Helper()
	adminAdd(t, dir, "a long enough password")
	tok := strings.TrimSpace(mailgate(t, t.Context(), dir, "admin", "token", "ops").stdout)
	serve := startServe(t, dir)
	code, body := serve.api(t, "GET", "/api/v1/held", tok, "")
	if code != 200 || !strings.Contains(body, `"key": "`+key+`"`) || !strings.Contains(body, `"state": "held"`) {
		t.Fatalf("GET /api/v1/held: %d\n%s", code, body)
	}
	_ = serve.cmd.Process.Signal(syscall.SIGTERM)
	_ = serve.cmd.Wait()
}
