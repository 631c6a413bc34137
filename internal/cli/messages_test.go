package cli

import (
	"bytes"
	"encoding/base64"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailgate/mailgate/internal/store"
)

// TestMessagesCommand: messages held lists the refused messages (a table
// or JSON on stdout), retry and drop change them, an unknown key exits 1
// and a wrong use 2.
func TestMessagesCommand(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	db := filepath.Join(t.TempDir(), "db")
	cfgPath := writeConfig(t, goodConfig+"store: sqlite:"+db+"\n")
	st, err := store.Open(t.Context(), "sqlite:"+db, &store.Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutHeld(t.Context(), "forms", []store.HeldMessage{
		{Key: "forms/imap/9/3", UID: "3", Subject: "Invoice\r\n 42", State: store.HeldRefused, Permanent: true, Reason: "sink command (permanent): exited 1", Attempts: 1},
		{Key: "forms/imap/9/4", UID: "4", State: store.HeldDeferred, Reason: "sink webhook (temporary): 503", Attempts: 3},
	}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		env := &Env{Stdio: Stdio{In: strings.NewReader(""), Out: &out, Err: &errb}, Getenv: func(k string) string {
			if k == "MAILGATE_KEY" {
				return base64.StdEncoding.EncodeToString(key)
			}
			return ""
		}}
		code := runMessages(t.Context(), env, append(args, "--config", cfgPath))
		return code, out.String(), errb.String()
	}
	code, out, errs := run("held")
	if code != ExitOK || !strings.Contains(out, "forms/imap/9/3") || !strings.Contains(out, "Invoice 42") || !strings.Contains(out, "deferred") ||
		!strings.Contains(out, "exited 1") {
		t.Fatalf("held: %d\n%s%s", code, out, errs)
	}
	if code, out, _ := run("held", "--json", "--mailbox", "other"); code != ExitOK || !strings.Contains(out, `"held": []`) {
		t.Errorf("held of another mailbox: %d %s", code, out)
	}
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"retry", "forms", "forms/imap/9/3"}, ExitOK},
		{[]string{"retry", "forms", "forms/imap/9/99"}, ExitFailed},
		{[]string{"drop", "forms", "forms/imap/9/4"}, ExitOK},
		{[]string{"drop", "forms", "forms/imap/9/4"}, ExitFailed},
		{[]string{"retry", "forms", "--all"}, ExitOK},
		{[]string{"retry", "forms"}, ExitUsage},
		{[]string{"retry", "forms", "k", "--all"}, ExitUsage},
		{[]string{"drop", "forms"}, ExitUsage},
		{[]string{"purge"}, ExitUsage},
		{nil, ExitUsage},
	} {
		if code, _, errs := run(c.args...); code != c.code {
			t.Errorf("messages %v: exit %d, want %d (%s)", c.args, code, c.code, errs)
		}
	}
	code, out, _ = run("held", "--json")
	if code != ExitOK || !strings.Contains(out, `"state": "retry"`) || strings.Contains(out, "forms/imap/9/4") {
		t.Errorf("after retry and drop: %d %s", code, out)
	}
}
