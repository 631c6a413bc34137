package e2e

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/emulator"
)

// TestServeStartsBesideBrokenConsoleRecords: console records in the store
// that serve cannot build (a profile whose certificate file is not PEM, a
// maildir under /proc, a mailbox on that sink) do not stop `mailgate
// serve`: the config file's mailbox delivers, /api/v1/status shows each
// broken record failing with its reason, `mailgate records list` says the
// same, and the records can be deleted, from the command line (serve
// notices) and through the API.
func TestServeStartsBesideBrokenConsoleRecords(t *testing.T) {
	srv, dir := emulatorConfig(t, "")
	for i := range 3 {
		if _, err := srv.GraphDeliver(emulator.DemoSharedMailbox, []byte(fmt.Sprintf("Message-ID: <b%d@x>\r\nSubject: %d\r\n\r\nhello\r\n", i, i))); err != nil {
			t.Fatal(err)
		}
	}
	appendConfig(t, dir, fmt.Sprintf("listen: 127.0.0.1:0\nmailboxes:\n  - {name: g, protocol: graph, endpoint: '%s', username: %s, profile: emulator-graph, after: seen, sink: out, interval: 10s}\nsinks:\n  - {name: out, type: maildir, path: ./inbox}\n",
		srv.URL(), emulator.DemoSharedMailbox))
	notPEM := filepath.Join(dir, "not-a-cert.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := base64.StdEncoding.DecodeString(testKey)
	if err != nil {
		t.Fatal(err)
	}
	st, err := openStore(t.Context(), dir, key)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct{ kind, name, yaml string }{
		{"profiles", "badcert", "{name: badcert, provider: microsoft, grant: client_credentials, tenant: contoso.onmicrosoft.com, client_id: aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee, client_certificate: {cert: '" + notPEM + "', key: '" + notPEM + "'}, scopes: [https://outlook.office365.com/.default]}"},
		{"sinks", "procfs", "{name: procfs, type: maildir, path: /proc/mailgate-inbox}"},
		{"mailboxes", "onprocfs", "{name: onprocfs, protocol: graph, endpoint: '" + srv.URL() + "', username: " + emulator.DemoSharedMailbox + ", profile: emulator-graph, sink: procfs}"},
	} {
		if err := st.PutRecord(t.Context(), r.kind, r.name, []byte(r.yaml)); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	adminAdd(t, dir, "a long enough password")
	tr := mailgateStdin(t, dir, "", "admin", "token", "ops")
	tok := strings.TrimSpace(tr.stdout)
	if tr.code != 0 {
		t.Fatalf("admin token: %d %s", tr.code, tr.stderr)
	}

	serve := startServe(t, dir)
	do := func(method, path string) (int, string) { return serve.api(t, method, path, tok, "") }
	var status string
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(status, `"delivered_since_start": 3`); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the file's mailbox never delivered 3:\n%s\n%s", status, serve.logs.String())
		}
		_, status = do("GET", "/api/v1/status")
	}
	for _, want := range []string{
		"profiles[badcert].client_certificate.cert: " + notPEM + " is not a PEM certificate",
		"sinks[procfs].path: /proc/mailgate-inbox is in /proc",
		`"name": "onprocfs"`,
	} {
		if !strings.Contains(status, want) {
			t.Errorf("status lacks %q:\n%s", want, status)
		}
	}
	if !strings.Contains(serve.logs.String(), "console record is failing") {
		t.Errorf("serve did not log the failing records:\n%s", serve.logs.String())
	}
	if r := mailgateStdin(t, dir, "", "records", "list"); r.code != 0 || !strings.Contains(r.stdout, "failing: sinks[procfs].path") {
		t.Errorf("records list: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// a deletion from the command line reaches the running serve
	if r := mailgateStdin(t, dir, "", "records", "delete", "mailboxes", "onprocfs"); r.code != 0 {
		t.Fatalf("records delete: %d %s", r.code, r.stderr)
	}
	for deadline := time.Now().Add(60 * time.Second); strings.Contains(status, "onprocfs"); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("serve still shows the record deleted from the command line:\n%s", status)
		}
		_, status = do("GET", "/api/v1/status")
	}
	for _, path := range []string{"/api/v1/sinks/procfs", "/api/v1/profiles/badcert"} {
		if code, body := do("DELETE", path); code != http.StatusNoContent {
			t.Errorf("DELETE %s: %d %s", path, code, body)
		}
	}
	for deadline := time.Now().Add(30 * time.Second); strings.Contains(status, "procfs"); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("deleted records still shown:\n%s", status)
		}
		_, status = do("GET", "/api/v1/status")
	}
}
