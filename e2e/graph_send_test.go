package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/emulator"
)

// bigMessage is a message with a size-byte PDF attachment.
func bigMessage(from, to, id string, pdf []byte) []byte {
	enc := base64.StdEncoding.EncodeToString(pdf)
	var b strings.Builder
	b.WriteString("From: " + from + "\r\nTo: " + to + "\r\nSubject: quarterly report\r\nMessage-ID: " + id + "\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"rep\"\r\n\r\n--rep\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe report is attached.\r\n" +
		"--rep\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\nContent-Disposition: attachment; filename=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n--rep--\r\n")
	return []byte(b.String())
}

// attachmentOf returns the decoded report.pdf of a delivered message.
func attachmentOf(t *testing.T, raw []byte) []byte {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	_, p, _ := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	mr := multipart.NewReader(msg.Body, p["boundary"])
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		if part.FileName() == "report.pdf" {
			b, _ := io.ReadAll(part)
			d, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(string(b), "\r\n", ""))
			if err != nil {
				t.Fatal(err)
			}
			return d
		}
	}
}

// TestGraphLargeSendThroughOutbox: with `mailgate serve` running, `mailgate
// send` queues a 20 MB message for a Graph sender; the outbox sends it
// through a draft and an upload session and the recipient's attachment is
// byte-identical. A Bcc recipient gets the message too (Graph reads Bcc
// from the header). serve is then killed and restarted, and nothing is
// sent twice.
func TestGraphLargeSendThroughOutbox(t *testing.T) {
	srv, dir := emulatorConfig(t, "")
	appendConfig(t, dir, fmt.Sprintf("listen: 127.0.0.1:0\nsenders:\n  - {name: g, protocol: graph, endpoint: '%s', username: %s, profile: emulator-graph, allowed_from: [%s]}\n",
		srv.URL(), emulator.DemoSenderMailbox, emulator.DemoSenderMailbox))
	serve := func() *exec.Cmd {
		cmd := exec.Command(mailgateBin, "serve")
		cmd.Dir = dir
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "MAILGATE_KEY=" + testKey}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	cmd := serve()
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	time.Sleep(500 * time.Millisecond) // its first heartbeat

	pdf := make([]byte, 20<<20)
	for i := range pdf {
		pdf[i] = byte(i*131 + i>>13)
	}
	big := bigMessage(emulator.DemoSenderMailbox, emulator.DemoInvoicesMailbox, "<report-q3@mailgate.test>", pdf)
	small := "From: " + emulator.DemoSenderMailbox + "\r\nTo: " + emulator.DemoInvoicesMailbox + "\r\nBcc: " + emulator.DemoSharedMailbox + "\r\nSubject: heads-up\r\n\r\nthe report follows\r\n"
	for name, b := range map[string][]byte{"big.eml": big, "small.eml": []byte(small)} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r := mailgate(t, t.Context(), dir, "send", "--sender", "g", "small.eml", "big.eml")
	if r.code != 0 || strings.Count(r.stderr, "queued as") != 2 {
		t.Fatalf("send: exit %d\n%s", r.code, r.stderr)
	}
	var got [][]byte
	for deadline := time.Now().Add(60 * time.Second); len(got) < 2; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of 2 arrived", len(got))
		}
		got = srv.GraphMessages(emulator.DemoInvoicesMailbox, "inbox")
	}
	var att []byte
	for _, m := range got {
		if bytes.Contains(m[:min(len(m), 2000)], []byte("<report-q3@mailgate.test>")) {
			att = attachmentOf(t, m)
		}
	}
	if sha256.Sum256(att) != sha256.Sum256(pdf) {
		t.Fatalf("the 20 MB attachment arrived as %d bytes, not byte-identical", len(att))
	}
	bcc := srv.GraphMessages(emulator.DemoSharedMailbox, "inbox")
	if len(bcc) != 1 || !bytes.Contains(bcc[0], []byte("the report follows")) {
		t.Errorf("Bcc recipient got %d messages", len(bcc))
	}
	if n := len(srv.GraphMessages(emulator.DemoSenderMailbox, "drafts")); n != 0 {
		t.Errorf("%d drafts left behind", n)
	}

	// kill and restart: the sent messages stay sent
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	cmd = serve()
	time.Sleep(2 * time.Second)
	if n := len(srv.GraphMessages(emulator.DemoInvoicesMailbox, "inbox")); n != 2 {
		t.Errorf("%d messages after the restart, want 2", n)
	}
}

// TestGraphLargeSendDirect: without serve, `mailgate send` sends a 20 MB
// message through an upload session at once and says so.
func TestGraphLargeSendDirect(t *testing.T) {
	srv, dir := emulatorConfig(t, "")
	appendConfig(t, dir, fmt.Sprintf("senders:\n  - {name: g, protocol: graph, endpoint: '%s', username: %s, profile: emulator-graph, save_to_sent_items: false}\n",
		srv.URL(), emulator.DemoSenderMailbox))
	pdf := make([]byte, 20<<20)
	for i := range pdf {
		pdf[i] = byte(i * 7)
	}
	if err := os.WriteFile(filepath.Join(dir, "big.eml"), bigMessage(emulator.DemoSenderMailbox, emulator.DemoInvoicesMailbox, "<direct@mailgate.test>", pdf), 0o600); err != nil {
		t.Fatal(err)
	}
	r := mailgate(t, t.Context(), dir, "send", "--sender", "g", "big.eml")
	if r.code != 0 || !strings.Contains(r.stderr, "a draft with uploaded attachments") {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	got := srv.GraphMessages(emulator.DemoInvoicesMailbox, "inbox")
	if len(got) != 1 || !bytes.Equal(attachmentOf(t, got[0]), pdf) {
		t.Fatalf("%d arrived; attachment not byte-identical", len(got))
	}
	if n := len(srv.GraphMessages(emulator.DemoSenderMailbox, "sentitems")); n != 0 {
		t.Errorf("save_to_sent_items false: %d copies left in Sent Items", n)
	}
}
